"""The key registry's generation: a counter every write to the registry bumps.

    <directory>/generation.json    {"featurelock_generation": 1, "generation": 7}

Serving workers export the generation they serve, so "has every worker caught up with my
`keys promote`?" is one comparison. Every registry write is one transaction
(`featurelock.middleware._transaction`) that bumps the generation once, on commit, under the
registry's lock; readers copy the files and the generation under the same lock (shared), so a
worker that reports N serves exactly the registry as of generation N.

A missing file is generation 0 (registries older than this file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import KeyStoreError

__all__ = ["GENERATION_FILE", "read_generation", "parse_generation", "encode_generation"]

GENERATION_FILE = "generation.json"
_FORMAT = 1


def read_generation(directory: str | os.PathLike) -> int:
    """The registry's generation (0 when it has none yet); KeyStoreError if unreadable."""
    path = Path(directory) / GENERATION_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError:
        raise KeyStoreError(f"cannot read {path}") from None
    return parse_generation(data, path)


def parse_generation(data: bytes | None, path: str | os.PathLike) -> int:
    """The generation in a generation.json's bytes (None: no file, generation 0)."""
    if data is None:
        return 0
    try:
        doc = json.loads(data)
    except ValueError:
        raise KeyStoreError(f"cannot read {path}") from None
    try:
        generation = doc["generation"]
        if doc["featurelock_generation"] != _FORMAT or type(generation) is not int or generation < 0:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise KeyStoreError(f"{path} is malformed") from None
    return generation


def encode_generation(generation: int) -> bytes:
    return json.dumps({"featurelock_generation": _FORMAT, "generation": generation}).encode()
