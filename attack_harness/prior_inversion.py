"""Reconstructions scored by identity, and the white-box GAN-prior inversion (Crafter's attacker).

`identity_finding`: re-embed reconstructions with the plaintext model and retrieve each victim
from the victims' gallery (rank-1 vs chance), the same test the `reconstruction` attack runs.

`prior_inversion`: the insider holds the model file (Enc) and the public prior (G and the
amortised inverter from `featurelock crafter train`, trained on public people only). For each
leaked feature F it finds z* = argmin ||F - Enc(G(z))||^2 (amortiser + refine steps) and
reconstructs G(z*): the attack Crafter is designed against (Wang et al., NDSS 2024).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .attack import Finding, TargetView
from .reconstruction import identity_leakage

__all__ = ["identity_finding", "prior_inversion", "DEFAULT_PRIOR"]

DEFAULT_PRIOR = Path(__file__).resolve().parents[1] / "models" / "weights" / "crafter" / "prior.pt"


def identity_finding(view: TargetView, reconstructions: np.ndarray, what: str,
                     reading: str) -> Finding | None:
    """Rank-1 identity of (Nv, H, W, 3) uint8 reconstructions of every victim, or None when
    no victim query has a true match."""
    cfg, data = view.config, view.data
    ident = identity_leakage(view.evaluator.embed(reconstructions), data.victim_ids,
                             data.victim_cams, view.victim_plain, data.victim_ids,
                             data.victim_cams, cfg.confidence, cfg.n_boot, cfg.seed)
    if "score" not in ident:
        return None
    return Finding("identity", what, ident["score"], ident["chance"], ident["n"], reading,
                   summary=True)


def load_attacker_prior(path: str | Path | None) -> tuple[Any, Any] | None:
    """(G, inverter) from `path` (default: the packaged prior), or None when absent."""
    from featurelock.models.crafter.files import load_prior

    p = Path(path) if path else DEFAULT_PRIOR
    return load_prior(p) if p.is_file() else None


def prior_inversion(G: Any, inv: Any, enc: Any, features: np.ndarray, size: tuple[int, int],
                    steps: int, batch: int = 64) -> np.ndarray:
    """G(z*(F)) for each row of `features`, as (N, H, W, 3) uint8 at the victims' size."""
    from featurelock.models.crafter.inverter import invert

    out = []
    for s in range(0, len(features), batch):
        f = torch.from_numpy(np.ascontiguousarray(features[s:s + batch], np.float32))
        z = invert(G, enc, inv, f, steps)
        with torch.no_grad():
            x = F.interpolate(G(z), size=size, mode="bilinear", align_corners=False)
        out.append((x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)
