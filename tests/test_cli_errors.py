"""The `featurelock` CLI never prints a traceback for bad input (issue 9, item 4).

Crafted envelopes, wrong files and a bug in a subcommand each end in ONE stderr line and a
nonzero status; FEATURELOCK_DEBUG=1 shows a bug's traceback to developers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from featurelock.middleware.cli import DEBUG_ENV, main

KEYS = ["--keyset", "ks.json", "--insecure-cleartext"]


@pytest.fixture
def workdir(tmp_path, monkeypatch, capsys):
    """ks.json (cleartext, tests only), x.npy and its JSON envelope x.json."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    assert main(["keys", "create", *KEYS]) == 0
    assert main(["encrypt", *KEYS, "--json", "x.npy", "x.json"]) == 0
    capsys.readouterr()
    return tmp_path


def _envelope_with(workdir, **fields) -> bytes:
    doc = json.loads((workdir / "x.json").read_text())
    doc.update(fields)
    return json.dumps(doc).encode()


def _crafted(workdir) -> dict[str, bytes]:
    return {
        "garbage": bytes(range(256)) * 4, "magic-then-garbage": b"FLK\x02" + bytes(range(200)),
        "empty": b"", "json-list": b"[]", "json-truncated": b'{"featurelock": 2, ',
        "dtype-comma": _envelope_with(workdir, dtype=",float32"),
        "dtype-object": _envelope_with(workdir, dtype="O"),
        "zero-beside-huge": _envelope_with(workdir, shape=[0, 2**62]),
        "zero-beside-two-huge": _envelope_with(workdir, shape=[2**62, 0, 2**62]),
        "negative-dim": _envelope_with(workdir, shape=[-1, 4]),
        "shape-not-a-list": _envelope_with(workdir, shape="2x4"),
        "bad-base64": _envelope_with(workdir, payload="***"),
    }


def _assert_one_line(code: int, err: str, command: str) -> None:
    assert code != 0
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"featurelock {command}: ")


@pytest.mark.parametrize("case", ["garbage", "magic-then-garbage", "empty", "json-list",
                                  "json-truncated", "dtype-comma", "dtype-object",
                                  "zero-beside-huge", "zero-beside-two-huge", "negative-dim",
                                  "shape-not-a-list", "bad-base64"])
def test_decrypt_of_a_crafted_envelope_is_one_line(workdir, capsys, case):
    (workdir / "bad.flk").write_bytes(_crafted(workdir)[case])
    code = main(["decrypt", *KEYS, "bad.flk", "out.npy"])
    _assert_one_line(code, capsys.readouterr().err, "decrypt")
    assert not (workdir / "out.npy").exists()


@pytest.mark.parametrize("argv, command", [
    (["decrypt", *KEYS, "missing.flk", "out.npy"], "decrypt"),
    (["decrypt", *KEYS, ".", "out.npy"], "decrypt"),                      # a directory
    (["decrypt", *KEYS, "x.json", "no/such/dir/out.npy"], "decrypt"),     # unwritable output
    (["decrypt", "--keyset", "nokeys.json", "--insecure-cleartext", "x.json", "o.npy"], "decrypt"),
    (["encrypt", *KEYS, "missing.npy", "o.flk"], "encrypt"),
    (["encrypt", *KEYS, "x.json", "o.flk"], "encrypt"),                   # not a .npy file
    (["rewrap", *KEYS, "missing.flk"], "rewrap"),
])
def test_bad_files_are_one_line(workdir, capsys, argv, command):
    code = main(argv)
    _assert_one_line(code, capsys.readouterr().err, command)


def test_a_bug_is_one_line_without_its_text_unless_debugging(workdir, capsys, monkeypatch):
    import featurelock.middleware.cli_crypt as cli_crypt

    def broken(args):
        raise KeyError("secret-internal /srv/keys/acme")

    monkeypatch.setattr(cli_crypt, "run", broken)
    code = main(["decrypt", *KEYS, "x.json", "out.npy"])
    err = capsys.readouterr().err
    _assert_one_line(code, err, "decrypt")
    assert "secret" not in err and DEBUG_ENV in err
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(KeyError, match="secret-internal"):
        main(["decrypt", *KEYS, "x.json", "out.npy"])


def test_console_entry_point_prints_no_traceback(workdir):
    """The real process: stderr of `python -m featurelock.middleware.cli` on a crafted file."""
    (workdir / "bad.json").write_bytes(_envelope_with(workdir, dtype=",float32"))
    env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
    for path in ("bad.json", "missing.flk"):
        proc = subprocess.run([sys.executable, "-m", "featurelock.middleware.cli", "decrypt",
                               *KEYS, path, "out.npy"], capture_output=True, text=True,
                              cwd=workdir, env=env, timeout=120)
        _assert_one_line(proc.returncode, proc.stderr, "decrypt")
    assert not (workdir / "out.npy").exists()
