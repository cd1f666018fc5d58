"""Crafter (NDSS 2024) at CPU scale: features that stay usable without keys.

    gan        the public prior G and the WGAN-GP critic
    inverter   the amortised inversion attacker (feature -> z) and its refine steps
    crafting   the per-batch optimiser: fresh critic + beta ||F - F0||^2, implicit (Neumann)
               hypergradient or Crafter-z
    amortised  the CraftNet distilled from the optimiser: serving is one forward pass
    files      weights-only files for the prior and the CraftNets
    train      the whole chain (`featurelock crafter train`)
"""

from __future__ import annotations

from .amortised import CraftNet, DistillConfig, distill
from .crafting import (METHODS, CraftConfig, CraftResult, craft, craft_implicit, craft_z,
                       critic_separation, neumann_hypergradient)
from .files import craftnet_name, load_craftnet, load_prior, save_craftnet, save_prior
from .gan import LATENT, Critic, GanConfig, Generator, public_pedestrians, train_gan
from .inverter import Inverter, InverterConfig, invert, train_inverter
from .train import CrafterTrainConfig, craft_batches, train_crafter

__all__ = ["CraftNet", "DistillConfig", "distill", "METHODS", "CraftConfig", "CraftResult",
           "craft", "craft_implicit", "craft_z", "critic_separation", "neumann_hypergradient",
           "craftnet_name", "load_craftnet", "load_prior", "save_craftnet", "save_prior",
           "LATENT", "Critic", "GanConfig", "Generator", "public_pedestrians", "train_gan",
           "Inverter", "InverterConfig", "invert", "train_inverter", "CrafterTrainConfig",
           "craft_batches", "train_crafter"]
