"""A jigsaw attack on the block permutation (level 1; after Chuman & Kiya's puzzle solvers,
with the population instead of one image's edges as the clue). No pairs at all.

The permutation and the per-position projection are the same for every image, so the server
pools statistics over all the disguised images it holds. Per position it takes statistics
that the per-block transform does not change, and matches them one-to-one (Hungarian method)
to the same statistics of its own public plain images:

* the covariance spectrum: an orthogonal projection R turns the blocks' covariance S into
  R S R^T + noise * I, whose eigenvalues are S's plus the spec's public noise variance (taken
  off); the top `_SPECTRUM` log-eigenvalues;
* for the permutation-only variant (the public spec says so), quantiles of the block energy
  and the mean and spread of each pixel of the block: the content itself.

The attacker's public images come from other cameras than the victims' (other scenes), so
its statistics are a population prior, not the victims' own: the share placed is what such
a prior buys.

Scored by the share of blocks placed right (chance 1/P: needs the secret, scoring only), and
for the permutation-only variant by the SSIM of the unshuffled images. Control: the
permutation-only disguise.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..attack import Attack, Finding, Outcome, register
from ..disguise_view import DisguiseView, assemble, centred_blocks, score_images
from ..metrics import mean_interval
from ._common import ssim_finding
from .known_plaintext import noise_variance

__all__ = ["Jigsaw", "solve_positions", "position_invariants"]

_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
_SPECTRUM = 8  # top eigenvalues: the best of 8/16/32/64 on seed 0 (README)


def position_invariants(blocks: np.ndarray, noise: float = 0.0,
                        content: bool = False) -> np.ndarray:
    """(P, features) statistics of (N, P, d) blocks that an orthogonal projection per position
    keeps: the top log-eigenvalues of the covariance as they are (their scale is comparable
    across positions), and for the permutation-only variant the energy quantiles and the
    content, each standardised over positions."""
    mu = blocks.mean(axis=0)  # (P, d)
    dev = (blocks - mu[None]).transpose(1, 0, 2)
    cov = dev.transpose(0, 2, 1) @ dev / max(len(blocks) - 1, 1)
    spectrum = np.linalg.eigvalsh(cov)[:, ::-1][:, :_SPECTRUM] - noise_variance(noise)
    s = np.log(np.maximum(spectrum, 1e-6))
    if content:  # pixels unchanged (permutation only): energies and the mean block are clues
        e = np.linalg.norm(blocks, axis=2)
        c = np.concatenate([np.quantile(e, _QUANTILES, axis=0).T, e.std(axis=0)[:, None], mu,
                            blocks.std(axis=0)], axis=1)
        s = np.concatenate([s, (c - c.mean(axis=0)) / np.maximum(c.std(axis=0), 1e-12)], axis=1)
    return s


def solve_positions(public_blocks: np.ndarray, disguised_blocks: np.ndarray,
                    content: bool = False, noise: float = 0.0) -> np.ndarray:
    """The estimated source position of each disguised position; `content` when the blocks
    are not transformed, `noise` the spec's noise (both public)."""
    a = position_invariants(public_blocks, 0.0, content)
    b = position_invariants(disguised_blocks, noise, content)
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
    attacker = "viewer (disguised images only)"
    holds = "the victims' disguised images and its own plain images (level 1)"
    columns = ("jigsaw",)

    def run(self, view: DisguiseView) -> Outcome:  # type: ignore[override]
        cfg, b = self.config, view.block
        y = centred_blocks(view.victims_disguised, view.spec, b)
        content = view.spec is None or view.spec.variant == "shuffle"
        noise = view.spec.noise if view.spec else 0.0
        source = solve_positions(centred_blocks(view.public, None, b), y, content, noise)
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
