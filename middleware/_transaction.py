"""Every write to a key registry is one transaction under the registry's lock.

    with registry_transaction(directory) as txn:   # flock(LOCK_EX) on <directory>/.registry.lock
        data = txn.read("acme.keyset.json")        # the committed bytes (None: no such file)
        txn.write("acme.keyset.json", new_bytes)   # staged; read() sees it
        txn.remove("old.keyset.json")              # staged
    txn.generation                                 # bumped ONCE on commit, if anything changed

    snapshot = read_snapshot(directory)            # flock(LOCK_SH): all files, one generation

Read, modify and write happen under one exclusive lock, so two concurrent commands never both
start from the same old file and one of them silently drops the other's change. The commit
writes each staged file to a temporary file, fsyncs it, renames it into place, then writes the
generation the same way and fsyncs the directory: a reader sees every file whole.

Readers (serving workers) take the lock SHARED just long enough to copy the files' bytes (no
unwrapping, no HSM round trip under the lock), so a writer waits milliseconds for them, and
they never see one file of a transaction without the others. A writer holds the lock for one
read-modify-write; nothing slow (opening a KEK, loading a public-key file) happens under it.

Waiting is polling (flock with LOCK_NB, every 1-10 ms), so it is not fair: writes that follow
each other with no pause at all can keep a reader waiting past its timeout. A serving worker
then keeps its last good state and tries again on its next poll (`registry_watch`); CLI
commands, seconds apart, never come close.

A process that already holds a directory's transaction and opens it again (tenants add creates
a keyset through `KeyRegistry`) joins the outer one: one lock, one commit, one generation.

The lock is flock(2) on a file that is never renamed. It works across processes on one host
and across hosts where the file system gives working locks (see the README's key-management
section). A lock not free within `timeout` seconds (default 10 s, or
$FEATURELOCK_REGISTRY_LOCK_TIMEOUT) raises RegistryBusy before anything is read or written.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Iterator, Mapping

from ._files import write_private_atomic
from ._generation import GENERATION_FILE, encode_generation, parse_generation
from .errors import KeyStoreError, RegistryBusy

__all__ = ["LOCK_FILE", "LOCK_TIMEOUT_ENV", "DEFAULT_LOCK_TIMEOUT", "Transaction",
           "RegistrySnapshot", "registry_transaction", "registry_lock_shared", "read_snapshot",
           "bump_generation", "lock_timeout"]

LOCK_FILE = ".registry.lock"
LOCK_TIMEOUT_ENV = "FEATURELOCK_REGISTRY_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 10.0
_REGISTRY_FILES = (".keyset.json", "tenants.json", GENERATION_FILE)

_held = threading.local()  # per thread: {directory: the open Transaction}


def lock_timeout() -> float:
    """Seconds a command waits for the registry lock: $FEATURELOCK_REGISTRY_LOCK_TIMEOUT or 10."""
    text = os.environ.get(LOCK_TIMEOUT_ENV)
    if text is None:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(text)
        if not value >= 0:
            raise ValueError
    except ValueError:
        raise KeyStoreError(f"${LOCK_TIMEOUT_ENV} must be a number of seconds >= 0, "
                            f"got {text!r}") from None
    return value


@contextmanager
def _flock(directory: Path, shared: bool, timeout: float | None) -> Iterator[None]:
    path = directory / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        if shared and exc.errno in (errno.EACCES, errno.EROFS, errno.ENOENT):
            # A read-only view of a registry (no writer here can lock it either): read as is.
            yield
            return
        raise KeyStoreError(f"cannot lock {path}: {exc.strerror}") from None
    try:
        wait = lock_timeout() if timeout is None else timeout
        deadline, pause = time.monotonic() + wait, 0.001
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RegistryBusy(f"key registry {directory} is locked by another command "
                                       f"(waited {wait:g} s); nothing was changed") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


class Transaction:
    """Staged changes to one registry directory; see the module docstring."""

    def __init__(self, directory: Path, *, bump: bool) -> None:
        self.directory = directory
        self.generation: int | None = None  # set on commit when the generation was bumped
        self._bump, self._touched = bump, False
        self._staged: dict[str, bytes | None] = {}  # name -> new bytes, None = remove

    def _path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"not a registry file name: {name!r}")
        return self.directory / name

    def read(self, name: str) -> bytes | None:
        """The file's bytes as this transaction sees them; None if it does not exist."""
        if name in self._staged:
            return self._staged[name]
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyStoreError(f"cannot read {self._path(name)}: {exc.strerror}") from None

    def exists(self, name: str) -> bool:
        return self.read(name) is not None

    def write(self, name: str, data: bytes) -> None:
        self._path(name)
        self._staged[name] = bytes(data)

    def remove(self, name: str) -> None:
        self._path(name)
        self._staged[name] = None

    def touch(self) -> None:
        """Bump the generation on commit even if no file changed."""
        self._bump, self._touched = True, True

    def _commit(self) -> None:
        if not self._staged and not self._touched:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, data in self._staged.items():
            if data is None:
                self._path(name).unlink(missing_ok=True)
            else:
                write_private_atomic(self._path(name), data)
        if self._bump:
            current = parse_generation(self.read(GENERATION_FILE), self._path(GENERATION_FILE))
            self.generation = current + 1
            write_private_atomic(self._path(GENERATION_FILE), encode_generation(self.generation))
        _fsync_directory(self.directory)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some file systems cannot open a directory; the renames are still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def registry_transaction(directory: str | os.PathLike, *, bump: bool = True,
                         timeout: float | None = None) -> Iterator[Transaction]:
    """Hold the registry's lock exclusively; commit the staged changes if the block succeeds
    (nothing is written if it raises). `bump=False` for a lone keyset file, not a registry."""
    directory = Path(directory)
    key = os.path.abspath(directory)
    held: dict[str, Transaction] = _held.__dict__.setdefault("transactions", {})
    if key in held:  # nested: join the outer transaction
        yield held[key]
        return
    directory.mkdir(parents=True, exist_ok=True)
    with _flock(directory, shared=False, timeout=timeout):
        txn = held[key] = Transaction(directory, bump=bump)
        try:
            yield txn
            txn._commit()
        finally:
            del held[key]


@contextmanager
def registry_lock_shared(directory: str | os.PathLike, *,
                         timeout: float | None = None) -> Iterator[None]:
    """Hold the registry's lock shared: no transaction commits meanwhile. Inside a transaction
    of this thread it is a no-op (the exclusive lock already covers it)."""
    directory = Path(directory)
    if os.path.abspath(directory) in _held.__dict__.get("transactions", {}):
        yield
        return
    if not directory.is_dir():
        yield
        return
    with _flock(directory, shared=True, timeout=timeout):
        yield


@dataclass(frozen=True)
class RegistrySnapshot:
    """The registry's files (name -> bytes) and its generation, read at one instant."""

    directory: Path
    generation: int
    files: Mapping[str, bytes]

    def tenants(self) -> list[str]:
        return sorted(n[: -len(".keyset.json")] for n in self.files if n.endswith(".keyset.json"))


def read_snapshot(directory: str | os.PathLike, *,
                  timeout: float | None = None) -> RegistrySnapshot:
    """Copy every registry file under the shared lock (milliseconds; parse outside it)."""
    directory = Path(directory)
    files: dict[str, bytes] = {}
    with registry_lock_shared(directory, timeout=timeout):
        try:
            names = [e.name for e in os.scandir(directory)
                     if not e.name.startswith(".") and e.name.endswith(_REGISTRY_FILES)]
        except FileNotFoundError:
            names = []
        except OSError as exc:
            raise KeyStoreError(f"cannot read {directory}: {exc.strerror}") from None
        for name in names:
            try:
                files[name] = (directory / name).read_bytes()
            except FileNotFoundError:  # removed by a writer that does not lock (older version)
                continue
            except OSError as exc:
                raise KeyStoreError(f"cannot read {directory / name}: {exc.strerror}") from None
    generation = parse_generation(files.get(GENERATION_FILE), directory / GENERATION_FILE)
    return RegistrySnapshot(directory, generation, MappingProxyType(files))


def bump_generation(directory: str | os.PathLike) -> int:
    """Increment the registry's generation in a transaction of its own; the new generation."""
    with registry_transaction(directory) as txn:
        txn.touch()
    if txn.generation is None:  # joined an open transaction: its commit bumps
        raise KeyStoreError("bump_generation inside a transaction: its commit bumps the generation")
    return txn.generation
