"""The amortised crafter: one forward pass F0 -> F, distilled from the per-batch optimiser.

Serving cannot afford `craft` per request (tens of seconds a batch on a CPU core). The
`CraftNet` is a residual MLP on unit features, trained by regression onto the optimiser's
outputs for public features; its output is L2-normalised like every served feature (and like
Crafter-z's Enc(G(z))). Its beta is stored in the weights file, so a served file cannot
claim another trade-off than the one it was distilled for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CraftNet", "DistillConfig", "distill"]


class CraftNet(nn.Module):
    """(N, D) unit features -> (N, D) crafted unit features."""

    def __init__(self, dim: int, hidden: int = 256, beta: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, dim))
        self.register_buffer("beta", torch.tensor(float(beta)))
        self.dim = dim

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.normalize(f + self.net(f), p=2.0, dim=1)


@dataclass(frozen=True)
class DistillConfig:
    epochs: int = 300
    batch: int = 64
    lr: float = 1e-3
    hidden: int = 256


def distill(f0: torch.Tensor, crafted: torch.Tensor, beta: float, config: DistillConfig,
            seed: int = 0, progress: Callable[[int, dict], None] | None = None) -> CraftNet:
    """Regress the optimiser's crafted features on the plaintext ones (cosine + MSE)."""
    if f0.shape != crafted.shape:
        raise ValueError(f"f0 and crafted must have one shape, got {tuple(f0.shape)} and "
                         f"{tuple(crafted.shape)}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = CraftNet(f0.shape[1], config.hidden, beta)
    opt = torch.optim.Adam(net.parameters(), config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs)
    n, began = f0.shape[0], time.monotonic()
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for s in range(0, n, config.batch):
            idx = order[s:s + config.batch]
            loss = ((net(f0[idx]) - crafted[idx]) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        sched.step()
        if progress is not None:
            progress(epoch, {"mse": total / n, "s": time.monotonic() - began})
    return net.eval()
