"""`make bench-scale`: throughput and p50 of one encrypted endpoint as replicas are added, on Ray
Serve and on TorchServe, with the same locust users the load test uses.

    python -m load_tests.scale_out [--replicas 1 2 4] [--users 8] [--duration 20]
                                   [--scheme aes-256-gcm] [--out out/scale-out]

For each engine and replica count: a fresh stack (Ray: one raylet per replica on this machine;
TorchServe: that many workers), a warm-up, then a closed-loop locust run with a fixed number of
users, large enough to keep every replica busy. Prints requests/s, p50, and the efficiency of
each step (rps_N / (N * rps_1)); writes summary.json. On one machine the replicas share its
cores, so the efficiency says what replicas cost, not what more machines would add: on a real
cluster each node brings its own cores (README, "Scale out").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from featurelock.handlers.stack import Stack, sample_images

from .run import _locust, _warm

ENGINES = ("ray", "torchserve")


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m load_tests.scale_out",
                                description=__doc__.split("\n")[0])
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--scheme", default="aes-256-gcm")
    p.add_argument("--sample-every", type=int, default=20)
    p.add_argument("--direct-ingress", action="store_true",
                   help="also one Ray replica served without Serve's proxy (Ray 2.60's "
                        "experimental RAY_SERVE_ENABLE_DIRECT_INGRESS)")
    p.add_argument("--out", type=Path, default=Path("out/scale-out"))
    a = p.parse_args(argv)
    if any(n < 1 for n in a.replicas) or a.users < 1:
        p.error("--replicas and --users must be >= 1")
    return a


def _measure(engine: str, replicas: int, a: argparse.Namespace, tmp: Path,
             image_paths: list[str], direct_ingress: bool = False) -> dict:
    stack = Stack.build(tmp / f"{engine}-{replicas}", (a.scheme,), engine=engine,
                        replicas=replicas)
    stack.direct_ingress = direct_ingress
    if direct_ingress:
        engine = "ray-direct"
    with stack:
        dim = _warm(stack, sample_images(16), n=16 * replicas)
        run = _locust(stack, a.scheme, 0, argparse.Namespace(
            users=a.users, duration=a.duration, sample_every=a.sample_every,
            out=a.out / f"{engine}-{replicas}"), image_paths, dim)
    if run["failures"]:
        raise RuntimeError(f"{engine} x{replicas}: {run['failures']:.0f} responses failed")
    return {"engine": engine, "replicas": replicas, "rps": run["rps"], "p50_ms": run["p50_ms"],
            "p95_ms": run["p95_ms"], "requests": run["requests"]}


def report(rows: list[dict], a: argparse.Namespace) -> str:
    lines = [f"scale-out: {a.scheme}, {a.users} users, {a.duration:g} s per run, this machine",
             f"{'engine':<12}{'replicas':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
             f"{'efficiency':>12}"]
    for row in rows:
        base = next(r for r in rows if r["engine"] == row["engine"]
                    and r["replicas"] == min(x["replicas"] for x in rows
                                             if x["engine"] == row["engine"]))
        eff = row["rps"] / (row["replicas"] / base["replicas"] * base["rps"])
        row["efficiency"] = eff
        lines.append(f"{row['engine']:<12}{row['replicas']:>9}{row['rps']:>9.1f}"
                     f"{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}{eff:>12.2f}")
    for n in sorted({r["replicas"] for r in rows}):
        pair = {r["engine"]: r for r in rows if r["replicas"] == n}
        if {"ray-direct", "torchserve"} <= set(pair):
            direct, ts = pair["ray-direct"], pair["torchserve"]
            lines.append(f"ray without its proxy / torchserve at {n} replica: throughput "
                         f"{direct['rps'] / ts['rps']:.2f}x, p50 "
                         f"{direct['p50_ms'] / ts['p50_ms']:.2f}x")
        if {"ray", "torchserve"} <= set(pair):
            ray, ts = pair["ray"], pair["torchserve"]
            lines.append(f"ray / torchserve at {n} replica(s): throughput "
                         f"{ray['rps'] / ts['rps']:.2f}x, p50 {ray['p50_ms'] / ts['p50_ms']:.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="featurelock-scale-") as tmp_name:
        tmp = Path(tmp_name)
        image_paths = []
        for i, img in enumerate(sample_images(16)):
            path = tmp / f"img{i:02d}.png"
            path.write_bytes(img)
            image_paths.append(str(path))
        runs = [(engine, n, False) for engine in a.engines for n in a.replicas]
        if a.direct_ingress:
            runs.append(("ray", 1, True))
        for engine, n, direct in runs:
            name = "ray-direct" if direct else engine
            (a.out / f"{name}-{n}").mkdir(parents=True, exist_ok=True)
            rows.append(_measure(engine, n, a, tmp, image_paths, direct))
            print(f"  {name} x{n}: {rows[-1]['rps']:.1f} req/s, "
                  f"p50 {rows[-1]['p50_ms']:.2f} ms", flush=True)
    text = report(rows, a)
    (a.out / "summary.json").write_text(json.dumps(
        {"scheme": a.scheme, "users": a.users, "duration_s": a.duration, "rows": rows,
         "wall_s": round(time.monotonic() - started, 1)}, indent=2))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
