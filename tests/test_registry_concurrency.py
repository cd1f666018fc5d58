"""Concurrent registry commands, as cron jobs, CI pipelines and two admins run them.

Every child process calls the real CLI entry point (`featurelock.middleware.cli.main`, the
console script's function) after a start barrier, so the commands overlap as closely as the
machine allows. Forked rather than spawned: the import cost (~0.5 s per process) is paid once.
Before every registry write became one locked transaction these tests lost keys and
revocations (see the README's key-management section for the figures).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import re
import threading
import time

import numpy as np
import pytest

from featurelock.handlers import errors as E
from featurelock.handlers.tenant_tokens import TenantTokens
from featurelock.middleware import FeatureReader, KeyRegistry, Context, generate_kek_material
from featurelock.middleware.cli import main
from featurelock.middleware.errors import DecryptionError
from featurelock.middleware._transaction import LOCK_TIMEOUT_ENV
from featurelock.middleware.registry import read_generation, read_snapshot, registry_transaction

_FORK = mp.get_context("fork")


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("CONCURRENCY_TEST_KEK", generate_kek_material())
    monkeypatch.setenv("FEATURELOCK_KEK", "env:CONCURRENCY_TEST_KEK")
    # Generous: on a loaded machine 8 queued writers (each fsyncing) must not time out here;
    # the timeout itself is tested below with its own value.
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "60")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "reg"


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _child(barrier, queue, index: int, scripts: list[list[list[str]]]) -> None:
    # KEY / KEY2 stand for the ids this script's first / latest `keys add` printed.
    barrier.wait()
    outcomes, ids = [], []
    for argv in scripts[index]:
        argv = [str(ids[0]) if a == "KEY" else str(ids[-1]) if a == "KEY2" else a for a in argv]
        code, out, err = _cli(argv)
        if code == 0 and argv[:2] == ["keys", "add"]:
            ids.append(_added(out))
        outcomes.append((argv, code, out, err))
    queue.put((index, outcomes))


def run_concurrently(scripts: list[list[list[str]]], timeout: float = 60.0) -> list[list[tuple]]:
    """Run each script (a list of CLI argv) in its own process, all starting together;
    (argv, exit code, stdout, stderr) of every command, per script."""
    barrier, queue = _FORK.Barrier(len(scripts)), _FORK.Queue()
    procs = [_FORK.Process(target=_child, args=(barrier, queue, i, scripts))
             for i in range(len(scripts))]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=timeout) for _ in procs)
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0
    return [results[i] for i in range(len(scripts))]


def key_ids(registry, tenant: str = "acme") -> dict[int, str]:
    keyset = KeyRegistry(registry, _kek()).keyset(tenant)
    return {k.key_id: k.status.value for k in keyset.info()}


def _kek():
    from featurelock.middleware import kek_from_uri

    return kek_from_uri(os.environ["FEATURELOCK_KEK"])


def _added(out: str) -> int:
    return int(re.search(r"added key (\d+)", out).group(1))


def test_eight_concurrent_key_adds_keep_every_key(registry):
    """8 concurrent `keys add` x 3 rounds: every key reported added is in the keyset."""
    assert _cli(["keys", "create", "--registry", str(registry), "--tenant", "acme"])[0] == 0
    reported: list[int] = []
    for _ in range(3):
        results = run_concurrently([[["keys", "add", "--registry", str(registry),
                                      "--tenant", "acme"]]] * 8)
        for [(_, code, out, err)] in results:
            assert code == 0, err
            reported.append(_added(out))
    lost = sorted(set(reported) - set(key_ids(registry)))
    assert len(set(reported)) == 24
    assert lost == [], f"{len(lost)} of 24 reported keys lost"
    assert read_generation(registry) == 1 + 24  # one generation per transaction, none merged


def test_remove_racing_adds_always_revokes(registry):
    """`tenants remove victim` racing 4 `tenants add`, 4 rounds: the victim's token is
    refused every round, and every token reported issued authenticates."""
    still_authenticates, lost_tokens = 0, 0
    for round_ in range(4):
        code, out, err = _cli(["tenants", "add", "--registry", str(registry),
                               "--tenant", f"victim{round_}"])
        assert code == 0, err
        victim_token = out.strip().splitlines()[-1]
        scripts = [[["tenants", "remove", "--registry", str(registry),
                     "--tenant", f"victim{round_}"]]]
        scripts += [[["tenants", "add", "--registry", str(registry),
                      "--tenant", f"t{round_}x{i}"]] for i in range(4)]
        results = run_concurrently(scripts)
        assert all(code == 0 for [(_, code, _, _)] in results), results
        tokens = TenantTokens.load(registry)
        try:
            tokens.authenticate(f"victim{round_}", victim_token)
            still_authenticates += 1
        except E.Forbidden:
            pass
        for i, [(_, _, out, _)] in enumerate(results[1:]):
            try:
                tokens.authenticate(f"t{round_}x{i}", out.strip().splitlines()[-1])
            except E.Forbidden:
                lost_tokens += 1
    assert (still_authenticates, lost_tokens) == (0, 0), (
        f"revoked token still authenticates in {still_authenticates} of 4 rounds; "
        f"{lost_tokens} of 16 reported tokens lost")


def test_mixed_commands_under_stress_keep_every_reported_change(registry, tmp_path):
    """6 processes, each: add a tenant, add a key, promote it, encrypt, add a throwaway key,
    disable and destroy it, add a second tenant. Afterwards every reported key, status and
    token holds, every envelope reported encrypted decrypts, and the generation counts every
    successful write exactly once."""
    assert _cli(["keys", "create", "--registry", str(registry), "--tenant", "acme"])[0] == 0
    features = np.random.default_rng(7).standard_normal((2, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", features)
    reg = ["--registry", str(registry)]
    acme = reg + ["--tenant", "acme"]
    scripts = [[["tenants", "add", *reg, "--tenant", f"s{i}a"],
                ["keys", "add", *acme],
                ["keys", "promote", *acme, "KEY"],
                ["encrypt", *acme, "x.npy", f"e{i}.flk"],
                ["keys", "add", *acme],
                ["keys", "disable", *acme, "KEY2"],
                ["keys", "destroy", *acme, "KEY2"],
                ["tenants", "add", *reg, "--tenant", f"s{i}b"]] for i in range(6)]
    results = run_concurrently(scripts)
    tokens = TenantTokens.load(registry)
    statuses = key_ids(registry)
    keyset = KeyRegistry(registry, _kek()).keyset("acme")
    broken: list[str] = []
    writes = 0
    for i, outcomes in enumerate(results):
        writes += sum(argv[0] != "encrypt" and code == 0 for argv, code, _, _ in outcomes)
        for argv, code, out, err in outcomes:
            if code != 0:  # e.g. "no key with id N": another process's write lost it
                broken.append(f"{' '.join(argv[:2])} failed: {err.strip()}")
                continue
            if argv[:2] == ["tenants", "add"]:
                try:
                    tokens.authenticate(argv[-1], out.strip().splitlines()[-1])
                except E.Forbidden:
                    broken.append(f"token of {argv[-1]} lost")
        if outcomes[1][1] or outcomes[4][1]:
            continue
        added, throwaway = (_added(outcomes[k][2]) for k in (1, 4))
        if statuses.get(added) != "enabled":
            broken.append(f"key {added}: {statuses.get(added, 'lost')}, reported enabled")
        if statuses.get(throwaway) != "destroyed":
            broken.append(f"key {throwaway}: {statuses.get(throwaway, 'lost')}, reported destroyed")
        try:
            if outcomes[3][1]:
                continue
            read = FeatureReader(keyset).read((tmp_path / f"e{i}.flk").read_bytes(),
                                              Context("features", "", "acme"))
            np.testing.assert_array_equal(read, features)  # the crypto round trip is exact
        except DecryptionError:
            broken.append(f"envelope e{i}.flk no longer decrypts")
    assert broken == [], f"{len(broken)} of {6 * 8} commands broken: {broken}"
    assert read_generation(registry) == 1 + writes  # one generation per write, none merged


@pytest.fixture
def held_lock(registry):
    """The registry's lock held by another thread (its own flock: as another process would)."""
    registry.mkdir(parents=True, exist_ok=True)
    taken, release = threading.Event(), threading.Event()

    def hold():
        with registry_transaction(registry):
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(10)
    yield
    release.set()
    thread.join(10)


@pytest.mark.parametrize("argv", [
    ["keys", "add", "--tenant", "acme"],
    ["keys", "destroy", "--tenant", "acme", "1"],
    ["tenants", "add", "--tenant", "initech"],
    ["tenants", "remove", "--tenant", "acme"],
])
def test_a_command_that_cannot_take_the_lock_fails_in_one_line_changing_nothing(
        registry, monkeypatch, request, argv):
    assert _cli(["tenants", "add", "--registry", str(registry), "--tenant", "acme"])[0] == 0
    before = {p.name: p.read_bytes() for p in registry.iterdir() if not p.name.startswith(".")}
    request.getfixturevalue("held_lock")
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "0.2")
    code, out, err = _cli([*argv[:2], "--registry", str(registry), *argv[2:]])
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1 and "locked by another command" in err, err
    assert "nothing was changed" in err
    after = {p.name: p.read_bytes() for p in registry.iterdir() if not p.name.startswith(".")}
    assert after == before


def test_readers_never_see_half_a_transaction(tmp_path):
    """A writer commits tokens and a keyset file together, again and again; 300 snapshots
    taken meanwhile each see both files and the generation from one and the same commit."""
    stop, started = threading.Event(), threading.Event()

    def write():
        i = 0
        while not stop.is_set() and i < 10_000:
            i += 1
            with registry_transaction(tmp_path) as txn:
                txn.write("tenants.json", b"%d" % i)
                txn.write("acme.keyset.json", b"%d" % i)
            started.set()
            time.sleep(0.001)  # commands follow each other, never with no pause at all

    writer = threading.Thread(target=write)
    writer.start()
    seen = set()
    try:
        assert started.wait(30)
        # at least 300 reads, and on until they have overlapped a write (bounded: 20 s)
        reads, deadline = 0, time.monotonic() + 20
        while reads < 300 or (len(seen) < 2 and time.monotonic() < deadline):
            reads += 1
            snap = read_snapshot(tmp_path)
            values = {snap.files.get("tenants.json"), snap.files.get("acme.keyset.json")}
            assert len(values) == 1, values
            value = values.pop()
            assert snap.generation == (int(value) if value else 0)
            seen.add(snap.generation)
    finally:
        stop.set()
        writer.join()
    assert len(seen) > 1  # the reads did overlap the writes
