"""The one interface every served model has: uint8 images in, L2-normalised vectors out.

`EmbeddingModel` wraps a torch backbone (an nn.Module or a TorchScript module) and appends L2
normalisation, so the exported graph already returns unit vectors. `OnnxEmbedder` offers the
same `embed` for an ONNX file run by onnxruntime (user-provided face models).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .imaging import preprocess
from .profiles import InputProfile

__all__ = ["EmbeddingModel", "OnnxEmbedder"]


class EmbeddingModel(nn.Module):
    """backbone + L2 normalisation, with the profile, name and version it is served under."""

    def __init__(self, backbone: nn.Module, profile: InputProfile, name: str, version: str,
                 output_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.profile = profile
        self.model_name = name
        self.version = version
        self.output_dim = output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone(x), p=2.0, dim=1)

    @torch.inference_mode()
    def embed(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, output_dim) float32 unit vectors (eval mode)."""
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
        """Preprocessed (N, 3, H, W) float32 -> (N, D) L2-normalised float32."""
        out = np.asarray(self.session.run(None, {self.input_name: x.astype(np.float32)})[0])
        norms = np.linalg.norm(out, axis=1, keepdims=True) if out.ndim == 2 else 1.0
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, output_dim) float32 unit vectors."""
        return _embed_batches(lambda x: self.run(x.numpy()), images, self.profile,
                              self.output_dim, batch_size)


def _embed_batches(run: Callable[[torch.Tensor], np.ndarray], images: np.ndarray,
                   profile: InputProfile, output_dim: int, batch_size: int) -> np.ndarray:
    out = [run(preprocess(images[i:i + batch_size], profile))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, output_dim), np.float32)
