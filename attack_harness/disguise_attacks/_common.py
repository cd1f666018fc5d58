"""Helpers the disguise attacks share: verdict inputs from per-item hits."""

from __future__ import annotations

import numpy as np

from ..attack import Finding
from ..disguise_view import DisguiseView, ScoredImages
from ..metrics import mean_interval, rank1_hits

__all__ = ["rank1_finding", "ssim_finding"]


def rank1_finding(column: str, what: str, query: np.ndarray, gallery: np.ndarray,
                  view: DisguiseView, reading: str = "-") -> Finding:
    """Rank-1 of victims' queries against the victims' gallery (Market-1501 junk rule),
    with its interval and the chance of a random pick."""
    cfg = view.config
    norm = lambda f: f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)  # noqa: E731
    hits, chance, valid = rank1_hits(norm(query), view.victim_ids, view.victim_cams, norm(gallery),
                                     view.victim_ids, view.victim_cams)
    score = mean_interval(hits[valid], view.victim_ids[valid], cfg.confidence, cfg.n_boot, cfg.seed)
    return Finding(column, what, score, float(chance[valid].mean()), int(valid.sum()), reading,
                   summary=True)


def ssim_finding(column: str, what: str, scored: ScoredImages, view: DisguiseView,
                 summary: bool = False) -> Finding:
    return Finding(column, what, scored.ssim, scored.chance_ssim, scored.n, "ssim",
                   summary=summary, margin=view.config.ssim_margin)
