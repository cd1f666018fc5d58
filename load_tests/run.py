"""Headless locust load tests: an A/B run on a stack built here, or any existing endpoint.

    python -m load_tests.run [--engine torchserve|ray|kserve] [--users 4] [--duration 15]
                             [--rounds 2] [--schemes ...] [--out out/loadtest]
    python -m load_tests.run --endpoint URL --tenant T --token TOKEN
                             (--registry DIR | --keyset FILE) --kek URI [--inference-key K]
                             [--images DIR] [--users 4] [--duration 15] [--out DIR]

A/B (`make loadtest`): builds a throwaway stack (exported model, test keys, one endpoint per
scheme on TorchServe, a local Ray Serve or a KServe model server, on 127.0.0.1 with
featurelock's metrics), warms every endpoint, then runs locust with a fixed user count and
duration for each endpoint in alternation: P S1 P S2 ... P Sn P, `--rounds` times. Each scheme
run is compared with the plaintext runs right before and after it (drift on a shared machine
cancels). Writes locust's CSV files and summary.json under --out and prints throughput ratio,
p50/p95 latency ratio per scheme, and the server-side encrypt share from the engine's metrics
pages. Targets (a benchmark, not a test): throughput ratio >= 0.98, p50 ratio <= 1.02.

--endpoint: one locust run against an endpoint that already serves (yours: any model, any
engine). One request first: its answer must be a plaintext features document or an envelope
that decrypts with the tenant's keyset (the registry's, or a keyset file such as a sealed
scheme's consumer keyset), else the run stops with one line. Then every response is validated
and one in --sample-every decrypted to (1, D) float32 with D the first answer's size. Writes
locust's CSV files and summary.json (requests, failures, req/s, p50/p95, responses decrypted).

Exit status 1 if a response failed validation or a run did not complete. Everything it starts is
stopped on exit (also on Ctrl-C).
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
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

CONFIG_FORMAT = """\
locustfile config (load_tests/locustfile.py reads the JSON file named by $FL_LOAD_CONFIG; this
runner writes it, and deletes it after the run):
  {"endpoint": {"scheme": "aes-256-gcm" | "plaintext" | ...,  # locust's request name
                "model": "reid",            # as in the URL and bound into envelopes
                "version": "1",             # bound into envelopes
                "token": "<tenant token>",
                "registry": "/path/registry",          # the tenant's keyset is read here...
                "consumer_keyset": "/path/x.keyset.json"},  # ...or here (sealed schemes)
   "tenant": "acme", "kek": "file:/path/kek",  # KEK URI that unwraps the keyset (never keys)
   "inference_key": "<TorchServe inference key>" | null,
   "protocol": "torchserve" | "kserve-v1" | "kserve-v2",   # torchserve: Ray Serve too
   "images": ["/path/a.png", ...],            # sent in turn, one per request
   "dim": 256 | null,                         # expected feature size, when known
   "sample_every": 20,                        # decrypt one response in N
   "latency_out": "/path/latency.json"}       # exact p50/p95 and decrypted count, at exit
  locust -f load_tests/locustfile.py --headless -u 4 -r 4 -t 10s --host http://127.0.0.1:8080 \\
      PlaintextUser|EncryptedUser"""


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m load_tests.run",
                                description=__doc__.split("\n\n")[0].split("\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2] + "\n" + CONFIG_FORMAT,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=ENGINES, default="torchserve",
                   help="A/B: the engine of the stack built here")
    p.add_argument("--users", type=int, default=4, help="concurrent locust users (default 4)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per run (default 15)")
    p.add_argument("--rounds", type=int, default=2, help="A/B rounds (default 2)")
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    p.add_argument("--sample-every", type=int, default=20,
                   help="decrypt and check one response in N (default 20)")
    p.add_argument("--out", type=Path, default=Path("out/loadtest"))
    p.add_argument("--workdir", type=Path, default=None,
                   help="stack directory (default: a temporary one, removed afterwards)")
    e = p.add_argument_group("an existing endpoint (instead of building a stack)")
    e.add_argument("--endpoint", default=None, metavar="URL",
                   help="http://host:port/predictions/MODEL (TorchServe, Ray Serve), "
                        ".../v1/models/MODEL:predict or .../v2/models/MODEL/infer (KServe)")
    e.add_argument("--tenant", default=None, help="the tenant whose credentials are sent")
    e.add_argument("--token", default=None,
                   help="the tenant's token (default: $FEATURELOCK_TOKEN)")
    e.add_argument("--inference-key", default=None,
                   help="TorchServe's inference key, if it has one (default: "
                        "$FEATURELOCK_INFERENCE_KEY)")
    e.add_argument("--registry", default=None, metavar="DIR",
                   help="key registry holding the tenant's keyset (validation)")
    e.add_argument("--keyset", default=None, metavar="FILE",
                   help="the tenant's keyset file instead (e.g. a sealed scheme's consumer "
                        "keyset)")
    e.add_argument("--kek", default=None, metavar="URI",
                   help="KEK URI that unwraps the keyset (file:..., env:..., pkcs11:...)")
    e.add_argument("--model-version", default="1", help="model version bound into envelopes")
    e.add_argument("--images", type=Path, default=None, metavar="DIR",
                   help="PNG/JPEG images to send (default: 16 synthetic pedestrians)")
    a = p.parse_args(argv)
    for name in ("users", "rounds", "sample_every"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 1 <= a.duration <= 600:
        p.error("--duration must be 1..600 seconds")
    if a.endpoint:
        a.token = a.token or os.environ.get("FEATURELOCK_TOKEN")
        a.inference_key = a.inference_key or os.environ.get("FEATURELOCK_INFERENCE_KEY")
        if not a.tenant or not a.token:
            p.error("--endpoint needs --tenant and --token (or $FEATURELOCK_TOKEN)")
        if (a.registry or a.keyset) and not a.kek:
            p.error("--registry/--keyset need --kek")
        if a.registry and a.keyset:
            p.error("give --registry or --keyset, not both")
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
    cfg = {"endpoint": ep.__dict__, "kek": stack.kek, "tenant": TENANT, "dim": dim,
           "inference_key": stack.inference_key, "protocol": stack.protocol,
           "images": image_paths, "sample_every": a.sample_every}
    user = "PlaintextUser" if scheme == PLAINTEXT else "EncryptedUser"
    return run_locust(cfg, user, stack.url, a.out / f"{idx:02d}-{scheme}", a.users, a.duration)


def run_locust(cfg: dict, user: str, host: str, prefix: Path, users: int,
               duration: float) -> dict:
    """One headless locust run of `user` with config `cfg` (CONFIG_FORMAT, less latency_out);
    its stats, from locust's CSV and the exact latencies the locustfile writes."""
    cfg_path = Path(f"{prefix}.config.json")
    latency_out = Path(f"{prefix}.latency.json")
    cfg_path.write_text(json.dumps({**cfg, "latency_out": str(latency_out)}))
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
           "-u", str(users), "-r", str(users), "-t", f"{duration:g}s",
           "--host", host, "--csv", str(prefix), "--only-summary",
           "--stop-timeout", "5", "--loglevel", "WARNING", user]
    env = dict(os.environ, FL_LOAD_CONFIG=str(cfg_path))
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=duration + 90, start_new_session=True)
    finally:
        cfg_path.unlink(missing_ok=True)  # it names the KEK and the token
    stats = _aggregated(Path(f"{prefix}_stats.csv"))
    if not stats or not stats["Request Count"] or not latency_out.is_file():
        raise RuntimeError(f"locust run {prefix.name} produced no stats:\n{proc.stderr[-2000:]}")
    lat = json.loads(latency_out.read_text())
    return {"scheme": cfg["endpoint"]["scheme"], "requests": stats["Request Count"],
            "failures": stats["Failure Count"], "rps": stats["Requests/s"],
            "p50_ms": lat.get("p50_ms"), "p95_ms": lat.get("p95_ms"),
            "decrypted": lat.get("checked", 0),
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


def _endpoint_images(a: argparse.Namespace, tmp: Path) -> list[str]:
    if a.images is None:
        paths = []
        for i, img in enumerate(sample_images(16)):
            paths.append(str(tmp / f"img{i:02d}.png"))
            Path(paths[-1]).write_bytes(img)
        return paths
    paths = sorted(str(p) for p in a.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"load_tests.run: no {'/'.join(IMAGE_SUFFIXES)} images in {a.images}")
    return paths


def probe_endpoint(a: argparse.Namespace, image: bytes) -> tuple[dict, int]:
    """One request to the endpoint: its locust `endpoint` entry and feature size, or
    SystemExit with one line (refused, not featurelock, or not decryptable with this keyset)."""
    from featurelock.attack_harness.targets import _parse_endpoint
    from featurelock.handlers.client import EndpointClient
    from featurelock.middleware.errors import DecryptionError

    from featurelock.handlers.stack import reader_keyset

    base, model, protocol = _parse_endpoint(a.endpoint)
    client = EndpointClient(base, model, a.tenant, a.token, a.inference_key,
                            version=a.model_version, protocol=protocol)
    try:
        r = client.embed(image)
    except OSError as exc:
        raise SystemExit(f"load_tests.run: {a.endpoint} is unreachable ({exc})") from None
    finally:
        client.close()
    if r.status != 200:
        raise SystemExit(f"load_tests.run: the endpoint answered {r.status} to the first request")
    ep = {"model": model, "version": a.model_version, "token": a.token, "tenant": a.tenant,
          "registry": a.registry or "", "consumer_keyset": a.keyset or "", "protocol": protocol,
          "base": base}
    if r.content_type.startswith("application/json"):
        ep["scheme"] = "plaintext"
        return ep, len(r.json()["features"][0])
    if not (a.registry or a.keyset):
        raise SystemExit("load_tests.run: the endpoint encrypts; give --registry or --keyset "
                         "and --kek to validate its envelopes")
    from featurelock.middleware import Envelope

    try:
        ep["scheme"] = Envelope.from_bytes(r.body).scheme
        features = client.read(r, reader_keyset(ep, a.kek))
    except DecryptionError:
        raise SystemExit("load_tests.run: the endpoint's envelope does not decrypt with this "
                         "tenant's keyset") from None
    return ep, int(features.shape[1])


def main_endpoint(a: argparse.Namespace) -> int:
    """--endpoint: one validated locust run against an endpoint that already serves."""
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="featurelock-load-") as tmp:
        images = _endpoint_images(a, Path(tmp))
        ep, dim = probe_endpoint(a, Path(images[0]).read_bytes())
        cfg = {"endpoint": {k: ep[k] for k in ("scheme", "model", "version", "token",
                                               "registry", "consumer_keyset")},
               "kek": a.kek, "tenant": a.tenant, "dim": dim, "inference_key": a.inference_key,
               "protocol": ep["protocol"], "images": images, "sample_every": a.sample_every}
        user = "PlaintextUser" if ep["scheme"] == PLAINTEXT else "EncryptedUser"
        run = run_locust(cfg, user, ep["base"], a.out / "endpoint", a.users, a.duration)
    doc = {"endpoint": a.endpoint, "tenant": a.tenant, "dim": dim, "users": a.users,
           "duration_s": a.duration, **run}
    (a.out / "summary.json").write_text(json.dumps(doc, indent=2))
    print(f"{a.endpoint} ({ep['scheme']}, {dim}-d): {run['requests']:.0f} requests, "
          f"{run['rps']:.1f} req/s, p50 {_fmt(run['p50_ms'], '.2f')} ms, p95 "
          f"{_fmt(run['p95_ms'], '.2f')} ms, {run['decrypted']} responses "
          f"{'decrypted' if ep['scheme'] != PLAINTEXT else 'parsed'} and checked, "
          f"{run['failures']:.0f} failures; CSV and summary.json in {a.out}")
    if run["failures"]:
        print(f"responses failed validation; see {a.out}/endpoint_failures.csv")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    if a.endpoint:
        return main_endpoint(a)
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
