"""In-process Crafter endpoints for the scan: the model, then a distilled crafting network.

    featurelock scan --local plaintext --local crafter:beta=3 --local aes-256-gcm ...

`--local crafter:beta=B` loads `craft-beta<B>.pt` from the crafter directory (default: the
packaged weights, else `featurelock crafter train --out DIR` and `--crafter-dir DIR`). The
answers are what the served endpoint returns: crafted float32 features, readable by anyone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .targets import Target, _check_images

__all__ = ["CRAFTER", "CrafterTarget", "parse_crafter_spec", "crafter_target",
           "DEFAULT_CRAFTER_DIR"]

CRAFTER = "crafter"
DEFAULT_CRAFTER_DIR = Path(__file__).resolve().parents[1] / "models" / "weights" / "crafter"


class CrafterTarget(Target):
    """embed (uint8 NHWC -> (N, D) unit features), then the CraftNet, row by row out."""

    scheme = CRAFTER

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], craftnet: torch.nn.Module,
                 *, name: str | None = None) -> None:
        if not callable(embed):
            raise TypeError("embed must be callable (e.g. a zoo model's .embed)")
        self._embed = embed
        self._net = craftnet.eval()
        self.beta = float(getattr(craftnet, "beta", float("nan")))
        self.name = name or f"crafter-beta{self.beta:g}"

    @property
    def served_transform(self) -> torch.nn.Module:
        """The CraftNet this endpoint serves: the file every .mar of it carries, so an insider
        holds it (the white-box inverse in `inversion` differentiates through it)."""
        return self._net

    def query(self, images: np.ndarray) -> list[np.ndarray]:
        plain = np.asarray(self._embed(_check_images(images)), np.float32)
        with torch.inference_mode():
            crafted = self._net(torch.from_numpy(plain)).numpy().astype(np.float32)
        return [row.copy() for row in crafted]

    def __repr__(self) -> str:
        return f"CrafterTarget(name={self.name!r}, beta={self.beta:g})"


def parse_crafter_spec(spec: str) -> float | None:
    """'crafter:beta=3' -> 3.0; None when `spec` is not a crafter spec. ValueError if malformed."""
    if spec != CRAFTER and not spec.startswith(CRAFTER + ":"):
        return None
    options = dict(kv.split("=", 1) for kv in spec.split(":", 1)[1].split(",") if "=" in kv) \
        if ":" in spec else {}
    if set(options) != {"beta"}:
        raise ValueError(f"a crafter target is crafter:beta=B, got {spec!r}")
    try:
        beta = float(options["beta"])
    except ValueError:
        raise ValueError(f"beta must be a number, got {options['beta']!r}") from None
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta:g}")
    return beta


def crafter_target(beta: float, embed: Callable[[np.ndarray], np.ndarray],
                   crafter_dir: str | Path | None = None) -> CrafterTarget:
    from featurelock.models.crafter.files import craftnet_name, load_craftnet

    path = Path(crafter_dir or DEFAULT_CRAFTER_DIR) / craftnet_name(beta)
    if not path.is_file():
        raise ValueError(f"no crafting network for beta {beta:g} at {path}; run "
                         "`featurelock crafter train --betas ...` and pass --crafter-dir")
    net = load_craftnet(path)
    if abs(float(net.beta) - beta) > 1e-6:
        raise ValueError(f"{path.name} was distilled for beta {float(net.beta):g}")
    return CrafterTarget(embed, net, name=f"local-crafter-beta{beta:g}")
