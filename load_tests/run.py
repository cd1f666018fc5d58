"""`make loadtest`: headless locust against ONE engine, plaintext vs every scheme, A/B.

    python -m load_tests.run [--engine torchserve|ray|kserve] [--users 4] [--duration 15]
                             [--rounds 2] [--schemes ...] [--out out/loadtest]

Builds a throwaway stack (exported model, test keys, one endpoint per scheme on TorchServe, a
local Ray Serve or a KServe model server, on 127.0.0.1 with featurelock's metrics), warms
every endpoint, then runs locust with a fixed user
count and duration for each endpoint in alternation: P S1 P S2 ... P Sn P, `--rounds` times.
Each scheme run is compared with the plaintext runs right before and after it (drift on a
shared machine cancels). Writes locust's CSV files and summary.json under --out and prints
throughput ratio, p50/p95 latency ratio per scheme, and the server-side encrypt share from
the engine's metrics pages. Targets (a benchmark, not a test): throughput ratio >= 0.98, p50 ratio
<= 1.02. Exit status 1 only if a locust response failed validation or a run did not complete.
Everything it starts is stopped on exit (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .server_metrics import ServerMetrics, settled
from featurelock.handlers.stack import ENGINES, PLAINTEXT, SCHEMES, TENANT, Stack, sample_images

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
THROUGHPUT_TARGET = 0.98
P50_TARGET = 1.02


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m load_tests.run", description=__doc__.split("\n")[0])
    p.add_argument("--engine", choices=ENGINES, default="torchserve")
    p.add_argument("--users", type=int, default=4, help="concurrent locust users (default 4)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per run (default 15)")
    p.add_argument("--rounds", type=int, default=2, help="A/B rounds (default 2)")
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    p.add_argument("--sample-every", type=int, default=20,
                   help="decrypt and check one response in N (default 20)")
    p.add_argument("--out", type=Path, default=Path("out/loadtest"))
    p.add_argument("--workdir", type=Path, default=None,
                   help="stack directory (default: a temporary one, removed afterwards)")
    a = p.parse_args(argv)
    for name in ("users", "rounds", "sample_every"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 1 <= a.duration <= 600:
        p.error("--duration must be 1..600 seconds")
    return a


def _sequence(schemes: list[str], rounds: int) -> list[str]:
    seq = [PLAINTEXT]
    for _ in range(rounds):
        for s in schemes:
            seq += [s, PLAINTEXT]
    return seq


def _warm(stack: Stack, images: list[bytes], n: int = 16) -> int:
    """A few requests per endpoint (first-call costs out of the way); the feature dimension."""
    from featurelock.handlers.client import EndpointClient

    dim = 0
    for scheme, ep in stack.endpoints.items():
        c = EndpointClient(stack.url, ep.model, TENANT, ep.token, stack.inference_key,
                           protocol=stack.protocol)
        for i in range(n):
            r = c.embed(images[i % len(images)])
            if r.status != 200:
                raise RuntimeError(f"warm-up: {ep.model} answered {r.status}")
        if scheme != PLAINTEXT:
            dim = c.read(r, stack.keyset(scheme)).shape[1]
        c.close()
    return dim


def _locust(stack: Stack, scheme: str, idx: int, a: argparse.Namespace, image_paths: list[str],
            dim: int) -> dict:
    ep = stack.endpoints[scheme]
    prefix = a.out / f"{idx:02d}-{scheme}"
    cfg_path = a.out / f"{idx:02d}-{scheme}.config.json"
    latency_out = a.out / f"{idx:02d}-{scheme}.latency.json"
    cfg = {"endpoint": ep.__dict__, "kek": stack.kek, "tenant": TENANT, "dim": dim,
           "inference_key": stack.inference_key, "protocol": stack.protocol,
           "images": image_paths,
           "sample_every": a.sample_every, "latency_out": str(latency_out)}
    cfg_path.write_text(json.dumps(cfg))
    user = "PlaintextUser" if scheme == PLAINTEXT else "EncryptedUser"
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
           "-u", str(a.users), "-r", str(a.users), "-t", f"{a.duration:g}s",
           "--host", stack.url, "--csv", str(prefix), "--only-summary",
           "--stop-timeout", "5", "--loglevel", "WARNING", user]
    env = dict(os.environ, FL_LOAD_CONFIG=str(cfg_path))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=a.duration + 90, start_new_session=True)
    cfg_path.unlink(missing_ok=True)  # it names the test keys' KEK file
    stats = _aggregated(Path(f"{prefix}_stats.csv"))
    if not stats or not stats["Request Count"] or not latency_out.is_file():
        raise RuntimeError(f"locust run {idx} ({scheme}) produced no stats:\n{proc.stderr[-2000:]}")
    lat = json.loads(latency_out.read_text())
    return {"scheme": scheme, "requests": stats["Request Count"], "failures": stats["Failure Count"],
            "rps": stats["Requests/s"], "p50_ms": lat.get("p50_ms"), "p95_ms": lat.get("p95_ms"),
            "locust_p50_ms": stats["50%"], "locust_p95_ms": stats["95%"]}


def _aggregated(path: Path) -> dict | None:
    import csv

    if not path.is_file():
        return None
    with path.open() as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return {k: float(row[k]) if row[k] != "N/A" else None
                        for k in ("Request Count", "Failure Count", "Requests/s", "50%", "95%")}
    return None


def summarise(runs: list[dict], server: ServerMetrics, schemes: list[str]) -> dict:
    """Per scheme: ratios against the plaintext runs adjacent to each of its runs."""
    out = {}
    for scheme in schemes:
        ratios = {"throughput": [], "p50": [], "p95": []}
        for i, run in enumerate(runs):
            if run["scheme"] != scheme:
                continue
            base = [runs[j] for j in (i - 1, i + 1)
                    if 0 <= j < len(runs) and runs[j]["scheme"] == PLAINTEXT]
            ratios["throughput"].append(run["rps"] / statistics.mean(b["rps"] for b in base))
            ratios["p50"].append(run["p50_ms"] / statistics.mean(b["p50_ms"] for b in base))
            ratios["p95"].append(run["p95_ms"] / statistics.mean(b["p95_ms"] for b in base))
        entry = {k: statistics.mean(v) for k, v in ratios.items() if v}
        entry.update(encrypt_share=server.share(scheme),
                     encrypt_mean_s=server.mean(scheme, "encrypt"),
                     encrypt_p50_s=server.quantile(0.5, scheme, "encrypt"),
                     encrypt_p95_s=server.quantile(0.95, scheme, "encrypt"),
                     handler_mean_s=server.mean(scheme, "handler"))
        entry["meets_targets"] = (entry.get("throughput", 0) >= THROUGHPUT_TARGET
                                  and entry.get("p50", 9) <= P50_TARGET)
        out[scheme] = entry
    plain = [r for r in runs if r["scheme"] == PLAINTEXT]
    out[PLAINTEXT] = {"rps": statistics.mean(r["rps"] for r in plain),
                      "p50_ms": statistics.mean(r["p50_ms"] for r in plain),
                      "p95_ms": statistics.mean(r["p95_ms"] for r in plain),
                      "handler_mean_s": server.mean(PLAINTEXT, "handler"),
                      "serialise_share": server.share(PLAINTEXT, "serialise")}
    return out


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def report(summary: dict, runs: list[dict], a: argparse.Namespace) -> str:
    plain = summary[PLAINTEXT]
    lines = [f"featurelock load test on {a.engine}: {a.users} users, {a.duration:g} s per run, {a.rounds} round(s), "
             f"{len(runs)} runs, loopback",
             f"plaintext JSON baseline: {plain['rps']:.1f} req/s, p50 {plain['p50_ms']:.2f} ms, "
             f"p95 {plain['p95_ms']:.2f} ms (serialise share {_fmt(plain['serialise_share'], '.2%')})",
             f"{'scheme':<20}{'thr ratio':>10}{'p50 ratio':>10}{'p95 ratio':>10}"
             f"{'enc share':>11}{'enc p50':>10}{'enc p95':>10}  targets (>= {THROUGHPUT_TARGET}, "
             f"<= {P50_TARGET})"]
    for scheme, e in summary.items():
        if scheme == PLAINTEXT:
            continue
        lines.append(f"{scheme:<20}{_fmt(e.get('throughput'), '.3f'):>10}{_fmt(e.get('p50'), '.3f'):>10}"
                     f"{_fmt(e.get('p95'), '.3f'):>10}{_fmt(e['encrypt_share'], '.3%'):>11}"
                     f"{_fmt(e['encrypt_p50_s'] and e['encrypt_p50_s'] * 1e6, '.1f') + 'us':>10}"
                     f"{_fmt(e['encrypt_p95_s'] and e['encrypt_p95_s'] * 1e6, '.1f') + 'us':>10}"
                     f"  {'met' if e['meets_targets'] else 'MISSED'}")
    beats = [s for s, e in summary.items() if s != PLAINTEXT and e.get("throughput", 0) > 1.0]
    lines.append(f"binary envelope beats plaintext JSON on throughput: {', '.join(beats) or 'none'}")
    lines.append(f"CSV files and summary.json in {a.out}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="featurelock-load-") as tmp:
        workdir = a.workdir or Path(tmp) / "stack"
        stack = Stack.build(workdir, (PLAINTEXT, *a.schemes), engine=a.engine)
        images = sample_images(16)
        image_paths = []
        for i, img in enumerate(images):
            path = Path(tmp) / f"img{i:02d}.png"
            path.write_bytes(img)
            image_paths.append(str(path))
        with stack:
            dim = _warm(stack, images)
            before = settled(stack.metrics_urls)
            runs = []
            for idx, scheme in enumerate(_sequence(a.schemes, a.rounds)):
                runs.append(_locust(stack, scheme, idx, a, image_paths, dim))
                print(f"  run {idx:02d} {scheme:<20} {runs[-1]['rps']:7.1f} req/s  "
                      f"p50 {runs[-1]['p50_ms']:.2f} ms  failures {runs[-1]['failures']:.0f}",
                      flush=True)
            server = settled(stack.metrics_urls).minus(before)
    summary = summarise(runs, server, a.schemes)
    failures = sum(r["failures"] for r in runs)
    (a.out / "summary.json").write_text(json.dumps(
        {"engine": a.engine, "users": a.users, "duration_s": a.duration, "rounds": a.rounds, "runs": runs,
         "summary": summary, "failures": failures,
         "wall_s": round(time.monotonic() - started, 1)}, indent=2))
    print(report(summary, runs, a))
    if failures:
        print(f"{failures:.0f} responses failed validation; see {a.out}/*_failures.csv")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
