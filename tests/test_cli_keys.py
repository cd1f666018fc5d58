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
from featurelock.middleware.schemes import scheme_leak


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
    rows = [line.split() for line in out.splitlines()[1:] if not line.startswith("LEAKS ")]
    return [(int(r[0]), r[1], r[2], r[-1] == "*") for r in rows]


def test_full_rotation_story(workdir, capsys):
    assert run(capsys, "keys", "create", "--keyset", "ks.json", "--scheme", "shufflebits",
               "--allow-leaky-scheme")[0] == 0
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


def _refused(code: int, err: str, scheme: str) -> bool:
    return (code == 1 and err.count("\n") == 1 and scheme in err and scheme_leak(scheme) in err
            and "--allow-leaky-scheme" in err)


@pytest.mark.parametrize("scheme", ["shufflebits", "shufflebits-otp"])
def test_leaky_schemes_need_the_flag_on_create_and_add(workdir, capsys, scheme):
    code, out, err = run(capsys, "keys", "create", "--keyset", "ks.json", "--scheme", scheme)
    assert _refused(code, err, scheme) and not out and not (workdir / "ks.json").exists()
    assert run(capsys, "keys", "create", "--keyset", "ks.json")[0] == 0
    before = (workdir / "ks.json").read_bytes()
    code, out, err = run(capsys, "keys", "add", "--keyset", "ks.json", "--scheme", scheme)
    assert _refused(code, err, scheme) and (workdir / "ks.json").read_bytes() == before
    assert run(capsys, "keys", "add", "--keyset", "ks.json", "--scheme", scheme,
               "--allow-leaky-scheme")[0] == 0
    assert sorted(s for _, s, _, _ in _key_ids(capsys)) == sorted(["aes-256-gcm", scheme])


def test_keys_list_marks_leaky_keys(workdir, capsys):
    assert run(capsys, "keys", "create", "--keyset", "ks.json", "--scheme", "shufflebits-otp",
               "--allow-leaky-scheme")[0] == 0
    assert run(capsys, "keys", "add", "--keyset", "ks.json", "--scheme", "aes-256-gcm")[0] == 0
    code, out, _ = run(capsys, "keys", "list", "--keyset", "ks.json")  # loading needs no flag
    assert code == 0
    header, *rows = out.splitlines()
    assert "leaks" in header.split()
    by_scheme = {line.split()[1]: line for line in rows if not line.startswith("LEAKS ")}
    assert "LEAKS" in by_scheme["shufflebits-otp"].split()
    assert "LEAKS" not in by_scheme["aes-256-gcm"].split()
    assert f"LEAKS shufflebits-otp: {scheme_leak('shufflebits-otp')}" in rows
    assert not any(line.startswith("LEAKS shufflebits:") for line in rows)


def test_tenants_add_needs_the_flag_for_a_leaky_scheme(workdir, capsys):
    argv = ["tenants", "add", "--registry", "reg", "--tenant", "acme", "--scheme", "shufflebits"]
    code, out, err = run(capsys, *argv)
    assert _refused(code, err, "shufflebits") and not out
    assert not (workdir / "reg" / "acme.keyset.json").exists()
    assert not (workdir / "reg" / "tenants.json").exists()
    code, out, _ = run(capsys, *argv, "--allow-leaky-scheme")
    assert code == 0 and "(shufflebits)" in out
    assert (workdir / "reg" / "acme.keyset.json").is_file()
    code, out, _ = run(capsys, "keys", "list", "--registry", "reg", "--tenant", "acme")
    assert code == 0 and "LEAKS shufflebits:" in out


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


def test_export_rewraps_for_another_reader_and_cleartext_needs_the_flag(workdir, capsys):
    """`keys export`: the same keys under the reader's own env:/file: KEK; never a PKCS#11 KEK
    (the reader must hold its bytes); cleartext only with --out-insecure-cleartext."""
    from featurelock.middleware import kek_from_uri
    from featurelock.middleware.errors import KeyStoreError
    from featurelock.middleware.storage import load_keyset

    assert run(capsys, "keys", "create", "--keyset", "ks.json")[0] == 0
    assert run(capsys, "keys", "new-kek", "--kek", "file:reader.kek")[0] == 0
    code, out, _ = run(capsys, "keys", "export", "--keyset", "ks.json", "--out", "r.json",
                       "--out-kek", "file:reader.kek")
    assert code == 0 and "wrapped under file:reader.kek" in out
    mine = load_keyset("ks.json", kek_from_uri("env:CLI_TEST_KEK"), "default")
    theirs = load_keyset("r.json", kek_from_uri("file:reader.kek"), "default")
    assert theirs._to_document() == mine._to_document()
    with pytest.raises(KeyStoreError):
        load_keyset("r.json", kek_from_uri("env:CLI_TEST_KEK"), "default")
    code, _, err = run(capsys, "keys", "export", "--keyset", "ks.json", "--out", "p.json",
                       "--out-kek", "pkcs11:token=x")
    assert code == 1 and "env:NAME or file:PATH" in err
    with pytest.raises(SystemExit):  # one of --out-kek / --out-insecure-cleartext is required
        main(["keys", "export", "--keyset", "ks.json", "--out", "c.json"])
    capsys.readouterr()
    code, out, _ = run(capsys, "keys", "export", "--keyset", "ks.json", "--out", "c.json",
                       "--out-insecure-cleartext")
    assert code == 0 and "CLEARTEXT" in out
    with pytest.raises(KeyStoreError, match="cleartext"):
        load_keyset("c.json", None, "default")
    assert load_keyset("c.json", None, "default", allow_cleartext=True)._to_document() == mine._to_document()


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
