"""Crafter serving latency: the amortised crafter endpoint vs the plaintext one, on TorchServe.

    python -m featurelock.handlers.bench_crafter --crafter-file models/weights/crafter/craft-beta0.3.pt

One loopback TorchServe serves the default model twice (TorchScript): `scheme: plaintext` and
`scheme: crafter` with the given crafting network. Requests alternate between the two in
rounds so machine noise hits both alike; one client, batch 1. Reported: client-side p50/p90
(ms) of each and the ratio. Not a test; the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
from pathlib import Path

from .bench_endpoint import _measure

__all__ = ["run_bench", "main"]


def _setup(root: Path, crafter_file: Path) -> tuple[dict, str, list[bytes]]:
    import torch
    from PIL import Image

    from featurelock.export.bundle import export_model
    from featurelock.middleware import create_kek_file
    from featurelock.models.crafter.files import load_craftnet
    from featurelock.models.synthetic import make_pedestrians
    from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model

    from .packaging import build_mar, resolve_model
    from .tenants_cli import add_tenant

    torch.manual_seed(0)
    export_model(load_model("reid-compact", pretrained=DEFAULT_WEIGHTS.is_file()), root / "export",
                 batch_sizes=(1, 2))
    kek_uri = create_kek_file(root / "kek")
    # Keyless schemes read only the tenants' tokens from the registry; its keyset goes unused.
    token = add_tenant(root / "reg", "bench", "aes-256-gcm", kek_uri)
    source = resolve_model(root / "export", "torchscript")
    beta = round(float(load_craftnet(crafter_file).beta), 6)  # the file holds float32
    for scheme, extra in (("plaintext", {}),
                          ("crafter", {"crafter_file": str(crafter_file), "beta": beta})):
        build_mar(source, scheme, f"bench-{scheme}", "1", root / "store",
                  serving={"key_registry_env": "BENCH_REG", **extra}, batchSize=1)
    images = []
    for img in make_pedestrians(32, n_ids=32, seed=11).images:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "PNG")
        images.append(buf.getvalue())
    return {"BENCH_REG": str(root / "reg"), "FEATURELOCK_KEK": kek_uri}, token, images


def run_bench(crafter_file: Path, n_requests: int = 200, rounds: int = 3,
              worker_threads: int | None = 1) -> dict:
    from .client import EndpointClient
    from .server import TorchServeProcess

    samples: dict[str, list[dict]] = {"plaintext": [], "crafter": []}
    with tempfile.TemporaryDirectory(prefix="featurelock-bench-crafter-") as tmp:
        env, token, images = _setup(Path(tmp), Path(crafter_file).resolve())
        if worker_threads:
            env["OMP_NUM_THREADS"] = str(worker_threads)
        with TorchServeProcess(Path(tmp) / "store", env=env, startup_timeout=300) as ts:
            clients = {s: EndpointClient(ts.inference_url, f"bench-{s}", "bench", token,
                                         ts.inference_key) for s in samples}
            for _ in range(rounds):
                for scheme, client in clients.items():
                    samples[scheme].append(_measure(client, images, n_requests, 1))
    out = {s: {k: sorted(r[k] for r in rows)[len(rows) // 2] for k in ("p50_ms", "p90_ms")}
           for s, rows in samples.items()}
    out["ratio_p50"] = out["crafter"]["p50_ms"] / out["plaintext"]["p50_ms"]
    out["rounds"], out["requests"] = rounds, n_requests
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crafter-file", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200, help="requests per round and endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    result = run_bench(args.crafter_file, args.requests, args.rounds)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
