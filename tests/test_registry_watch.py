"""The live registry watcher and the registry generation, without any server or real keys."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from featurelock.middleware.errors import KeyStoreError
from featurelock.middleware.metrics import NullRecorder
from featurelock.middleware.registry import GENERATION_FILE, bump_generation, read_generation
from featurelock.middleware.registry_watch import RegistryWatcher, registry_fingerprint


@dataclass(frozen=True)
class State:
    generation: int
    text: str


class Loader:
    """Builds a State from `<dir>/state.json`; a file that is not JSON raises, like a bad keyset."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.calls = directory, 0

    def __call__(self) -> State:
        self.calls += 1
        doc = json.loads((self.directory / "state.json").read_text())
        if not isinstance(doc, dict):
            raise KeyStoreError("state.json is malformed")
        return State(read_generation(self.directory), doc["text"])


class Recorder(NullRecorder):
    def __init__(self) -> None:
        self.generations: list[int] = []
        self.failures = 0

    def registry_generation(self, generation: int) -> None:
        self.generations.append(generation)

    def registry_reload_failed(self) -> None:
        self.failures += 1


def write(directory: Path, text: str, *, bump: bool = True) -> None:
    """What the CLI does: the file renamed into place, then the generation bumped."""
    tmp = directory / ".state.json.tmp"
    tmp.write_text(json.dumps({"text": text}))
    os.replace(tmp, directory / "state.json")
    if bump:
        bump_generation(directory)


@pytest.fixture
def reg(tmp_path):
    write(tmp_path, "v1")
    return tmp_path


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_load_happens_in_the_constructor_and_its_errors_propagate(tmp_path):
    (tmp_path / "state.json").write_text("not json{")
    with pytest.raises(ValueError):
        RegistryWatcher(tmp_path, Loader(tmp_path))


def test_a_change_is_detected_and_swapped_in_whole(reg):
    rec = Recorder()
    watcher = RegistryWatcher(reg, Loader(reg), recorder=rec)
    first = watcher.current()
    assert first == State(1, "v1") and rec.generations == [1]
    assert watcher.poll() is False and watcher._load.calls == 1  # nothing changed: no load
    write(reg, "v2")
    assert watcher.poll() is True
    assert watcher.current() == State(2, "v2") and rec.generations == [1, 2]
    # whoever took the old state before the swap still holds it, unchanged
    assert first == State(1, "v1") and first is not watcher.current()


def test_same_size_rewrite_is_detected_through_the_inode(reg):
    watcher = RegistryWatcher(reg, Loader(reg))
    write(reg, "v9", bump=False)  # same size, maybe the same mtime tick: a new inode all the same
    assert watcher.poll() is True and watcher.current().text == "v9"


def test_hidden_files_are_not_part_of_the_fingerprint(reg):
    before = registry_fingerprint(reg)
    (reg / ".acme.keyset.json.x1y2").write_text("half written")
    assert registry_fingerprint(reg) == before
    (reg / "acme.keyset.json").write_text("{}")
    assert registry_fingerprint(reg) != before


def test_a_bad_registry_keeps_the_last_good_state_logs_and_counts(reg, caplog):
    rec, clock = Recorder(), Clock()
    watcher = RegistryWatcher(reg, Loader(reg), recorder=rec, clock=clock, retry_interval=30)
    good = watcher.current()
    (reg / "state.json").write_text("[1, 2")  # half-written by hand, not renamed into place
    with caplog.at_level(logging.WARNING, logger="featurelock.middleware.registry_watch"):
        assert watcher.poll() is False
    assert watcher.current() is good and rec.failures == 1
    assert "cannot be loaded" in caplog.text and "still serving generation 1" in caplog.text
    assert "[1, 2" not in caplog.text  # a third-party error is named by its type only
    # the same broken files: no new attempt on every poll ...
    assert watcher.poll() is False and rec.failures == 1 and watcher._load.calls == 2
    # ... but one after retry_interval (an HSM that was briefly away)
    clock.now += 31
    assert watcher.poll() is False and rec.failures == 2
    # a fix is picked up on the next change
    write(reg, "v2")
    assert watcher.poll() is True and watcher.current() == State(2, "v2")
    clock.now += 31
    assert watcher.poll() is False and rec.failures == 2  # no retries once good again


def test_our_errors_are_logged_with_their_message(reg, caplog):
    watcher = RegistryWatcher(reg, Loader(reg))
    (reg / "state.json").write_text("[]")
    with caplog.at_level(logging.WARNING, logger="featurelock.middleware.registry_watch"):
        watcher.poll()
    assert "state.json is malformed" in caplog.text


def test_an_unreadable_directory_counts_once_and_keeps_the_state(reg, tmp_path):
    rec = Recorder()
    watcher = RegistryWatcher(reg, Loader(reg), recorder=rec)
    good = watcher.current()
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    reg.rename(moved)
    try:
        assert watcher.poll() is False and watcher.poll() is False
        assert watcher.current() is good and rec.failures == 1
    finally:
        moved.rename(reg)


def test_the_thread_picks_up_changes_without_any_request(reg):
    rec = Recorder()
    watcher = RegistryWatcher(reg, Loader(reg), recorder=rec, interval=0.05).start()
    try:
        write(reg, "v2")
        deadline = time.monotonic() + 15  # generous: a loaded 2-core machine
        while watcher.current().generation < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert watcher.current() == State(2, "v2")
    finally:
        watcher.close()
    assert watcher._ticker._thread is None


@pytest.mark.parametrize("kwargs", [{"interval": 0}, {"retry_interval": -1}])
def test_intervals_must_be_positive(reg, kwargs):
    with pytest.raises(ValueError, match="must be > 0"):
        RegistryWatcher(reg, Loader(reg), **kwargs)


# -- the generation ---------------------------------------------------------------------------
def test_generation_starts_at_zero_and_bumps_atomically_with_mode_0600(tmp_path):
    assert read_generation(tmp_path) == 0
    assert [bump_generation(tmp_path) for _ in range(3)] == [1, 2, 3]
    assert read_generation(tmp_path) == 3
    assert (tmp_path / GENERATION_FILE).stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [GENERATION_FILE]


@pytest.mark.parametrize("text", ["7", "{", '{"featurelock_generation": 1, "generation": -1}',
                                  '{"featurelock_generation": 2, "generation": 1}',
                                  '{"featurelock_generation": 1, "generation": "1"}'])
def test_a_malformed_generation_is_an_error(tmp_path, text):
    (tmp_path / GENERATION_FILE).write_text(text)
    with pytest.raises(KeyStoreError):
        read_generation(tmp_path)


def _bump_many(directory: str, n: int) -> None:
    for _ in range(n):
        bump_generation(directory)


def test_concurrent_writers_never_lose_a_bump(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_bump_many, args=(str(tmp_path), 25)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert read_generation(tmp_path) == 75


def test_a_registry_busy_with_a_writer_is_retried_on_the_next_poll(tmp_path):
    """A load that finds the lock taken (RegistryBusy) is retried on the next poll, even when
    the writer then changes nothing (not only after retry_interval)."""
    import threading

    from featurelock.middleware.registry import read_snapshot, registry_transaction

    bump_generation(tmp_path)
    loads = []

    def load():
        loads.append(1)
        return State(read_snapshot(tmp_path, timeout=0.05).generation, "")

    watcher = RegistryWatcher(tmp_path, load, interval=3600, retry_interval=3600)
    held, release = threading.Event(), threading.Event()

    def hold():
        with registry_transaction(tmp_path):  # stages nothing: commits nothing
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    (tmp_path / "acme.keyset.json").write_bytes(b"{}")  # a change the watcher notices
    try:
        assert not watcher.poll()
    finally:
        release.set()
        thread.join(10)
    assert watcher.poll() and len(loads) == 3
