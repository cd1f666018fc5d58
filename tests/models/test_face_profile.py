"""Face profile: user TorchScript and ONNX models, ArcFace normalisation, L2 output."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from featurelock.models.embedder import EmbeddingModel, OnnxEmbedder
from featurelock.models.errors import ModelError
from featurelock.models.profiles import ARCFACE_112
from featurelock.models.zoo import load_model


class _ChannelMeans(nn.Module):
    """(N, 3, 112, 112) -> (N, 4): per-channel means and a constant 1, so the served
    (L2-normalised) output reveals the preprocessing: out[c] / out[3] = mean of channel c."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = x.mean(dim=(2, 3))
        return torch.cat([means, torch.ones_like(means[:, :1])], dim=1)


class _TinyFaceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)
        self.fc = nn.Linear(8, 32)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def _save_both(module, tmp_path, stem):
    module = module.eval()
    x = torch.zeros(2, 3, 112, 112)
    ts = tmp_path / f"{stem}.pt"
    torch.jit.save(torch.jit.trace(module, x), str(ts))
    onnx_path = tmp_path / f"{stem}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(onnx_path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17,
                          dynamo=False)
    return ts, onnx_path


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)


def test_arcface_normalisation_reaches_the_model(tmp_path):
    ts, onnx_path = _save_both(_ChannelMeans(), tmp_path, "means")
    img = np.zeros((1, 112, 112, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 255, 127, 0
    expected = (np.array([255, 127, 0]) - 127.5) / 128  # RGB order, (x - 127.5) / 128
    for path in (ts, onnx_path):
        out = load_model("face", path=path).embed(img)[0]
        assert np.allclose(out[:3] / out[3], expected, atol=1e-5)
        assert np.isclose(np.linalg.norm(out), 1.0, atol=1e-6)


def test_torchscript_and_onnx_face_models_agree(tmp_path, faces):
    torch.manual_seed(0)
    ts, onnx_path = _save_both(_TinyFaceNet(), tmp_path, "tiny")
    a, b = load_model("face", path=ts), load_model("face", path=onnx_path)
    assert isinstance(a, EmbeddingModel) and isinstance(b, OnnxEmbedder)
    assert a.profile == b.profile == ARCFACE_112 and a.output_dim == b.output_dim == 32
    ea, eb = a.embed(faces), b.embed(faces)
    assert ea.shape == (5, 32) and np.allclose(np.linalg.norm(ea, axis=1), 1.0, atol=1e-5)
    assert (np.sum(ea * eb, axis=1) > 0.9999).all()


def test_face_needs_a_valid_file(tmp_path):
    with pytest.raises(ModelError, match="needs a path"):
        load_model("face")

    class _Gray(nn.Module):
        def forward(self, x):
            return nn.functional.conv2d(x, torch.ones(4, 1, 3, 3)).mean(dim=(2, 3))

    path = tmp_path / "gray.pt"
    torch.jit.save(torch.jit.trace(_Gray(), torch.zeros(1, 1, 112, 112)), str(path))
    with pytest.raises(ModelError, match="112"):
        load_model("face", path=path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 not onnx")
    with pytest.raises(ModelError, match="ONNX"):
        load_model("face", path=garbage)
