"""Crafter's weights files: weights-only state dicts, loaded without running pickled code.

    prior.pt           generator.* + inverter.* (+ meta.*): the public prior and the amortised
                       inverter, i.e. what the attacker holds (and what crafting needs)
    craft-beta<B>.pt   a CraftNet (its beta is a buffer inside): what a crafter model serves
"""

from __future__ import annotations

from pathlib import Path

import torch

from featurelock.models.errors import ModelError
from featurelock.models.model_files import load_state_dict

from .amortised import CraftNet
from .gan import Generator
from .inverter import Inverter

__all__ = ["save_prior", "load_prior", "save_craftnet", "load_craftnet", "craftnet_name"]


def _half(state: dict) -> dict:
    # float16 on disk halves the files (small enough to commit); loading computes in float32.
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def craftnet_name(beta: float) -> str:
    return f"craft-beta{beta:g}.pt"


def save_prior(G: Generator, inv: Inverter, dim: int, path: str | Path) -> Path:
    state = {f"generator.{k}": v for k, v in G.state_dict().items()}
    state |= {f"inverter.{k}": v for k, v in inv.state_dict().items()}
    state |= {"meta.latent": torch.tensor(G.latent), "meta.width": torch.tensor(G.width),
              "meta.dim": torch.tensor(dim)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_half(state), path)
    return path


def _part(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_prior(path: str | Path) -> tuple[Generator, Inverter]:
    """(G, inverter) in eval mode with frozen parameters."""
    state = load_state_dict(path)
    try:
        latent, width, dim = (int(state[f"meta.{k}"]) for k in ("latent", "width", "dim"))
        G, inv = Generator(latent, width), Inverter(dim, latent)
        G.load_state_dict(_part(state, "generator."), strict=True)
        inv.load_state_dict(_part(state, "inverter."), strict=True)
    except (KeyError, RuntimeError) as exc:
        raise ModelError(f"{Path(path).name} is not a crafter prior file "
                         f"({type(exc).__name__})") from None
    for m in (G, inv):
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
    return G, inv


def save_craftnet(net: CraftNet, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _half(net.state_dict())
    state["beta"] = net.beta.float()  # exact: beta is matched against the config
    torch.save(state, path)
    return path


def load_craftnet(path: str | Path) -> CraftNet:
    """A CraftNet in eval mode; its sizes come from the weights' shapes."""
    state = load_state_dict(path)
    try:
        hidden, dim = state["net.0.weight"].shape
        net = CraftNet(int(dim), int(hidden))
        net.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{Path(path).name} is not a crafter network file "
                         f"({type(exc).__name__})") from None
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
