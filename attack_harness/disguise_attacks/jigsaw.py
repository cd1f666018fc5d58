"""A jigsaw attack on the block permutation alone (level 1; after Chuman & Kiya's puzzle
solvers, with the population instead of one image's edges as the clue).

The permutation is the same for every image, so the server can pool statistics over all the
disguised images it holds. Per position it takes statistics that the per-block transform does
not change — quantiles of the block energy ||x|| (kept by an orthogonal projection up to a
constant from the noise), and for the permutation-only variant the mean and spread of each
pixel of the block — and matches them one-to-one to the
same statistics of its own public plain images (Hungarian method). Scored by the share of
blocks placed right (chance 1/P: needs the secret, scoring only), and for the permutation-only
variant by the SSIM of the unshuffled images. Control: the permutation-only disguise.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..attack import Attack, Finding, Outcome, register
from ..disguise_view import DisguiseView, assemble, centred_blocks, score_images
from ..metrics import mean_interval
from ._common import ssim_finding

__all__ = ["Jigsaw", "solve_positions"]

_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def _position_stats(blocks: np.ndarray, content: bool) -> np.ndarray:
    e = np.linalg.norm(blocks, axis=2)  # (N, P)
    s = np.concatenate([np.quantile(e, _QUANTILES, axis=0), e.std(axis=0)[None]]).T  # (P, 6)
    if content:  # pixels unchanged (permutation only): the mean block itself is a clue
        s = np.concatenate([s, blocks.mean(axis=0), blocks.std(axis=0)], axis=1)
    return (s - s.mean(axis=0)) / np.maximum(s.std(axis=0), 1e-12)  # shift/scale-free


def solve_positions(public_blocks: np.ndarray, disguised_blocks: np.ndarray,
                    content: bool = False) -> np.ndarray:
    """The estimated source position of each disguised position; `content` when the blocks
    are not transformed (the spec, which is public, says so)."""
    a, b = _position_stats(public_blocks, content), _position_stats(disguised_blocks, content)
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)  # (P source, P disguised)
    src, out = linear_sum_assignment(cost)
    source = np.empty(len(a), np.int64)
    source[out] = src
    return source


@register
class Jigsaw(Attack):
    name = "jigsaw"
    target = "disguise"
    control = "shuffle"
    holds = "the victims' disguised images and its own plain images (level 1)"
    columns = ("jigsaw",)

    def run(self, view: DisguiseView) -> Outcome:  # type: ignore[override]
        cfg, b = self.config, view.block
        y = centred_blocks(view.victims_disguised, view.spec, b)
        content = view.spec is None or view.spec.variant == "shuffle"
        source = solve_positions(centred_blocks(view.public, None, b), y, content)
        findings, images = [], {}
        truth = view.true_source
        if truth is not None:  # scoring only: the secret permutation
            right = (source == truth).astype(np.float64)
            findings.append(Finding("jigsaw", "blocks placed", mean_interval(
                right, np.arange(right.size), cfg.confidence, cfg.n_boot, cfg.seed),
                1.0 / right.size, right.size, "positions", summary=True))
        if content:
            rec = np.empty_like(y)
            rec[:, source] = y
            rec = assemble(rec, view.victims.shape[1:], b)
            findings.append(ssim_finding("jigsaw", "unshuffled", score_images(rec, view), view))
            images["jigsaw"] = np.clip(rec[:cfg.grid], 0, 255).astype(np.uint8)
        return Outcome(findings, {}, images)
