"""The amortised inversion attacker: feature -> latent, then a few refine steps.

z*(F) = argmin_z ||F - Enc(G(z))||^2 is the inversion every Crafter objective differentiates
through. Solving it from scratch takes hundreds of steps (the authors: ~80 momentum steps
after an amortiser); the `Inverter` network predicts z from F in one pass, trained on
(Enc(G(z)), z) pairs that cost nothing but the prior, so `invert` needs only `refine` steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .gan import LATENT, Generator

__all__ = ["Encoder", "Inverter", "InverterConfig", "train_inverter", "inversion_loss",
           "invert"]

Encoder = Callable[[torch.Tensor], torch.Tensor]  # (N, 3, H, W) in [0, 1] -> (N, D)


class Inverter(nn.Module):
    """(N, D) features -> (N, latent): a two-hidden-layer MLP."""

    def __init__(self, dim: int, latent: int = LATENT, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, latent))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


@dataclass(frozen=True)
class InverterConfig:
    steps: int = 1500
    batch: int = 64
    lr: float = 1e-3
    refine: int = 20  # momentum steps after the amortiser (serving and attacks)
    refine_lr: float = 5e-3


def inversion_loss(G: Generator, enc: Encoder, z: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Per-sample ||F - Enc(G(z))||^2, summed over the batch (so the Hessian is per sample)."""
    return ((enc(G(z)) - f) ** 2).sum()


def train_inverter(G: Generator, enc: Encoder, dim: int, config: InverterConfig, seed: int = 0,
                   progress: Callable[[int, dict], None] | None = None) -> Inverter:
    """Regress z from Enc(G(z)) on fresh prior samples (no images needed)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    inv = Inverter(dim, G.latent)
    opt = torch.optim.Adam(inv.parameters(), config.lr)
    began = time.monotonic()
    for step in range(config.steps):
        z = torch.randn(config.batch, G.latent, generator=gen)
        with torch.no_grad():
            f = enc(G(z))
        loss = ((inv(f) - z) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step, {"z_mse": loss.item(), "s": time.monotonic() - began})
    return inv.eval()


def invert(G: Generator, enc: Encoder, inv: Inverter, f: torch.Tensor, steps: int,
           lr: float = 5e-3, momentum: float = 0.9) -> torch.Tensor:
    """z*(F): the amortiser's guess refined by `steps` momentum-SGD steps (detached)."""
    with torch.no_grad():
        z0 = inv(f)
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.SGD([z], lr=lr, momentum=momentum)
    f = f.detach()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        inversion_loss(G, enc, z, f).backward()
        opt.step()
    return z.detach()
