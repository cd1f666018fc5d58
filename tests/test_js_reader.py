"""Cross-language: Python protects and the JS reader (js/, Node) opens, and the reverse.

Keysets travel as a user's would: the consumer's keyset re-wrapped for the JS reader with
`featurelock keys export --out-kek file:...`, and the public halves with `export-public`.
One Node process per scheme runs every JS step (js/scripts/cross_driver.js); one test drives the
package's command line. Skips without node or `npm ci` in js/ on a developer machine; fails
under CI (make test runs `npm ci` first)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from featurelock.middleware import Context, Envelope, FeatureProtector, FeatureReader
from featurelock.middleware.cli import main
from featurelock.middleware.errors import DecryptionError
from featurelock.middleware.kek import kek_from_uri
from featurelock.middleware.storage import load_keyset, load_public_keyset

JS = Path(__file__).resolve().parent.parent / "js"
NODE = shutil.which("node")
if NODE is None or not (JS / "node_modules" / "@hpke" / "core").is_dir():
    if os.environ.get("CI"):
        raise RuntimeError("the JS reader tests need node and `npm ci` in js/ (make test does both)")
    pytest.skip("node or js/node_modules missing (run `make test` or `npm ci --prefix js`)",
                allow_module_level=True)

CTX = Context("reid-compact", "1", "acme")
JS_CTX = {"model": "reid-compact", "modelVersion": "1", "tenant": "acme"}


def consumer_files(scheme: str, capsys) -> None:
    """In the current directory: a consumer keyset under its own KEK, exported for JS under
    another file: KEK (for-js.json, js.kek), and its public halves (acme.pub) if sealed."""
    for kek in ("own.kek", "js.kek"):
        assert main(["keys", "new-kek", "--kek", f"file:{kek}"]) == 0
    mine = ["--keyset", "mine.json", "--tenant", "acme", "--kek", "file:own.kek"]
    assert main(["keys", "create", *mine, "--scheme", scheme]) == 0
    assert main(["keys", "export", *mine, "--out", "for-js.json", "--out-kek", "file:js.kek"]) == 0
    if scheme != "aes-256-gcm":
        assert main(["keys", "export-public", *mine, "--out", "acme.pub"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("scheme", ["aes-256-gcm", "hpke-x25519", "hpke-mlkem768-x25519"])
def test_python_and_js_open_what_the_other_sealed(scheme, tmp_path, monkeypatch, capsys):
    """Python -> JS: binary and JSON envelopes open to the exact bytes; a wrong context is the
    one error. JS -> Python: float32 binary and float64 JSON envelopes (aes-256-gcm under the
    exported keyset; sealed schemes to the `export-public` file, as a server would)."""
    monkeypatch.chdir(tmp_path)
    consumer_files(scheme, capsys)
    keyset = load_keyset("mine.json", kek_from_uri("file:own.kek"), "acme")
    server = keyset if scheme == "aes-256-gcm" else keyset.public()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2048)).astype(np.float32)
    env = FeatureProtector(server).protect(x, CTX)
    Path("env.flk").write_bytes(env)
    Path("env.json").write_text(Envelope.from_bytes(env).to_json())
    x32, x64 = (rng.standard_normal((3, 512)).astype(d) for d in (np.float32, np.float64))
    Path("x32.raw").write_bytes(x32.tobytes())
    Path("x64.raw").write_bytes(x64.tobytes())
    jobs = [{"op": "open", "in": "env.flk", "out": "a.raw"},
            {"op": "open", "in": "env.json", "out": "b.raw", "text": True},
            {"op": "open", "in": "env.flk", "out": "c.raw", "context": {**JS_CTX, "modelVersion": "2"}},
            {"op": "seal", "in": "x32.raw", "out": "s.flk", "dtype": "float32", "shape": [3, 512]},
            {"op": "seal", "in": "x64.raw", "out": "s.json", "dtype": "float64", "shape": [3, 512],
             "json": True}]
    keys = {"keyset": "for-js.json", "kek_file": "js.kek", "tenant": "acme",
            "public_keyset": None if scheme == "aes-256-gcm" else "acme.pub"}
    Path("jobs.json").write_text(json.dumps({"keys": keys, "context": JS_CTX, "jobs": jobs}))
    ran = subprocess.run([NODE, str(JS / "scripts" / "cross_driver.js"), "jobs.json"],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    results = json.loads(ran.stdout)
    assert results[:2] == [{"dtype": "float32", "shape": [2, 2048]}] * 2
    assert Path("a.raw").read_bytes() == Path("b.raw").read_bytes() == x.tobytes()
    assert results[2] == {"error": "DecryptionError", "message": "decryption failed"}
    assert results[3:] == [{"sealed": True}] * 2, results
    for message, expected in ((Path("s.flk").read_bytes(), x32), (Path("s.json").read_text(), x64)):
        parsed = Envelope.from_json(message) if isinstance(message, str) else Envelope.from_bytes(message)
        assert parsed.scheme == scheme
        opened = FeatureReader(keyset).read(message, CTX)
        assert opened.dtype == expected.dtype and np.array_equal(opened, expected)
        with pytest.raises(DecryptionError):
            FeatureReader(keyset).read(message, Context("reid-compact", "2", "acme"))
        if scheme != "aes-256-gcm":  # what the server holds opens nothing sealed to the consumer
            with pytest.raises(DecryptionError):
                FeatureReader(load_public_keyset("acme.pub")).read(message, CTX)


def test_the_command_line_opens_and_seals(tmp_path, monkeypatch, capsys):
    """`featurelock-js open|seal` (js/bin): the package's own command line, aes-256-gcm."""
    monkeypatch.chdir(tmp_path)
    consumer_files("aes-256-gcm", capsys)
    keyset = load_keyset("mine.json", kek_from_uri("file:own.kek"), "acme")
    x = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    Path("x.raw").write_bytes(x.tobytes())
    cli = [NODE, str(JS / "bin" / "featurelock-js.js")]
    keys = ["--keyset", "for-js.json", "--kek-file", "js.kek", "--tenant", "acme", "--model", "reid-compact",
            "--model-version", "1"]
    sealed = subprocess.run([*cli, "seal", *keys, "--dtype", "float32", "--shape", "4,8", "x.raw", "x.flk"],
                            capture_output=True, text=True, timeout=60)
    assert sealed.returncode == 0, sealed.stderr
    assert np.array_equal(FeatureReader(keyset).read(Path("x.flk").read_bytes(), CTX), x)
    Path("bad.flk").write_bytes(Path("x.flk").read_bytes()[:-1])
    for envelope, code in (("x.flk", 0), ("bad.flk", 1)):
        opened = subprocess.run([*cli, "open", *keys, envelope, "y.raw"], capture_output=True,
                                text=True, timeout=60)
        assert opened.returncode == code, opened.stderr
    assert opened.stderr.strip() == "featurelock-js: decryption failed"
    assert Path("y.raw").read_bytes() == x.tobytes()
