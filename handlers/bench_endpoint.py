"""Endpoint latency: plaintext vs every scheme, TorchScript vs onnxruntime, batch 1 and 8.

    python -m featurelock.handlers.bench_endpoint [--requests 200] [--out results.json]

One loopback TorchServe serves the default model once per (backend, scheme). "batch 1": one
client sends requests back to back (each request is a batch of one). "batch 8": 8 concurrent
clients against batchSize=8, maxBatchDelay=5 ms, so the worker runs batches of up to 8. Reported
per request: client-side latency p50/p90 (ms, includes HTTP and the Java frontend) and
throughput. Not a test; the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["run_bench", "main"]

SCHEMES = ("plaintext", "aes-256-gcm", "shufflebits", "shufflebits-otp", "shufflebits-masked")
BACKENDS = ("torchscript", "onnx")


def _setup(root: Path):
    import io

    import torch
    from PIL import Image

    from featurelock.export.bundle import export_model
    from featurelock.middleware import create_kek_file
    from featurelock.models.synthetic import make_pedestrians
    from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model

    from .packaging import build_mar, resolve_model
    from .tenants_cli import add_tenant

    torch.manual_seed(0)
    export_model(load_model("reid-compact", pretrained=DEFAULT_WEIGHTS.is_file()), root / "export",
                 batch_sizes=(1, 2))
    kek_uri = create_kek_file(root / "kek")
    env, tokens = {"FEATURELOCK_KEK": kek_uri}, {}
    for scheme in SCHEMES[1:]:
        var = "BENCH_REG_" + scheme.replace("-", "_").upper()
        env[var] = str(root / f"reg-{scheme}")
        tokens[scheme] = add_tenant(root / f"reg-{scheme}", "bench", scheme, kek_uri,
                                    allow_leaky=True)  # benchmarks every scheme
    tokens["plaintext"] = tokens["aes-256-gcm"]
    for backend in BACKENDS:
        source = resolve_model(root / "export", backend)
        for scheme in SCHEMES:
            var = "BENCH_REG_" + ("aes-256-gcm" if scheme == "plaintext" else scheme).replace("-", "_").upper()
            build_mar(source, scheme, f"{backend}-{scheme}", "1", root / "store",
                      serving={"key_registry_env": var}, batchSize=8, maxBatchDelay=5)
    images = []
    for img in make_pedestrians(32, n_ids=32, seed=11).images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG")
        images.append(buf.getvalue())
    return env, tokens, images


def _measure(client, images, n: int, concurrency: int) -> dict:
    def one(i: int) -> float:
        t = time.perf_counter()
        r = client.embed(images[i % len(images)])
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}")
        return time.perf_counter() - t

    for i in range(min(n, 16)):  # warm-up
        one(i)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        lat = sorted(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    return {"p50_ms": 1e3 * statistics.median(lat), "p90_ms": 1e3 * lat[int(0.9 * (len(lat) - 1))],
            "req_per_s": n / wall}


def run_bench(n_requests: int = 200, worker_threads: int | None = None) -> list[dict]:
    from .client import EndpointClient
    from .server import TorchServeProcess

    results = []
    with tempfile.TemporaryDirectory(prefix="featurelock-bench-") as tmp:
        env, tokens, images = _setup(Path(tmp))
        if worker_threads:  # intra-op threads of each worker (torch / OpenMP)
            env["OMP_NUM_THREADS"] = str(worker_threads)
        with TorchServeProcess(Path(tmp) / "store", env=env, startup_timeout=300) as ts:
            for backend in BACKENDS:
                for scheme in SCHEMES:
                    client = EndpointClient(ts.inference_url, f"{backend}-{scheme}", "bench",
                                            tokens[scheme], ts.inference_key)
                    for batch in (1, 8):
                        row = {"backend": backend, "scheme": scheme, "batch": batch,
                               **_measure(client, images, n_requests, batch)}
                        results.append(row)
                        print(f"{backend:11s} {scheme:18s} batch {batch}: p50 {row['p50_ms']:6.2f} ms"
                              f"  p90 {row['p90_ms']:6.2f} ms  {row['req_per_s']:7.1f} req/s",
                              flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per configuration")
    parser.add_argument("--worker-threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the workers (default: library default)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    results = run_bench(args.requests, args.worker_threads)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
