"""Live key registry: notice changes to a registry directory and swap in a new serving state.

    watcher = RegistryWatcher(directory, load=lambda: build_state(directory), recorder=rec)
    watcher.start()                  # daemon thread, polls every `interval` seconds
    state = watcher.current()        # per batch: one reference read; in-flight work keeps it

Engine-neutral: any server that hosts the middleware (TorchServe's handler, a KServe model,
an ASGI app) builds its state with its own `load` and calls `current()` per request or batch.

Why a daemon thread and not a check on the request path: a reload unwraps every tenant's
keyset under the KEK (a PKCS#11 round trip each, for an HSM KEK), which must not land on one
unlucky request; and an idle worker must catch up too, so the generation it exports is true.
The poll itself is one scandir + stat of the registry's files (name, size, mtime_ns, inode:
writers rename new files into place, so every write changes the inode), every 0.5 s.

Failure keeps the LAST GOOD state: a half-edited or unreadable registry (bad JSON, wrong KEK,
a tenant without keys, ...) is never served half-updated and never turns into plaintext. The
failure is logged (our errors carry no key bytes) and counted, and the load is retried on the
next change, or after `retry_interval` for transient failures (an HSM briefly away). A
registry busy with a writer's commit (RegistryBusy) is retried on the next poll.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Generic, Protocol, TypeVar

from ._periodic import Periodic
from .errors import FeaturelockError, RegistryBusy
from .metrics import NullRecorder, Recorder

__all__ = ["RegistryWatcher", "Generational", "registry_fingerprint", "DEFAULT_POLL_INTERVAL"]

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 0.5
DEFAULT_RETRY_INTERVAL = 30.0

Fingerprint = tuple[tuple[object, ...], ...]


class Generational(Protocol):
    generation: int


S = TypeVar("S", bound=Generational)


def registry_fingerprint(directory: str | os.PathLike) -> Fingerprint:
    """(name, size, mtime_ns, inode) of every visible file in `directory`, sorted.

    Hidden files (writers' temporary files, the registry lock) are left out. An unreadable
    directory is a fingerprint of its own, so it counts as one change, not one per poll."""
    entries: list[tuple[object, ...]] = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:  # replaced between scandir and stat: next poll sees it
                    continue
                entries.append((entry.name, st.st_size, st.st_mtime_ns, st.st_ino))
    except OSError as exc:
        return (("<unreadable>", exc.errno),)
    return tuple(sorted(entries))


class RegistryWatcher(Generic[S]):
    """Holds the current state built by `load`, and replaces it when the registry changes.

    The first load happens in the constructor and its errors propagate: a server with no good
    state must refuse to start. `clock` is injectable for tests.
    """

    def __init__(self, directory: str | os.PathLike, load: Callable[[], S], *,
                 recorder: Recorder | None = None, interval: float = DEFAULT_POLL_INTERVAL,
                 retry_interval: float = DEFAULT_RETRY_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not retry_interval > 0:
            raise ValueError(f"retry_interval must be > 0 seconds, got {retry_interval!r}")
        self.directory = Path(directory)
        self.retry_interval = retry_interval
        self._load, self._clock = load, clock
        self._recorder = recorder or NullRecorder()
        self._fingerprint: Fingerprint | None = registry_fingerprint(self.directory)  # see poll
        self._state = load()
        self._failed_at: float | None = None
        self._poll_lock = threading.Lock()
        self._ticker = Periodic("featurelock-registry", interval, self.poll)
        self._recorder.registry_generation(self._state.generation)

    def current(self) -> S:
        """The state to serve with; callers keep it for the whole request or batch."""
        return self._state

    def set_recorder(self, recorder: Recorder) -> None:
        """Record through `recorder` from now on (hosts create metrics after the first load)."""
        self._recorder = recorder
        recorder.registry_generation(self._state.generation)

    def poll(self) -> bool:
        """Check once; True if a new state was swapped in."""
        with self._poll_lock:
            # Fingerprint first: a write that lands during the load changes the next one.
            fingerprint = registry_fingerprint(self.directory)
            retry = (self._failed_at is not None
                     and self._clock() - self._failed_at >= self.retry_interval)
            if fingerprint == self._fingerprint and not retry:
                return False
            self._fingerprint = fingerprint
            try:
                state = self._load()
            except Exception as exc:  # noqa: BLE001 — any failure keeps the last good state
                if isinstance(exc, RegistryBusy):
                    self._fingerprint = None  # a writer was committing: look again next poll
                self._failed(exc)
                return False
            old, self._state, self._failed_at = self._state, state, None  # one reference swap
        self._recorder.registry_generation(state.generation)
        log.info("featurelock: key registry %s: now serving generation %d (was %d)",
                 self.directory, state.generation, old.generation)
        return True

    def _failed(self, exc: Exception) -> None:
        self._failed_at = self._clock()
        self._recorder.registry_reload_failed()
        # Our errors never carry key bytes; anything else is named by type only.
        detail = str(exc) if isinstance(exc, FeaturelockError) else type(exc).__name__
        log.warning("featurelock: key registry %s changed but cannot be loaded (%s); still "
                    "serving generation %d, retrying on the next change",
                    self.directory, detail, self._state.generation)

    # -- background polling -------------------------------------------------------------
    def start(self) -> "RegistryWatcher[S]":
        self._ticker.start()
        return self

    def close(self) -> None:
        self._ticker.close()

    def __repr__(self) -> str:
        return (f"RegistryWatcher({str(self.directory)!r}, "
                f"generation={self._state.generation}, interval={self._ticker.interval})")
