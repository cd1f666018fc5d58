"""`make soak`: the default endpoint under steady mixed load, with a key rotation and a token
revocation in the middle, then errors, latency and memory growth.

    python -m load_tests.soak --seconds 600 --users 4 --out out/soak

One TorchServe on 127.0.0.1 serves the default model (aes-256-gcm) to two tenants. Each user
thread sends, at random: good requests of tenant acme (decrypted with the keyset acme holds),
good requests of tenant beta, garbage bodies, a wrong token, and acme's token under beta's name.
An operator thread, a third of the way in, adds a key, hands it to acme, promotes it and later
disables the old one; halfway, it revokes beta's token. Every response is judged:

    good acme       200 and decrypts; after promote + LIVE_WINDOW_S, under the new key
    good beta       200 and decrypts until revoked; 403 after revoke + LIVE_WINDOW_S
    garbage body    4xx
    wrong token     403 (cross-tenant too)

Anything else is an unexpected error. RSS of the frontend and of each worker is sampled every
few seconds; the report compares the first and last minute (worker growth target: <= 5%).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from featurelock.handlers.client import EndpointClient
from featurelock.handlers.stack import Stack, sample_images
from featurelock.handlers.tenants_cli import add_tenant
from featurelock.middleware import Context, Envelope, FeatureReader, KeyRegistry, kek_from_uri
from featurelock.middleware.cli import main as featurelock_cli
from featurelock.middleware.errors import DecryptionError

SCHEME = "aes-256-gcm"
LIVE_WINDOW_S = 5.0   # the product's promise: a registry change is live everywhere within this
RSS_GROWTH_TARGET = 0.05
KINDS = {"good-acme": 0.6, "good-beta": 0.15, "garbage": 0.1, "wrong-token": 0.075,
         "cross-tenant": 0.075}


@dataclass
class Events:
    """When the operator did what (monotonic seconds), and acme's keysets over time."""

    promoted_at: float | None = None
    new_key: int | None = None
    revoked_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Tally:
    outcomes: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int, problem: str | None, ms: float) -> None:
        with self.lock:
            self.outcomes[f"{kind} {status}"] += 1
            if kind.startswith("good") and status == 200:
                self.latencies_ms.append(ms)
            if problem:
                self.outcomes["UNEXPECTED"] += 1
                if len(self.unexpected) < 50:
                    self.unexpected.append(f"{kind} {status}: {problem}")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m load_tests.soak", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=600.0, help="load duration (default 600)")
    p.add_argument("--users", type=int, default=4, help="concurrent user threads")
    p.add_argument("--out", type=Path, default=Path("out/soak"), help="summary.json goes here")
    p.add_argument("--workdir", type=Path, default=None, help="stack directory (default: a temp dir)")
    return p.parse_args(argv)


class Soak:
    def __init__(self, stack: Stack, tokens: dict[str, str], images: list[bytes], seconds: float,
                 users: int) -> None:
        self.stack, self.tokens, self.images, self.seconds = stack, tokens, images, seconds
        self.users_n = users
        self.endpoint = stack.endpoints[SCHEME]
        self.kek = kek_from_uri(stack.kek)
        self.keysets = {t: self._registry().keyset(t) for t in tokens}  # what each consumer holds
        self.events, self.tally = Events(), Tally()
        self.rss: list[tuple[float, dict[str, int]]] = []
        self.start = 0.0

    def _registry(self) -> KeyRegistry:
        return KeyRegistry(self.endpoint.registry, self.kek)

    def _client(self, tenant: str, token: str) -> EndpointClient:
        ts = self.stack.ts
        return EndpointClient(ts.inference_url, self.endpoint.model, tenant, token, ts.inference_key)

    # -- the load ------------------------------------------------------------------------------
    def user(self, seed: int) -> None:
        rng = random.Random(seed)
        clients = {
            "good-acme": self._client("acme", self.tokens["acme"]),
            "good-beta": self._client("beta", self.tokens["beta"]),
            "garbage": self._client("acme", self.tokens["acme"]),
            "wrong-token": self._client("acme", "not-" + self.tokens["acme"]),
            "cross-tenant": self._client("beta", self.tokens["acme"]),
        }
        kinds, weights = list(KINDS), list(KINDS.values())
        deadline = self.start + self.seconds
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            body = rng.randbytes(rng.randint(1, 4096)) if kind == "garbage" else rng.choice(self.images)
            sent = time.monotonic()
            try:
                response = clients[kind].embed(body)
            except OSError as exc:
                self.tally.add(kind, 0, f"connection error {type(exc).__name__}", 0.0)
                continue
            ms = (time.monotonic() - sent) * 1e3
            self.tally.add(kind, response.status, self.judge(kind, response, sent), ms)
        for c in clients.values():
            c.close()

    def judge(self, kind: str, response, sent: float) -> str | None:
        status = response.status
        if kind == "garbage":
            return None if 400 <= status < 500 else "a bad body must get a 4xx"
        if kind in ("wrong-token", "cross-tenant"):
            return None if status == 403 else "a wrong token must get 403"
        tenant = kind.removeprefix("good-")
        revoked = self.events.revoked_at if tenant == "beta" else None
        if revoked is not None and sent > revoked + LIVE_WINDOW_S:
            return None if status == 403 else "a revoked token must get 403"
        if revoked is not None and sent > revoked and status == 403:
            return None  # inside the window either answer is right
        if status != 200:
            return "a good request failed"
        try:
            self._read(tenant, response)
        except DecryptionError:
            return "the tenant cannot decrypt its response"
        with self.events.lock:
            promoted, new_key = self.events.promoted_at, self.events.new_key
        if tenant == "acme" and promoted is not None and sent > promoted + LIVE_WINDOW_S:
            if Envelope.from_bytes(response.body).key_id != new_key:
                return f"still the old key {LIVE_WINDOW_S:g} s after promote"
        return None

    def _read(self, tenant: str, response) -> None:
        context = Context(self.endpoint.model, self.endpoint.version, tenant)
        FeatureReader(self.keysets[tenant]).read(response.body, context)

    # -- the operator ---------------------------------------------------------------------------
    def operator(self) -> None:
        reg = ("--registry", self.endpoint.registry, "--tenant", "acme", "--kek", self.stack.kek)
        self._sleep_until(self.seconds / 3)
        old = self.keysets["acme"].primary_id
        self._cli("keys", "add", *reg)
        self.keysets["acme"] = self._registry().keyset("acme")  # distributed before promote
        new = next(k.key_id for k in self.keysets["acme"].info() if k.key_id != old)
        self._cli("keys", "promote", *reg, str(new))
        with self.events.lock:
            self.events.promoted_at, self.events.new_key = time.monotonic(), new
        self._sleep_until(self.seconds / 2)
        self._cli("tenants", "remove", "--registry", self.endpoint.registry, "--tenant", "beta")
        self.events.revoked_at = time.monotonic()
        self._sleep_until(self.seconds * 2 / 3)
        self._cli("keys", "disable", *reg, str(old))

    def _cli(self, *argv: str) -> None:
        code = featurelock_cli(list(argv))
        if code != 0:
            self.tally.add("operator", code, f"`featurelock {' '.join(argv[:2])}` failed", 0.0)

    def _sleep_until(self, offset: float) -> None:
        time.sleep(max(0.0, self.start + offset - time.monotonic()))

    # -- memory ----------------------------------------------------------------------------------
    def sampler(self, every: float = 5.0) -> None:
        deadline = self.start + self.seconds
        while time.monotonic() < deadline:
            self.rss.append((time.monotonic() - self.start, group_rss(self.stack.ts.proc.pid)))
            time.sleep(every)

    def run(self) -> None:
        self.start = time.monotonic()
        threads = [threading.Thread(target=self.user, args=(i,)) for i in range(self.users_n)]
        threads += [threading.Thread(target=self.operator), threading.Thread(target=self.sampler)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def group_rss(pgid: int) -> dict[str, int]:
    """RSS in bytes of the frontend and each worker in TorchServe's process group."""
    out: dict[str, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:  # field 5: process group
            continue
        rss = next((int(line.split()[1]) * 1024 for line in status.splitlines()
                    if line.startswith("VmRSS:")), 0)
        if "java" in cmdline and "org.pytorch.serve" in cmdline:
            out["frontend"] = rss
        elif "model_service_worker" in cmdline:
            out[f"worker {entry.name}"] = rss
    return out


def rss_growth(samples: list[tuple[float, dict[str, int]]], window: float) -> dict[str, dict]:
    """Mean RSS per process over the first and the last `window` seconds, and the growth."""
    if not samples:
        return {}
    end = samples[-1][0]
    out = {}
    for name in sorted({n for _, s in samples for n in s}):
        first = [s[name] for t, s in samples if t <= window and name in s]
        last = [s[name] for t, s in samples if t >= end - window and name in s]
        if first and last:
            a, b = statistics.fmean(first), statistics.fmean(last)
            out[name] = {"first_mb": a / 2**20, "last_mb": b / 2**20, "growth": b / a - 1}
    return out


def summarise(soak: Soak, seconds: float) -> dict:
    lat = sorted(soak.tally.latencies_ms)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None  # noqa: E731
    window = min(60.0, seconds / 3)
    growth = rss_growth(soak.rss, window)
    workers = [g["growth"] for name, g in growth.items() if name.startswith("worker")]
    return {"seconds": seconds, "users": soak.users_n, "outcomes": dict(soak.tally.outcomes),
            "unexpected": soak.tally.unexpected, "unexpected_count": soak.tally.outcomes["UNEXPECTED"],
            "good_p50_ms": q(0.5), "good_p99_ms": q(0.99), "good_requests": len(lat),
            "rss_window_s": window, "rss": growth,
            "rss_samples_mb": [[round(t, 1), {n: round(v / 2**20, 1) for n, v in sample.items()}]
                               for t, sample in soak.rss],
            "worker_rss_growth_max": max(workers) if workers else None,
            "targets_met": soak.tally.outcomes["UNEXPECTED"] == 0 and bool(workers)
            and max(workers) <= RSS_GROWTH_TARGET}


def report(s: dict) -> str:
    lines = [f"featurelock soak: {s['seconds']:g} s, {s['users']} users, {s['good_requests']} good "
             f"responses, p50 {s['good_p50_ms']:.1f} ms, p99 {s['good_p99_ms']:.1f} ms",
             "outcomes: " + ", ".join(f"{k}: {v}" for k, v in sorted(s["outcomes"].items())),
             f"unexpected errors: {s['unexpected_count']}"]
    lines += [f"  {u}" for u in s["unexpected"][:10]]
    lines.append(f"RSS, mean of the first vs last {s['rss_window_s']:.0f} s:")
    for name, g in s["rss"].items():
        lines.append(f"  {name:<16} {g['first_mb']:8.1f} MB -> {g['last_mb']:8.1f} MB "
                     f"({g['growth'] * 100:+.1f}%)")
    lines.append(f"targets (0 unexpected errors, worker RSS growth <= {RSS_GROWTH_TARGET:.0%}): "
                 f"{'met' if s['targets_met'] else 'MISSED'}")
    return "\n".join(lines)


def run_soak(seconds: float, users: int, workdir: Path) -> dict:
    stack = Stack.build(workdir, (SCHEME,), tenant="acme", max_batch_delay=5)
    tokens = {"acme": stack.endpoints[SCHEME].token,
              "beta": add_tenant(stack.endpoints[SCHEME].registry, "beta", SCHEME, stack.kek,
                                 rotate_token=False)}
    with stack:
        soak = Soak(stack, tokens, sample_images(16), seconds, users)
        soak.run()
    return summarise(soak, seconds)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="featurelock-soak-") as tmp:
        summary = run_soak(a.seconds, a.users, a.workdir or Path(tmp) / "stack")
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(report(summary))
    return 0 if summary["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
