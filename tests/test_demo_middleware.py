"""`featurelock demo`'s first part shows what it claims: round trips, refusals, rotation."""

from __future__ import annotations

from featurelock.middleware.cli import main
from featurelock.middleware.schemes import SCHEMES


def test_demo_middleware_part(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FEATURELOCK_DEMO_KEK", raising=False)
    assert main(["demo", "--skip-serving", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("bit-exact") == len(SCHEMES)
    assert out.count("refused (decryption failed)") == 3
    assert "ACCEPTED" not in out and "MISMATCH" not in out
    assert "rewrapped the stored envelope" in out
    stored = list((tmp_path / "keys").glob("*.keyset.json"))
    assert len(stored) == len(SCHEMES)
    assert all('"wrapped"' in p.read_text() for p in stored)
