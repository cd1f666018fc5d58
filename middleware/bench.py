"""`featurelock bench`: throughput and latency of every scheme, beside the hardware ceilings.

Measures, for a batch (64 x 2048 float32) and a single 2048-d vector: a plain numpy copy (the
memory-bandwidth ceiling), raw AES-256-GCM from `cryptography`, the raw ShuffleBits permutation,
and each scheme's full envelope encrypt and decrypt. Each figure is the best of several rounds
(least disturbed by other processes) on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Callable

import numpy as np

from .protect import Context, FeatureProtector, FeatureReader
from .keyset import Keyset
from .schemes import SCHEMES
from .shufflebits import ShuffleBits

TARGETS = ("targets: shufflebits >= 2 GB/s per core; aes-256-gcm envelope within 20% of raw "
           "AES-GCM; < 20 us added per single vector for every scheme")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=7, help="rounds per figure (best is kept)")
    parser.add_argument("--seconds", type=float, default=0.15, help="minimum time per round")
    parser.add_argument("--json", dest="json_path", default=None, help="also write results here")


def best_seconds(fn: Callable[[], object], rounds: int, min_time: float) -> float:
    """Best per-call time over `rounds` rounds of at least `min_time` seconds each."""
    fn()
    n = 1
    while True:  # calibrate loop count
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= min_time / 4:
            break
        n *= 2
    n = max(1, int(n * min_time / max(time.perf_counter() - start, 1e-9) / 4))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def measure(rounds: int = 7, min_time: float = 0.15) -> list[dict]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    rng = np.random.default_rng(0)
    ctx = Context("bench", "1", "bench")
    shapes = {"batch 64x2048": (64, 2048), "single 2048": (1, 2048)}
    rows = []
    for label, shape in shapes.items():
        x = rng.standard_normal(shape).astype(np.float32)
        aead, nonce, x_bytes = AESGCM(os.urandom(32)), os.urandom(12), x.reshape(-1).view(np.uint8)
        sb = ShuffleBits.generate()
        cases: dict[str, Callable[[], object]] = {
            "numpy copy (ceiling)": x.copy,
            "raw AES-256-GCM (cryptography)": lambda: aead.encrypt(nonce, x_bytes, ctx.associated_data()),
            "raw ShuffleBits permutation": lambda: sb.encrypt_array(x),
        }
        for name in SCHEMES:
            keyset = Keyset.generate(name, allow_leaky=True)  # measures every scheme
            protector, reader = FeatureProtector(keyset), FeatureReader(keyset)
            envelope = bytes(protector.protect(x, ctx))
            cases[f"{name} envelope encrypt"] = lambda p=protector: p.protect(x, ctx)
            cases[f"{name} envelope decrypt"] = lambda r=reader, e=envelope: r.read(e, ctx)
        for name, fn in cases.items():
            seconds = best_seconds(fn, rounds, min_time)
            rows.append({"size": label, "case": name, "us_per_call": seconds * 1e6,
                         "gb_per_s": x.nbytes / seconds / 1e9, "bytes": x.nbytes})
    return rows


def report(rows: list[dict]) -> str:
    lines = [f"{'size':<14} {'case':<36} {'GB/s':>8} {'us/call':>10}"]
    for r in rows:
        lines.append(f"{r['size']:<14} {r['case']:<36} {r['gb_per_s']:>8.2f} {r['us_per_call']:>10.1f}")
    lines.append("")
    lines += _verdicts(rows)
    return "\n".join(lines)


def _verdicts(rows: list[dict]) -> list[str]:
    at = {(r["size"], r["case"]): r for r in rows}
    batch, single = "batch 64x2048", "single 2048"
    out = [TARGETS]
    perm = at[(batch, "raw ShuffleBits permutation")]["gb_per_s"]
    env = at[(batch, "shufflebits envelope encrypt")]["gb_per_s"]
    out.append(f"- shufflebits permutation {perm:.2f} GB/s, with envelope (HMAC-SHA256) {env:.2f} GB/s "
               f"[{'met' if perm >= 2 else 'MISSED'} for the permutation, "
               f"{'met' if env >= 2 else 'MISSED'} with the envelope]")
    raw = at[(batch, "raw AES-256-GCM (cryptography)")]["us_per_call"]
    gcm = at[(batch, "aes-256-gcm envelope encrypt")]["us_per_call"]
    out.append(f"- aes-256-gcm envelope {gcm:.1f} us vs raw {raw:.1f} us: +{(gcm / raw - 1) * 100:.0f}% "
               f"[{'met' if gcm <= 1.2 * raw else 'MISSED'}]")
    copy = at[(single, "numpy copy (ceiling)")]["us_per_call"]
    for name in SCHEMES:
        enc = at[(single, f"{name} envelope encrypt")]["us_per_call"] - copy
        dec = at[(single, f"{name} envelope decrypt")]["us_per_call"] - copy
        out.append(f"- {name}: single vector adds {enc:.1f} us to encrypt, {dec:.1f} us to decrypt "
                   f"[{'met' if max(enc, dec) < 20 else 'MISSED'}]")
    return out


def run(args: argparse.Namespace) -> int:
    rows = measure(args.rounds, args.seconds)
    print(f"featurelock bench — one thread, best of {args.rounds} rounds, cpu count {os.cpu_count()}")
    print(report(rows))
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(rows, f, indent=1)
    return 0
