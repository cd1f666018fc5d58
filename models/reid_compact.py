"""The default re-ID embedder: a compact residual CNN for 128x64 pedestrian crops.

About 0.9M parameters: a stride-2 stem, three residual stages (64, 128, 192 channels, each
halving the resolution), global average pooling, a linear projection to 256 dimensions and a
BatchNorm "neck" (BNNeck, Luo et al. 2019: the triplet loss sees the features before the neck,
the identity classifier the features after it). The backbone returns the neck output; L2
normalisation is added by the model zoo wrapper so every served model ends the same way.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ReidCompact", "EMBED_DIM"]

EMBED_DIM = 256


def _conv_bn(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout))


class _Block(nn.Module):
    """Two 3x3 convolutions with a projected shortcut (ResNet basic block)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, stride), nn.ReLU(inplace=True),
                                  _conv_bn(cout, cout))
        self.shortcut = _conv_bn(cin, cout, stride, kernel=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ReidCompact(nn.Module):
    """(N, 3, 128, 64) normalised RGB -> (N, embed_dim) embeddings (not yet L2-normalised)."""

    def __init__(self, embed_dim: int = EMBED_DIM, widths: tuple[int, ...] = (32, 64, 128, 192)) -> None:
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
        self.project = nn.Linear(cin, embed_dim, bias=False)
        self.neck = nn.BatchNorm1d(embed_dim)
        self.embed_dim = embed_dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-neck features: what the triplet loss is computed on during training."""
        return self.project(self.features(x).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neck(self.forward_features(x))
