"""`train_crafter`: the whole chain, deterministic for a seed.

public pedestrians -> WGAN-GP prior G -> amortised inverter (on Enc(G(z))) -> for each beta:
the per-batch optimiser (`craft`) on public features -> a distilled CraftNet. Writes
`prior.pt` and one `craft-beta<B>.pt` per beta (see `files`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .amortised import DistillConfig, distill
from .crafting import CraftConfig, craft
from .files import craftnet_name, save_craftnet, save_prior
from .gan import GanConfig, public_pedestrians, to_unit_images, train_gan
from .inverter import Encoder, InverterConfig, train_inverter

__all__ = ["CrafterTrainConfig", "train_crafter", "craft_batches"]

Progress = Callable[[str, int, int, dict], None]  # (stage, step, total, stats)


@dataclass(frozen=True)
class CrafterTrainConfig:
    seed: int = 0
    public_images: int = 2000
    distill_images: int = 512  # public features crafted by the optimiser per beta
    betas: tuple[float, ...] = (0.5, 2.0, 8.0)
    gan: GanConfig = field(default_factory=lambda: GanConfig(steps=800, critic_steps=2))
    inverter: InverterConfig = field(default_factory=InverterConfig)
    craft: CraftConfig = field(default_factory=CraftConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    craft_batch: int = 32

    def __post_init__(self) -> None:
        if not self.betas or min(self.betas) < 0:
            raise ValueError(f"betas must be >= 0 and at least one, got {self.betas}")
        if self.public_images < 8 or self.distill_images < 1:
            raise ValueError("public_images must be >= 8 and distill_images >= 1")


def _stage(progress: Progress | None, name: str, total: int):
    return (lambda step, stats: progress(name, step, total, stats)) if progress else None


def craft_batches(G, enc: Encoder, inv, f0: torch.Tensor, config: CraftConfig, batch: int,
                  seed: int = 0, progress: Callable[[int, dict], None] | None = None
                  ) -> tuple[torch.Tensor, list[float]]:
    """The optimiser over `f0` in batches (each its own fresh critic and seed); also returns
    each batch's wall time."""
    out, seconds = [], []
    for b, s in enumerate(range(0, f0.shape[0], batch)):
        res = craft(G, enc, inv, f0[s:s + batch], config, seed=seed + b)
        out.append(res.features)
        seconds.append(res.seconds)
        if progress is not None:
            progress(b, {"emd": res.separation[-1], "dist": res.distance, "s": res.seconds})
    return torch.cat(out), seconds


def train_crafter(enc: Encoder, dim: int, out_dir: str | Path,
                  config: CrafterTrainConfig = CrafterTrainConfig(),
                  progress: Progress | None = None) -> dict:
    """Train and write everything; returns a JSON-able summary (files, seconds, per-beta
    optimiser cost and distillation error)."""
    began = time.monotonic()
    out_dir = Path(out_dir)
    images = public_pedestrians(config.public_images, config.seed)
    x = to_unit_images(images)
    G = train_gan(x, config.gan, config.seed, _stage(progress, "prior (WGAN-GP)",
                                                     config.gan.steps))
    inv = train_inverter(G, enc, dim, config.inverter, config.seed + 1,
                         _stage(progress, "inverter", config.inverter.steps))
    prior = save_prior(G, inv, dim, out_dir / "prior.pt")
    summary: dict = {"prior": str(prior), "seed": config.seed, "betas": {}}
    # Distillation inputs: public features of images the prior did not train on.
    rng = np.random.default_rng(config.seed)
    pick = rng.choice(len(images), min(config.distill_images, len(images)), replace=False)
    with torch.no_grad():
        f0 = enc(x[np.sort(pick)])
    n_batches = -(-f0.shape[0] // config.craft_batch)
    for beta in config.betas:
        cfg = CraftConfig(**{**config.craft.__dict__, "beta": beta})
        crafted, seconds = craft_batches(G, enc, inv, f0, cfg, config.craft_batch,
                                         config.seed, _stage(progress, f"craft beta={beta:g}",
                                                             n_batches))
        net = distill(f0, crafted, beta, config.distill, config.seed,
                      _stage(progress, f"distill beta={beta:g}", config.distill.epochs))
        with torch.no_grad():
            err = float(((net(f0) - crafted) ** 2).sum(1).mean())
        path = save_craftnet(net, out_dir / craftnet_name(beta))
        summary["betas"][f"{beta:g}"] = {
            "file": str(path), "method": cfg.method,
            "optimiser_seconds_per_batch": float(np.mean(seconds)),
            "batch": config.craft_batch, "distance": float(((crafted - f0) ** 2).sum(1).mean()),
            "distill_mse": err}
    summary["seconds"] = round(time.monotonic() - began, 1)
    return summary
