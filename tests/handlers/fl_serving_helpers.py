"""Helpers shared by the serving tests: a small exported model, images, tenants, references."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from featurelock.export.bundle import export_model
from featurelock.handlers.tenant_tokens import TenantTokens
from featurelock.handlers.tenants_cli import add_tenant
from featurelock.middleware import KeyRegistry, create_kek_file, kek_from_uri
from featurelock.models.imaging import decode_image, preprocess
from featurelock.models.model_files import load_onnx_session, load_torchscript
from featurelock.models.synthetic import make_pedestrians
from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model

SCHEMES = ("aes-256-gcm", "shufflebits", "shufflebits-otp", "shufflebits-masked")

# A server's worker and the test's local reference run the same file on the same input, but
# float32 sums may run in another order (another thread count, batch size or kernel choice),
# which moves unit-norm features by a few ULPs (up to 1.3e-7 measured across thread counts).
# What is exact stays exact: an envelope opens only if every byte is the worker's (GCM tag),
# so a decrypted response equals the features that worker computed, bit for bit.
CROSS_PROCESS_TOL = 1e-5


def assert_same_features(got: np.ndarray, expected: np.ndarray,
                         tol: float = CROSS_PROCESS_TOL) -> None:
    """Served features vs the local reference of the same model, within `tol` (see above)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == np.float32 and got.shape == expected.shape, (got.dtype, got.shape,
                                                                     expected.shape)
    worst = float(np.abs(got - expected).max()) if got.size else 0.0
    assert worst <= tol, f"max |served - local| = {worst:.3g} > {tol}"


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def pedestrian_pngs(n: int, seed: int = 7) -> list[bytes]:
    return [png(img) for img in make_pedestrians(n, n_ids=n, seed=seed).images]


def export_default_model(out_dir: Path):
    """The default model (trained weights when present, else a seeded random init)."""
    torch.manual_seed(0)
    model = load_model("reid-compact", pretrained=DEFAULT_WEIGHTS.is_file())
    return export_model(model, out_dir, batch_sizes=(1, 2))


def user_models(directory: Path) -> dict[str, Path]:
    """A user's own models, made here (tiny, untrained, seeded): "reid512", a TorchScript
    re-ID net (128x64 in, 512-d out), and "face128", an ONNX face net (112x112 in, 128-d out,
    dynamic batch) whose last layer reads a fixed-size map, so any other input size fails."""
    import warnings

    from torch import nn

    directory.mkdir(parents=True, exist_ok=True)
    out = {"reid512": directory / "my-reid512.pt", "face128": directory / "my-face128.onnx"}
    if all(p.is_file() for p in out.values()):
        return out
    torch.manual_seed(1234)
    reid = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d((4, 2)), nn.Flatten(),
                         nn.Linear(256, 512)).eval()
    face = nn.Sequential(nn.Conv2d(3, 8, 3, 4, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 4, 1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(8 * 7 * 7, 128)).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(reid, torch.zeros(1, 3, 128, 64)), str(out["reid512"]))
        torch.onnx.export(face, (torch.zeros(1, 3, 112, 112),), str(out["face128"]),
                          input_names=["pixels"], output_names=["emb"], opset_version=17,
                          dynamic_axes={"pixels": {0: "n"}, "emb": {0: "n"}}, dynamo=False)
    return out


# The user models' profiles, and how close a served vector must be to local inference of the
# same file: float32 kernels may sum in another order in a server's batch or thread count.
BYO = {"reid512": "reid-128x64", "face128": "arcface-112"}
BYO_TOL = CROSS_PROCESS_TOL


def byo_reference(models: dict[str, Path], key: str) -> "Reference":
    from featurelock.models.profiles import load_profile
    from featurelock.models.user_model import backend_of

    return Reference(models[key], backend_of(models[key]), load_profile(BYO[key]))


def face_pngs(n: int, seed: int = 3) -> list[bytes]:
    """PNG bytes of n 112x112 smooth random images (stand-ins for aligned faces)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 14, 14, 3), dtype=np.uint8)
    return [png(np.asarray(Image.fromarray(img).resize((112, 112), Image.BILINEAR)))
            for img in small]


def file_kek(directory: Path) -> str:
    return create_kek_file(directory / "kek")


def make_registry(directory: Path, scheme: str, kek_uri: str,
                  tenants=("acme", "globex")) -> dict[str, str]:
    """Tenants with keysets of `scheme` (leaky ones too: the serving tests cover every
    scheme); returns tenant -> token."""
    return {t: add_tenant(directory, t, scheme, kek_uri, allow_leaky=True) for t in tenants}


def keyset(directory: Path, kek_uri: str, tenant: str):
    return KeyRegistry(directory, kek_from_uri(kek_uri)).keyset(tenant)


class Reference:
    """Local inference with the same file, decoding and preprocessing as the server, and the
    profile's output rule (`InputProfile.finish`, on the torch tensor as every server does)."""

    def __init__(self, model_file: Path, backend: str, profile) -> None:
        self.profile = profile
        if backend == "onnx":
            session = load_onnx_session(model_file)
            name = session.get_inputs()[0].name
            self._run = lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])
        else:
            module = load_torchscript(model_file)

            def run(x):
                with torch.inference_mode():
                    return module(x)
            self._run = run

    def __call__(self, images: list[bytes]) -> np.ndarray:
        batch = np.stack([decode_image(b, self.profile) for b in images])
        with torch.inference_mode():
            return self.profile.finish(self._run(preprocess(batch, self.profile))).numpy()


def prometheus_binary() -> str:
    """The `prometheus` executable; fails under CI (.ci/run installs it), skips elsewhere."""
    import os
    import shutil

    import pytest

    found = shutil.which("prometheus")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (.ci/run installs Debian's package)")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return found


def dashboard_queries(job: str) -> list[tuple[str, str, str]]:
    """(panel, refId, expr) of every target of the shipped Grafana dashboard, as Grafana sends
    them with `$job` = job, every model and `$__rate_interval` = 30s."""
    import json

    from featurelock.serve_config.grafana.dashboard import DASHBOARD_JSON, panel_queries

    doc = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    return panel_queries(doc, {"job": job, "model": ".+", "__rate_interval": "30s"})


def finite_values(result: list) -> list[float]:
    """The finite sample values of a Prometheus instant-vector result."""
    values = [float(r["value"][1]) for r in result]
    return [v for v in values if v == v and abs(v) != float("inf")]


def dashboard_panels_without_data(prom, job: str, timeout: float = 20.0) -> list:
    """The dashboard's targets still without a finite sample for `job` after `timeout` s
    (polled each second); a query Prometheus cannot parse raises PrometheusError."""
    import time

    pending, deadline = dashboard_queries(job), time.monotonic() + timeout
    while True:
        pending = [p for p in pending if not finite_values(prom.query(p[2]))]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(1)


__all__ = ["prometheus_binary", "dashboard_queries", "finite_values",
           "dashboard_panels_without_data", "SCHEMES", "png", "pedestrian_pngs", "export_default_model",
           "user_models", "face_pngs", "BYO", "BYO_TOL", "byo_reference", "file_kek",
           "make_registry", "keyset", "Reference", "TenantTokens"]


class Traffic:
    """Background requests from `threads` threads, each image through `clients` in turn, until
    stopped or `limit` requests were sent: bounded in time and count. `statuses` counts the
    answers by HTTP status."""

    def __init__(self, clients, images, threads: int = 2, limit: int = 3000) -> None:
        import threading

        self.clients, self.images = list(clients), list(images)
        self.limit, self.sent, self.statuses = limit, 0, {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            with self.lock:
                if self.sent >= self.limit:
                    return
                self.sent += 1
            client = self.clients[n % len(self.clients)]
            status = client.embed(self.images[n % len(self.images)]).status
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            n += 1

    def __enter__(self) -> "Traffic":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
