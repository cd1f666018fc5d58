"""One daemon thread that calls a function every few seconds until closed."""

from __future__ import annotations

import threading
from typing import Callable

__all__ = ["Periodic"]


class Periodic:
    """Calls `tick` every `interval` seconds in a daemon thread, between start() and close()."""

    def __init__(self, name: str, interval: float, tick: Callable[[], object]) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.name, self.interval, self._tick = name, interval, tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()
