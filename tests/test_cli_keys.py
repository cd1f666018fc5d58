"""`featurelock keys|encrypt|decrypt|rewrap` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from softhsm import make_softhsm_token

from featurelock.middleware import generate_kek_material
from featurelock.middleware.cli import main
from featurelock.middleware.envelope import Envelope


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLI_TEST_KEK", generate_kek_material())
    monkeypatch.setenv("FEATURELOCK_KEK", "env:CLI_TEST_KEK")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32))
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _key_ids(capsys) -> list[tuple[int, str, str, bool]]:
    code, out, _ = run(capsys, "keys", "list", "--keyset", "ks.json")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    return [(int(r[0]), r[1], r[2], r[-1] == "*") for r in rows]


def test_full_rotation_story(workdir, capsys):
    assert run(capsys, "keys", "create", "--keyset", "ks.json", "--scheme", "shufflebits")[0] == 0
    assert run(capsys, "encrypt", "--keyset", "ks.json", "x.npy", "x.flk")[0] == 0
    assert run(capsys, "encrypt", "--keyset", "ks.json", "--json", "x.npy", "x.json")[0] == 0
    assert json.loads((workdir / "x.json").read_text())["scheme"] == "shufflebits"
    [(old_id, _, _, _)] = _key_ids(capsys)
    code, out, _ = run(capsys, "keys", "add", "--keyset", "ks.json", "--scheme", "aes-256-gcm")
    new_id = int(out.split()[2])
    assert run(capsys, "keys", "promote", "--keyset", "ks.json", str(new_id))[0] == 0
    assert run(capsys, "rewrap", "--keyset", "ks.json", "x.flk", "x.json")[0] == 0
    assert Envelope.from_bytes((workdir / "x.flk").read_bytes()).key_id == new_id
    assert Envelope.from_json((workdir / "x.json").read_text()).key_id == new_id
    assert run(capsys, "keys", "disable", "--keyset", "ks.json", str(old_id))[0] == 0
    assert run(capsys, "keys", "destroy", "--keyset", "ks.json", str(old_id))[0] == 0
    assert sorted(_key_ids(capsys)) == sorted([(old_id, "shufflebits", "destroyed", False),
                                               (new_id, "aes-256-gcm", "enabled", True)])
    for name in ("x.flk", "x.json"):
        assert run(capsys, "decrypt", "--keyset", "ks.json", name, f"{name}.npy")[0] == 0
        assert np.array_equal(np.load(workdir / f"{name}.npy"), np.load(workdir / "x.npy"))


def test_failed_decrypt_is_one_line_nonzero_and_writes_nothing(workdir, capsys):
    run(capsys, "keys", "create", "--keyset", "ks.json")
    run(capsys, "encrypt", "--keyset", "ks.json", "--model", "reid", "x.npy", "x.flk")
    for extra in (["--model", "other"], ["--model", "reid", "--model-version", "9"]):
        code, out, err = run(capsys, "decrypt", "--keyset", "ks.json", *extra, "x.flk", "y.npy")
        assert code == 1 and err.strip() == "featurelock decrypt: decryption failed"
        assert not (workdir / "y.npy").exists()
    data = bytearray((workdir / "x.flk").read_bytes())
    data[-3] ^= 4
    (workdir / "bad.flk").write_bytes(bytes(data))
    code, _, err = run(capsys, "decrypt", "--keyset", "ks.json", "--model", "reid", "bad.flk", "y.npy")
    assert code == 1 and err.count("\n") == 1 and not (workdir / "y.npy").exists()


def test_wrong_kek_and_missing_kek_fail_cleanly(workdir, capsys, monkeypatch):
    run(capsys, "keys", "create", "--keyset", "ks.json")
    monkeypatch.setenv("CLI_TEST_KEK", generate_kek_material())
    code, _, err = run(capsys, "keys", "list", "--keyset", "ks.json")
    assert code == 1 and "cannot be unwrapped" in err
    monkeypatch.delenv("FEATURELOCK_KEK")
    code, _, err = run(capsys, "keys", "list", "--keyset", "ks.json")
    assert code == 1 and "no key-encryption key" in err


def test_refuses_to_overwrite_a_keyset(workdir, capsys):
    run(capsys, "keys", "create", "--keyset", "ks.json")
    code, _, err = run(capsys, "keys", "create", "--keyset", "ks.json")
    assert code == 1 and "refusing to overwrite" in err


def test_registry_layout_and_tenants(workdir, capsys):
    assert run(capsys, "keys", "create", "--registry", "reg", "--tenant", "acme")[0] == 0
    assert (workdir / "reg" / "acme.keyset.json").is_file()
    run(capsys, "encrypt", "--registry", "reg", "--tenant", "acme", "x.npy", "x.flk")
    run(capsys, "keys", "create", "--registry", "reg", "--tenant", "globex")
    code, _, err = run(capsys, "decrypt", "--registry", "reg", "--tenant", "globex", "x.flk", "y.npy")
    assert code == 1 and "decryption failed" in err


def test_new_kek_file_is_private_and_usable(workdir, capsys, monkeypatch):
    monkeypatch.delenv("FEATURELOCK_KEK")
    assert run(capsys, "keys", "new-kek", "--kek", "file:kek.b64")[0] == 0
    assert oct((workdir / "kek.b64").stat().st_mode & 0o777) == "0o600"
    assert run(capsys, "keys", "create", "--keyset", "ks.json", "--kek", "file:kek.b64")[0] == 0
    assert run(capsys, "keys", "list", "--keyset", "ks.json", "--kek", "file:kek.b64")[0] == 0
    assert run(capsys, "keys", "new-kek", "--kek", "file:kek.b64")[0] == 1


@pytest.mark.e2e
def test_keyset_under_a_real_softhsm2_token(workdir, capsys, monkeypatch, tmp_path):
    token = make_softhsm_token(tmp_path, monkeypatch)
    monkeypatch.delenv("FEATURELOCK_KEK")
    assert run(capsys, "keys", "new-kek", "--kek", token.uri)[0] == 0
    assert run(capsys, "keys", "create", "--keyset", "ks.json", "--kek", token.uri,
               "--scheme", "shufflebits-masked")[0] == 0
    assert token.pin not in (workdir / "ks.json").read_text()
    assert run(capsys, "encrypt", "--keyset", "ks.json", "--kek", token.uri, "x.npy", "x.flk")[0] == 0
    assert run(capsys, "decrypt", "--keyset", "ks.json", "--kek", token.uri, "x.flk", "y.npy")[0] == 0
    assert np.array_equal(np.load(workdir / "y.npy"), np.load(workdir / "x.npy"))
    monkeypatch.setenv(token.pin_env, "0000")
    code, _, err = run(capsys, "keys", "list", "--keyset", "ks.json", "--kek", token.uri)
    assert code == 1 and "0000" not in err and token.pin not in err


def test_console_script_runs_without_heavy_dependencies(tmp_path):
    """The middleware and its CLI import neither torch, TorchServe nor onnxruntime."""
    code = ("import sys, featurelock.middleware, featurelock.middleware.cli_keys, "
            "featurelock.middleware.cli_crypt, featurelock.middleware.protect\n"
            "heavy = {'torch', 'ts', 'onnxruntime', 'onnx', 'pkcs11', 'locust'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    result = subprocess.run([sys.executable, "-m", "featurelock.middleware.cli", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "keys" in result.stdout and "decrypt" in result.stdout
