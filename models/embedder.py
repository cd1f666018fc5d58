"""The one interface every served model has: uint8 images in, the profile's vectors out.

`EmbeddingModel` wraps a torch backbone (an nn.Module or a TorchScript module) and appends the
profile's output rule (`InputProfile.finish`: L2 normalisation for `output: l2`), so the
exported graph already returns what is served. `OnnxEmbedder` offers the same `embed` for an
ONNX file run by onnxruntime, with the same rule applied after the session.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .imaging import preprocess
from .profiles import InputProfile

__all__ = ["EmbeddingModel", "OnnxEmbedder"]


class EmbeddingModel(nn.Module):
    """backbone + the profile's output rule, with the profile, name and version it is served
    under."""

    def __init__(self, backbone: nn.Module, profile: InputProfile, name: str, version: str,
                 output_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.profile = profile
        self.model_name = name
        self.version = version
        self.output_dim = output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.profile.finish(self.backbone(x))

    @torch.inference_mode()
    def embed(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, output_dim) float32 vectors (eval mode)."""
        was_training = self.training
        self.eval()
        try:
            return _embed_batches(lambda x: self(x).numpy(), images, self.profile,
                                  self.output_dim, batch_size)
        finally:
            self.train(was_training)


class OnnxEmbedder:
    """An onnxruntime session with the EmbeddingModel `embed` interface."""

    def __init__(self, session: Any, profile: InputProfile, name: str, version: str) -> None:
        self.session = session
        self.profile = profile
        self.model_name = name
        self.version = version
        self.input_name = session.get_inputs()[0].name
        probe = self.run(np.zeros((1, 3, profile.height, profile.width), np.float32))
        if probe.ndim != 2:
            raise ValueError(f"{name}: model output must be (N, D), got shape {probe.shape}")
        self.output_dim = int(probe.shape[1])

    def run(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed (N, 3, H, W) float32 -> (N, D) float32, the profile's output rule
        applied."""
        out = self.raw(x)
        return self.profile.finish(out) if out.ndim == 2 else out

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The session's own output for a preprocessed batch, as float32."""
        out = self.session.run(None, {self.input_name: x.astype(np.float32)})[0]
        return np.asarray(out, dtype=np.float32)

    def embed(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, output_dim) float32 vectors."""
        return _embed_batches(lambda x: self.run(x.numpy()), images, self.profile,
                              self.output_dim, batch_size)


def _embed_batches(run: Callable[[torch.Tensor], np.ndarray], images: np.ndarray,
                   profile: InputProfile, output_dim: int, batch_size: int) -> np.ndarray:
    out = [run(preprocess(images[i:i + batch_size], profile))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, output_dim), np.float32)
