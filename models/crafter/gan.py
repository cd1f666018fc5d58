"""The attacker's public prior: a DCGAN-size generator G and a WGAN-GP critic.

G maps a latent z ~ N(0, I) (64-d) to a 64x32 RGB image in [0, 1] (half the 128x64 crop:
the encoder's `torch_forward` upsamples, and synthetic pedestrians carry no detail that
64x32 loses). It is trained on "public" pedestrians: a separate synthetic draw whose people
are not the victims (`public_pedestrians`). The critic is also what Crafter's per-batch
objective trains afresh, so both live here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LATENT", "IMAGE_HW", "Generator", "Critic", "GanConfig", "gradient_penalty",
           "critic_step", "train_gan", "public_pedestrians", "to_unit_images"]

LATENT = 64
IMAGE_HW = (64, 32)
PUBLIC_SEED_OFFSET = 7919  # the public draw's seed = seed + this: other people than the scan's


class Generator(nn.Module):
    """z (N, latent) -> (N, 3, 64, 32) in [0, 1]: a 4x2 seed and four x2 upsampling blocks."""

    def __init__(self, latent: int = LATENT, width: int = 64) -> None:
        super().__init__()
        if latent < 1 or width < 4:
            raise ValueError(f"latent must be >= 1 and width >= 4, got {latent}, {width}")
        self.latent, self.width = latent, width
        self.seed = nn.Linear(latent, 4 * width * 4 * 2)
        chans = (4 * width, 2 * width, width, width // 2, width // 4)
        blocks: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:]):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*blocks, nn.Conv2d(chans[-1], 3, 3, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.seed(z)).view(-1, 4 * self.width, 4, 2)
        return torch.sigmoid(self.body(x))


class Critic(nn.Module):
    """(N, 3, 64, 32) -> (N,) scores; no batch norm (the gradient penalty is per sample)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        chans = (3, width, 2 * width, 4 * width, 4 * width)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(4 * width * 4 * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != IMAGE_HW:
            x = F.interpolate(x, size=IMAGE_HW, mode="bilinear", align_corners=False)
        return self.head(self.body(x).flatten(1)).squeeze(1)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - 1)^2 on random interpolates."""
    eps = torch.rand(real.shape[0], 1, 1, 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_step(critic: nn.Module, opt: torch.optim.Optimizer, real: torch.Tensor,
                fake: torch.Tensor, gp_weight: float) -> tuple[float, float]:
    """One critic update: maximise D(real) - D(fake) under the penalty. Returns (EMD, GP)."""
    real, fake = real.detach(), fake.detach()
    emd = critic(real).mean() - critic(fake).mean()
    gp = gradient_penalty(critic, real, fake)
    opt.zero_grad(set_to_none=True)
    (-emd + gp_weight * gp).backward()
    opt.step()
    return emd.item(), gp.item()


@dataclass(frozen=True)
class GanConfig:
    steps: int = 1500  # generator steps
    batch: int = 32
    critic_steps: int = 5
    gp_weight: float = 10.0
    lr: float = 2e-4
    width: int = 64


def to_unit_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, 64, 32) in [0, 1] (area downsampling)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return F.interpolate(x, size=IMAGE_HW, mode="area")


def public_pedestrians(n_images: int, seed: int = 0) -> np.ndarray:
    """The public prior's images: a synthetic draw of their own people (seed offset), never
    the scan's attacker or victim identities (those come from `make_splits(seed)`)."""
    from featurelock.models.synthetic import make_pedestrians

    n_ids = max(1, n_images // 4)
    return make_pedestrians(n_images, n_ids, seed=seed + PUBLIC_SEED_OFFSET).images


def train_gan(images: torch.Tensor, config: GanConfig, seed: int = 0,
              progress: Callable[[int, dict], None] | None = None) -> Generator:
    """WGAN-GP on (N, 3, 64, 32) images in [0, 1]; deterministic for a seed."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    G, D = Generator(width=config.width), Critic()
    opt_g = torch.optim.Adam(G.parameters(), config.lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), config.lr, betas=(0.0, 0.9))
    n = images.shape[0]
    began = time.monotonic()
    for step in range(config.steps):
        for _ in range(config.critic_steps):
            real = images[torch.randint(n, (config.batch,), generator=gen)]
            with torch.no_grad():
                fake = G(torch.randn(config.batch, G.latent, generator=gen))
            emd, gp = critic_step(D, opt_d, real, fake, config.gp_weight)
        fake = G(torch.randn(config.batch, G.latent, generator=gen))
        loss = -D(fake).mean()
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        if progress is not None:
            progress(step, {"emd": emd, "gp": gp, "s": time.monotonic() - began})
    return G.eval()
