"""Models the harness evaluates with, behind one small interface.

    embed(images uint8 NHWC) -> (N, D) float32 unit vectors
    torch_forward(x) -> (N, D)   x: (N, 3, H, W) float in [0, 1], differentiable (for rMLE)

* `ZooEvaluator`: a featurelock.models zoo model (the default re-ID model: its trained weights
  when the file is present, else a seeded random initialisation — reported as such).
* `PixelEmbedder`: a transparent stand-in "model" (a fixed random projection of a 16x8
  thumbnail of the image's centre, where the person stands, L2-normalised) that certainly
  carries identity (rank-1 about 0.45 on synthetic victims, chance 0.03) and attributes. The harness's own
  tests serve it so they check the harness has teeth whatever the re-ID model's quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ZooEvaluator", "PixelEmbedder", "default_evaluator"]


class ZooEvaluator:
    """A zoo model as the plaintext re-embedding model and the white-box insider's copy."""

    def __init__(self, name: str = "reid-compact", path: str | Path | None = None,
                 seed: int = 0) -> None:
        from featurelock.models.zoo import load_model, packaged_weights

        packaged = packaged_weights(name)
        pretrained = path is not None or packaged is None or packaged.is_file()
        torch.manual_seed(seed)
        self.model = load_model(name, path, pretrained=pretrained)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.profile = self.model.profile
        weights = Path(path).name if path is not None else packaged.name if packaged else "default"
        self.description = (f"{name} ({'weights ' + weights if pretrained else 'UNTRAINED: seeded random init, no weights file'})")

    def embed(self, images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.embed(images, 128)

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.profile.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.profile.std).view(1, 3, 1, 1)
        if self.profile.channel_order == "BGR":
            x = x.flip(1)
        if tuple(x.shape[2:]) != (self.profile.height, self.profile.width):
            x = F.interpolate(x, size=(self.profile.height, self.profile.width), mode="bilinear",
                              align_corners=False)
        return self.model((x * 255.0 - mean) / std)


class PixelEmbedder:
    """The centre crop (rows 1/8..7/8, columns 5/16..11/16) as a 16x8 RGB thumbnail, minus
    its mean, times a fixed Gaussian matrix, L2-normalised."""

    description = "pixel embedder (16x8 centre thumbnail, fixed random projection to 256-d)"

    def __init__(self, dim: int = 256, thumb: tuple[int, int] = (16, 8), seed: int = 0) -> None:
        self.thumb = thumb
        rng = np.random.default_rng(seed)
        self.proj = torch.from_numpy(
            rng.standard_normal((3 * thumb[0] * thumb[1], dim)).astype(np.float32))

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        x = x[:, :, h // 8: h - h // 8, (5 * w) // 16: (11 * w) // 16]
        t = F.interpolate(x, size=self.thumb, mode="area").flatten(1)
        t = t - t.mean(dim=1, keepdim=True)
        return F.normalize(t @ self.proj, dim=1)

    def embed(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            return self.torch_forward(x).numpy()

    __call__ = embed


def default_evaluator(model: str = "reid-compact", weights: str | Path | None = None,
                      seed: int = 0):
    """'pixel' for the PixelEmbedder, else a zoo model name."""
    if model == "pixel":
        return PixelEmbedder(seed=seed)
    return ZooEvaluator(model, weights, seed)
