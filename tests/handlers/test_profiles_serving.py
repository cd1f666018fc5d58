"""Bring your own model, without a server: one output rule on every backend, and a model that
does not fit its profile refused by `package`, `serve` (every engine) and every worker at start,
each with one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from featurelock.handlers.errors import ServerConfigError
from featurelock.handlers.pipeline import ServingPipeline
from featurelock.handlers.runners import load_runner
from featurelock.handlers.serving_config import ServingConfig
from featurelock.middleware.cli import main as featurelock_cli
from featurelock.models.profiles import ARCFACE_112, REID_128x64
from featurelock.models.user_model import load_user_model

from fl_serving_helpers import file_kek, make_registry, user_models

# TorchScript and onnxruntime run the same float32 graph with different kernels: outputs agree to
# ~1e-7 here; 1e-5 (on unit vectors, or relative to the raw norm) is the stated tolerance.
BACKEND_TOL = 1e-5


@pytest.fixture(scope="module")
def face_pair(tmp_path_factory):
    """One untrained face net (112x112 -> 128-d, no normalisation of its own) saved as
    TorchScript and as ONNX, as a user would export it."""
    import warnings

    root = tmp_path_factory.mktemp("face-pair")
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 128)).eval()
    with torch.no_grad():
        net[-1].weight.mul_(10.0)  # raw vectors far from unit length, so `none` shows
    x = torch.zeros(1, 3, 112, 112)
    ts, ox = root / "face.pt", root / "face.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, x), str(ts))
        torch.onnx.export(net, (x,), str(ox), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17,
                          dynamo=False)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    with torch.no_grad():
        raw = net(torch.from_numpy(ARCFACE_112.prepare(images))).numpy()
    return ts, ox, images, raw


@pytest.mark.parametrize("output", ["l2", "none"])
def test_torchscript_and_onnx_serve_the_same_vectors(face_pair, output):
    """The one rule: served vector = profile.finish(model output), on either backend, on the
    server's runners and through the local API alike (before, the same face model answered raw
    vectors as TorchScript and unit vectors as ONNX)."""
    ts, ox, images, raw = face_pair
    profile = ARCFACE_112.with_(output=output)
    x = torch.from_numpy(profile.prepare(images))
    served = {b: load_runner(p, b, None, profile)(x).numpy()
              for b, p in (("torchscript", ts), ("onnx", ox))}
    local = {b: load_user_model(p, profile).embed(images) for b, p in (("torchscript", ts),
                                                                         ("onnx", ox))}
    scale = np.abs(raw).max()
    for vectors in (*served.values(), *local.values()):
        assert vectors.shape == (5, 128) and vectors.dtype == np.float32
        assert np.abs(vectors - served["torchscript"]).max() <= BACKEND_TOL * max(scale, 1) \
            if output == "none" else np.abs(vectors - served["torchscript"]).max() <= BACKEND_TOL
    norms = np.linalg.norm(served["onnx"], axis=1)
    if output == "l2":
        assert np.allclose(norms, 1.0, atol=1e-6)
        assert np.abs(served["onnx"] - raw / np.linalg.norm(raw, axis=1, keepdims=True)).max() \
            <= BACKEND_TOL
    else:
        assert (norms > 2).all()  # the model's own scale, untouched
        assert np.abs(served["onnx"] - raw).max() <= BACKEND_TOL * max(scale, 1)


def _one_line_error(capsys, argv: list[str]) -> str:
    assert featurelock_cli(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    return user_models(tmp_path_factory.mktemp("byo"))


def test_package_refuses_a_model_that_does_not_fit(byo, tmp_path, capsys):
    store = ["--out", str(tmp_path / "store"), "--name", "m"]
    err = _one_line_error(capsys, ["package", "--model-dir", str(byo["face128"]), *store])
    assert "bare model file" in err and "--profile" in err  # no silent 128x64 profile
    err = _one_line_error(capsys, ["package", "--model-dir", str(byo["face128"]), "--profile",
                                   "reid-128x64", *store])
    assert "does not run on profile 'reid-128x64' input (N, 3, 128, 64)" in err
    err = _one_line_error(capsys, ["package", "--model-dir", str(byo["reid512"]), "--profile",
                                   "reid-compact", "--output-dim", "256", *store])
    assert "answers 512-d vectors, the config says 256" in err

    class _NaN(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3)) / 0.0 * 0.0

    nan = tmp_path / "nan.pt"
    torch.jit.save(torch.jit.trace(_NaN(), torch.zeros(1, 3, 128, 64)), str(nan))
    err = _one_line_error(capsys, ["package", "--model-dir", str(nan), "--profile",
                                   "reid-128x64", *store])
    assert "non-finite" in err
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").iterdir())


@pytest.mark.parametrize("engine", ["torchserve", "ray", "kserve"])
def test_serve_refuses_before_any_engine_starts(byo, tmp_path, capsys, engine):
    """A face model without --profile, or with the wrong one, never reports ready."""
    base = ["serve", "--engine", engine, "--model-dir", str(byo["face128"]), "--scheme",
            "aes-256-gcm", "--name", "face", "--workdir", str(tmp_path / "w")]
    assert "--profile" in _one_line_error(capsys, base)
    err = _one_line_error(capsys, [*base, "--profile", "reid-128x64"])
    assert "does not run on profile 'reid-128x64'" in err


def test_every_worker_checks_at_start(byo, tmp_path, monkeypatch):
    """ServingPipeline.load, which every engine's worker runs: wrong profile or output_dim ->
    ServerConfigError before anything is served; the right ones start."""
    kek = file_kek(tmp_path)
    make_registry(tmp_path / "reg", "aes-256-gcm", kek, tenants=("acme",))
    monkeypatch.setenv("FEATURELOCK_KEY_REGISTRY", str(tmp_path / "reg"))
    monkeypatch.setenv("FEATURELOCK_KEK", kek)

    def config(profile, dim=None, path=byo["reid512"]):
        return ServingConfig("aes-256-gcm", "m", "1", path.name,
                             "onnx" if path.suffix == ".onnx" else "torchscript",
                             profile.to_dict(), output_dim=dim)

    with pytest.raises(ServerConfigError, match="answers 512-d vectors, the config says 256"):
        ServingPipeline.load(config(REID_128x64, 256), byo["reid512"])
    with pytest.raises(ServerConfigError, match="does not run on profile 'reid-128x64'"):
        ServingPipeline.load(config(REID_128x64, path=byo["face128"]), byo["face128"])
    pipeline = ServingPipeline.load(config(ARCFACE_112, 128, byo["face128"]), byo["face128"])
    pipeline.registry.close()  # the registry watcher thread
