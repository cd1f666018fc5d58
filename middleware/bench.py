"""`featurelock bench`: throughput and latency of every scheme, beside the hardware ceilings.

Measures, for a batch (64 x 2048 float32) and a single 2048-d vector: a plain numpy copy (the
memory-bandwidth ceiling), raw AES-256-GCM from `cryptography`, the raw ShuffleBits permutation
(the chosen kernel, and the numpy fallback), and each scheme's full envelope encrypt and
decrypt. Each figure is the best of several rounds (least disturbed by other processes) on one
thread. Then the key-independence check: the permutation's time under 100 random keys, beside
the same key timed 100 times (the machine's own noise).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Callable

import numpy as np

from ._benes import apply_numpy
from ._kernels import kernel_name, warm
from .keyset import Keyset
from .protect import Context, FeatureProtector, FeatureReader
from .schemes import SCHEMES
from .shufflebits import ShuffleBits

TARGETS = ("targets: raw ShuffleBits permutation >= raw AES-GCM (stretch 2x); every shufflebits "
           "envelope >= 0.5x the aes-256-gcm envelope; <= 10 us added per single vector "
           "(stretch 5 us); time per call varies < 2% across 100 random keys; a sealed (HPKE) "
           "scheme adds <= 60 us per single vector")
SEALED_TARGET_US = 60
KEYS = 100


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

    warm()
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
            "raw ShuffleBits, numpy fallback": lambda: apply_numpy(x.view(np.uint32), sb._forward.masks),
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


def key_independence(rounds: int = 7, keys: int = KEYS) -> dict:
    """Per-call time of the batch permutation under `keys` random keys, and under one key
    timed `keys` times. Keys are timed round-robin (each round visits every key), so drift of
    the machine lands on all of them alike; each key keeps its best round."""
    x = np.random.default_rng(1).standard_normal((64, 2048)).astype(np.float32)
    out = np.empty_like(x)

    def spread(ciphers: list[ShuffleBits]) -> dict:
        best = [float("inf")] * len(ciphers)
        for _ in range(rounds):
            for i, cipher in enumerate(ciphers):
                best[i] = min(best[i], best_seconds(lambda c=cipher: c.encrypt_array(x, out), 1, 0.002))
        t = np.array(best)
        return {"median_us": float(np.median(t) * 1e6), "spread": float((t.max() - t.min()) / np.median(t)),
                "cv": float(t.std() / t.mean())}

    one = ShuffleBits.generate()
    return {"keys": keys, "random keys": spread([ShuffleBits.generate() for _ in range(keys)]),
            "one key": spread([one] * keys)}


def report(rows: list[dict], independence: dict | None = None) -> str:
    lines = [f"kernel: {kernel_name()}",
             f"{'size':<14} {'case':<36} {'GB/s':>8} {'us/call':>10}"]
    for r in rows:
        lines.append(f"{r['size']:<14} {r['case']:<36} {r['gb_per_s']:>8.2f} {r['us_per_call']:>10.1f}")
    if independence:
        lines.append("")
        lines.append(f"key independence (batch 64x2048, {independence['keys']} keys, best of rounds each):")
        for label in ("random keys", "one key"):
            r = independence[label]
            lines.append(f"  {label:<12} median {r['median_us']:.1f} us, max-min spread "
                         f"{r['spread'] * 100:.1f}%, coefficient of variation {r['cv'] * 100:.2f}%")
    lines.append("")
    lines += _verdicts(rows, independence)
    return "\n".join(lines)


def _verdicts(rows: list[dict], independence: dict | None = None) -> list[str]:
    at = {(r["size"], r["case"]): r for r in rows}
    batch, single = "batch 64x2048", "single 2048"
    mark = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    out = [TARGETS]
    perm = at[(batch, "raw ShuffleBits permutation")]["gb_per_s"]
    aes = at[(batch, "raw AES-256-GCM (cryptography)")]["gb_per_s"]
    out.append(f"- raw permutation {perm:.2f} GB/s = {perm / aes:.2f}x raw AES-GCM ({aes:.2f} GB/s) "
               f"[{mark(perm >= aes)}; stretch {mark(perm >= 2 * aes)}]")
    for op in ("encrypt", "decrypt"):
        gcm = at[(batch, f"aes-256-gcm envelope {op}")]["gb_per_s"]
        for name in SCHEMES:
            if name.startswith("shufflebits"):
                env = at[(batch, f"{name} envelope {op}")]["gb_per_s"]
                out.append(f"- {name} envelope {op} {env:.2f} GB/s = {env / gcm:.2f}x aes-256-gcm "
                           f"[{mark(env >= 0.5 * gcm)}]")
    copy = at[(single, "numpy copy (ceiling)")]["us_per_call"]
    for name, cls in SCHEMES.items():
        enc = at[(single, f"{name} envelope encrypt")]["us_per_call"] - copy
        dec = at[(single, f"{name} envelope decrypt")]["us_per_call"] - copy
        worst = max(enc, dec)
        verdict = (f"{mark(worst <= SEALED_TARGET_US)}" if cls.sealed  # a KEM per message
                   else f"{mark(worst <= 10)}; stretch {mark(worst <= 5)}")
        out.append(f"- {name}: single vector adds {enc:.1f} us to encrypt, {dec:.1f} us to decrypt "
                   f"[{verdict}]")
    if independence:
        keys, one = independence["random keys"], independence["one key"]
        # Judged on the coefficient of variation: the max-min spread of even one key timed
        # 100 times is about 2% on a shared VM, so it measures the machine, not the kernel.
        out.append(f"- time across random keys varies by {keys['cv'] * 100:.2f}% (coefficient of "
                   f"variation; max-min {keys['spread'] * 100:.1f}%, vs {one['cv'] * 100:.2f}% and "
                   f"{one['spread'] * 100:.1f}% for one key timed alike) [{mark(keys['cv'] < 0.02)}]")
    return out


def run(args: argparse.Namespace) -> int:
    rows = measure(args.rounds, args.seconds)
    independence = key_independence(args.rounds)
    print(f"featurelock bench — one thread, best of {args.rounds} rounds, cpu count {os.cpu_count()}")
    print(report(rows, independence))
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"kernel": kernel_name(), "rows": rows, "key_independence": independence}, f, indent=1)
    return 0
