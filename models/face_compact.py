"""face-compact: a small face embedder for aligned 112x112 faces, 128-d output.

About 0.3M parameters: a stride-2 stem and three residual stages (32, 64, 128 channels, each
halving the resolution: 56 -> 28 -> 14 -> 7), then MobileFaceNet's global depthwise
convolution (GDC: one 7x7 depthwise filter per channel, so the head keeps WHERE a feature is,
which global average pooling would throw away — eyes and mouth sit at fixed places in an
aligned face), a linear projection to 128 dimensions and a BatchNorm neck. L2 normalisation is
added by the zoo's EmbeddingModel wrapper, as for every served model.
"""

from __future__ import annotations

import torch
from torch import nn

from .reid_compact import _Block, _conv_bn

__all__ = ["FaceCompact", "FACE_EMBED_DIM"]

FACE_EMBED_DIM = 128


class FaceCompact(nn.Module):
    """(N, 3, 112, 112) normalised RGB -> (N, embed_dim) embeddings (not yet L2-normalised)."""

    def __init__(self, embed_dim: int = FACE_EMBED_DIM,
                 widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        stem, *stages = widths
        layers: list[nn.Module] = [_conv_bn(3, stem, stride=2), nn.ReLU(inplace=True)]
        cin = stem
        for cout in stages:
            layers.append(_Block(cin, cout, stride=2))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.gdc = nn.Sequential(nn.Conv2d(cin, cin, 7, groups=cin, bias=False),
                                 nn.BatchNorm2d(cin))
        self.project = nn.Linear(cin, embed_dim, bias=False)
        self.neck = nn.BatchNorm1d(embed_dim)
        self.embed_dim = embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.project(self.gdc(self.features(x)).flatten(1)))
