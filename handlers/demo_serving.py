"""The serving part of `featurelock demo`: export, package, serve, query, decrypt, compare.

    run_serving_demo(workdir) -> 0 on success

Exports the default model (featurelock.export), packages it for aes-256-gcm, creates a tenant
under a fresh file KEK, starts a loopback TorchServe, sends synthetic pedestrians, decrypts
each response with the client SDK and prints its cosine similarity to local inference.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

__all__ = ["run_serving_demo"]

MODEL = "reid"
SCHEME = "aes-256-gcm"
TENANT = "demo-tenant"


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def run_serving_demo(workdir: Path, n_images: int = 4) -> int:
    import torch

    from featurelock.export.bundle import export_model
    from featurelock.middleware import KeyRegistry, create_kek_file, kek_from_uri
    from featurelock.models.model_files import load_torchscript
    from featurelock.models.synthetic import make_pedestrians
    from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model

    from .client import EndpointClient
    from .packaging import build_mar, resolve_model
    from .server import TorchServeProcess
    from .tenants_cli import add_tenant

    start = time.monotonic()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    trained = DEFAULT_WEIGHTS.is_file()
    torch.manual_seed(0)
    model = load_model("reid-compact", pretrained=trained)
    print(f"[serve] exporting reid-compact ({'trained' if trained else 'untrained: run `featurelock train`'} weights)")
    export_model(model, workdir / "export", formats_=("torchscript",), batch_sizes=(1, 2))
    source = resolve_model(workdir / "export", "torchscript")
    mar = build_mar(source, SCHEME, MODEL, "1", workdir / "model-store", force=True)
    print(f"[serve] packaged {mar.name} ({SCHEME}; no keys inside)")

    kek_path = workdir / "kek"
    kek_path.unlink(missing_ok=True)
    kek_uri = create_kek_file(kek_path)
    registry = workdir / "registry"
    if registry.exists():
        for p in registry.iterdir():
            p.unlink()
    token = add_tenant(registry, TENANT, SCHEME, kek_uri)
    keyset = KeyRegistry(registry, kek_from_uri(kek_uri)).keyset(TENANT)
    print(f"[serve] tenant {TENANT}: keyset + token created")

    images = make_pedestrians(n_images, n_ids=n_images, seed=3).images
    module = load_torchscript(source.model_file)
    env = {"FEATURELOCK_KEY_REGISTRY": str(registry.resolve()), "FEATURELOCK_KEK": kek_uri}
    with TorchServeProcess(workdir / "model-store", env=env, workdir=workdir / "torchserve") as ts:
        print(f"[serve] TorchServe ready at {ts.inference_url} ({time.monotonic() - start:.1f}s)")
        client = EndpointClient(ts.inference_url, MODEL, TENANT, token, ts.inference_key)
        worst = 1.0
        for i, image in enumerate(images):
            body = _png(image)
            response = client.embed(body)
            if response.status != 200:
                print(f"[serve] image {i}: HTTP {response.status}")
                return 1
            got = client.read(response, keyset)[0]
            local = _local(module, body, source.profile)
            cosine = float(got @ local / (np.linalg.norm(got) * np.linalg.norm(local)))
            worst = min(worst, cosine)
            print(f"[serve] image {i}: {len(response.body)}-byte envelope -> decrypted "
                  f"{got.shape[0]}-d embedding, cosine to local inference {cosine:.7f}")
        client.close()
    print(f"[serve] server stopped; worst cosine {worst:.7f} ({time.monotonic() - start:.1f}s)")
    return 0 if worst > 0.9999 else 1


def _local(module, body: bytes, profile: dict) -> np.ndarray:
    import torch

    from featurelock.models.imaging import decode_image, preprocess
    from featurelock.models.profiles import InputProfile

    p = InputProfile.from_dict(profile)
    with torch.inference_mode():
        return module(preprocess(np.array(decode_image(body, p))[None], p))[0].numpy()
