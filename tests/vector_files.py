"""The committed test vectors (tests/vectors/*.json), read by name.

Kept out of conftest.py: `from conftest import ...` resolves to whichever conftest.py is first
on sys.path, and test packages may have their own."""

from __future__ import annotations

import json
from pathlib import Path

VECTORS = Path(__file__).resolve().parent / "vectors"


def load_vectors(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())
