"""The serving state over a real key registry, changed by the real CLI: no TorchServe needed."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from featurelock.handlers import errors as E
from featurelock.handlers.serving_config import ServingConfig
from featurelock.handlers.serving_state import load_serving_state, watch_serving_state
from featurelock.middleware import Context, FeatureReader
from featurelock.middleware.cli import main
from featurelock.middleware.errors import DecryptionError
from featurelock.middleware.registry import read_generation
from featurelock.middleware.metrics import PrometheusMetrics
from featurelock.models.profiles import REID_128x64

from fl_serving_helpers import file_kek, keyset, make_registry

pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry  # noqa: E402

CTX = Context("reid", "1", "acme")


def config(scheme: str = "aes-256-gcm") -> ServingConfig:
    return ServingConfig.from_model_yaml({"featurelock": {
        "scheme": scheme, "model": "reid", "version": "1", "model_file": "m.pt",
        "backend": "torchscript", "profile": REID_128x64.to_dict()}})


@pytest.fixture
def reg(tmp_path, monkeypatch):
    kek = file_kek(tmp_path)
    monkeypatch.setenv("FEATURELOCK_KEK", kek)
    tokens = make_registry(tmp_path / "reg", "aes-256-gcm", kek, tenants=("acme", "globex"))
    metrics = PrometheusMetrics(registry=CollectorRegistry())
    watcher = watch_serving_state(config(), str(tmp_path / "reg"),
                                  recorder=metrics.recorder("reid", "aes-256-gcm"),
                                  interval=3600)  # polled by hand below
    yield tmp_path / "reg", kek, tokens, watcher, metrics
    watcher.close()


def cli(*argv: str) -> None:
    assert main(list(argv)) == 0


def keys(reg, *argv: str) -> None:
    action, *rest = argv
    cli("keys", action, "--registry", str(reg), "--tenant", "acme", *rest)


def primary(state, tenant="acme") -> int:
    return state.protectors[tenant]._keyset.primary_id


def sample(metrics, name):
    return metrics.registry.get_sample_value(name, {"model": "reid"})


def test_rotation_is_live_and_every_write_bumps_the_generation(reg, capsys):
    directory, kek, tokens, watcher, metrics = reg
    start = watcher.current()
    old = primary(start)
    assert start.generation == read_generation(directory) == 2  # one per `tenants add` (keyset + token)
    keys(directory, "add")
    new_id = int(capsys.readouterr().out.split()[2])
    assert watcher.poll() and watcher.current().generation == start.generation + 1
    assert primary(watcher.current()) == old  # added, not yet primary
    for action, expected in (("promote", new_id), ("disable", new_id), ("enable", new_id),
                             ("destroy", new_id)):
        keys(directory, action, str(new_id if action == "promote" else old))
        out = capsys.readouterr().out
        assert f"key registry generation {read_generation(directory)}" in out
        assert watcher.poll() and primary(watcher.current()) == expected
    assert watcher.current().generation == start.generation + 5
    assert sample(metrics, "featurelock_key_registry_generation") == start.generation + 5
    # the protector now encrypts under the new key; the reader with the new keyset decrypts
    envelope = watcher.current().protectors["acme"].protect(np.ones((1, 4), np.float32), CTX)
    np.testing.assert_array_equal(
        FeatureReader(keyset(directory, kek, "acme")).read(envelope, CTX), np.ones((1, 4)))
    # the state taken before the rotation still encrypts under the old key (in-flight batches)
    envelope = start.protectors["acme"].protect(np.ones((1, 4), np.float32), CTX)
    with pytest.raises(DecryptionError):
        FeatureReader(keyset(directory, kek, "acme")).read(envelope, CTX)


def test_token_revocation_and_new_tenants_are_live(reg, monkeypatch, capsys):
    directory, kek, tokens, watcher, metrics = reg
    state = watcher.current()
    assert state.tokens.authenticate("globex", tokens["globex"]) == "globex"
    before = read_generation(directory)
    cli("tenants", "remove", "--registry", str(directory), "--tenant", "globex", "--delete-keyset")
    assert read_generation(directory) == before + 1  # token and keyset file: one transaction
    assert watcher.poll()
    with pytest.raises(E.Forbidden):
        watcher.current().tokens.authenticate("globex", tokens["globex"])
    assert "globex" not in watcher.current().protectors
    cli("tenants", "add", "--registry", str(directory), "--tenant", "initech")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert watcher.poll()
    assert watcher.current().tokens.authenticate("initech", token) == "initech"
    cli("tenants", "add", "--registry", str(directory), "--tenant", "initech", "--rotate-token")
    assert watcher.poll()
    with pytest.raises(E.Forbidden):
        watcher.current().tokens.authenticate("initech", token)


def _corrupt(path):
    path.write_text(path.read_text()[:40])  # a hand edit cut short: not renamed into place


def _token_without_keyset(directory):
    from featurelock.handlers.tenant_tokens import TenantTokens

    tokens = TenantTokens.load(directory)
    tokens.issue("ghost")
    tokens.save()


@pytest.mark.parametrize("breakage, log_text", [
    (lambda d, mp: _corrupt(d / "acme.keyset.json"), "cannot load the key registry"),
    (lambda d, mp: _corrupt(d / "tenants.json"), "cannot read"),
    (lambda d, mp: _corrupt(d / "generation.json"), "cannot read"),
    (lambda d, mp: _token_without_keyset(d), "tenants without a keyset: ghost"),
    (lambda d, mp: main(["keys", "add", "--registry", str(d), "--tenant", "acme", "--scheme",
                         "shufflebits-masked", "--primary"]), "the model is configured for"),
    (lambda d, mp: (mp.setenv("FEATURELOCK_KEK", file_kek(d.parent / "other")),
                    (d / "tenants.json").touch()), "cannot load the key registry"),
], ids=["bad-keyset-json", "bad-tenants-json", "bad-generation", "token-without-keyset",
        "primary-of-another-scheme", "wrong-kek"])
def test_a_bad_registry_keeps_the_last_good_state(reg, monkeypatch, caplog, breakage, log_text):
    directory, kek, tokens, watcher, metrics = reg
    (directory.parent / "other").mkdir()
    good = watcher.current()
    with caplog.at_level(logging.WARNING):
        breakage(directory, monkeypatch)
        assert watcher.poll() is False
    assert watcher.current() is good  # whole: the old protectors AND the old tokens
    assert good.tokens.authenticate("acme", tokens["acme"]) == "acme"
    assert good.protectors["acme"].protect(np.ones((1, 4), np.float32), CTX)[:3] == b"FLK"
    assert sample(metrics, "featurelock_key_registry_reload_failures_total") == 1
    assert sample(metrics, "featurelock_key_registry_generation") == good.generation
    assert log_text in caplog.text and "still serving generation" in caplog.text
    for tenant in ("acme", "globex"):  # no key bytes and no tokens in the log
        ks = good.protectors[tenant]._keyset
        assert tokens[tenant] not in caplog.text
        assert ks._keys[ks.primary_id].material.hex() not in caplog.text


def test_the_first_load_refuses_a_bad_registry(tmp_path, monkeypatch):
    kek = file_kek(tmp_path)
    monkeypatch.setenv("FEATURELOCK_KEK", kek)
    make_registry(tmp_path / "reg", "aes-256-gcm", kek, tenants=("acme",))
    with pytest.raises(E.ServerConfigError, match="configured for"):
        load_serving_state(config("shufflebits"), str(tmp_path / "reg"))
    plaintext = load_serving_state(config("plaintext"), str(tmp_path / "reg"))
    assert dict(plaintext.protectors) == {} and plaintext.tokens.tenants() == ["acme"]
    with pytest.raises(TypeError):
        plaintext.protectors["x"] = None  # read-only: a state is never patched in place
