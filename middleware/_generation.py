"""The key registry's generation: a counter every write to the registry bumps.

    <directory>/generation.json    {"featurelock_generation": 1, "generation": 7}

Serving workers export the generation they serve, so "has every worker caught up with my
`keys promote`?" is one comparison. Order makes that claim safe: writers bump AFTER their
change is in place; readers read the generation BEFORE the files. A worker that reports N
therefore serves at least every change up to N (never less than it claims).

Bumps are serialised with flock on `.generation.lock`, so two concurrent CLI writes give two
generations, not one. A missing file is generation 0 (registries older than this file).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from ._files import write_private_atomic
from .errors import KeyStoreError

__all__ = ["GENERATION_FILE", "read_generation", "bump_generation"]

GENERATION_FILE = "generation.json"
_LOCK_FILE = ".generation.lock"
_FORMAT = 1


def read_generation(directory: str | os.PathLike) -> int:
    """The registry's generation (0 when it has none yet); KeyStoreError if unreadable."""
    path = Path(directory) / GENERATION_FILE
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        raise KeyStoreError(f"cannot read {path}") from None
    try:
        generation = doc["generation"]
        if doc["featurelock_generation"] != _FORMAT or type(generation) is not int or generation < 0:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise KeyStoreError(f"{path} is malformed") from None
    return generation


def bump_generation(directory: str | os.PathLike) -> int:
    """Increment the registry's generation (atomic write, under a lock); returns the new one."""
    directory = Path(directory)
    try:
        fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise KeyStoreError(f"cannot lock {directory / _LOCK_FILE}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        generation = read_generation(directory) + 1
        doc = {"featurelock_generation": _FORMAT, "generation": generation}
        write_private_atomic(directory / GENERATION_FILE, json.dumps(doc).encode())
        return generation
    finally:
        os.close(fd)  # releases the lock
