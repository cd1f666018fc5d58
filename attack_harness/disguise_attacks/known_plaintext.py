"""Known-plaintext recovery of the projection by least squares (level 2), and the codebook.

From k (original, disguised) pairs: (1) match each disguised block position to its source
position by correlating block energies over the k pairs (an orthogonal projection keeps
||x||; noise adds a constant), one-to-one by the Hungarian method; (2) per matched position,
fit the linear inverse y -> x (with an intercept) by least squares, ridge-regularised by the
spec's public noise level; `pooled` fits one inverse over all positions (exact for a shared
projection with few pairs); (3) reconstruct the victims from their disguised images.
Without noise the fit is exact once k > block dimension; against AES nothing matches.

`codebook`: the share of the victims' disguised blocks that equal a known disguised block at
the same position (AES is deterministic per position: each hit reveals that block exactly).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from featurelock.middleware.disguise import RMT_SCALE

from ..attack import Attack, Finding, Outcome, register
from ..disguise_view import DisguiseView, assemble, centred_blocks, score_images
from ..metrics import mean_interval
from ._common import ssim_finding

__all__ = ["KnownPlaintext", "match_positions", "fit_inverse", "apply_inverse"]


def match_positions(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(k, P, d) plain and disguised blocks -> source position of each disguised position."""
    ex, ey = np.linalg.norm(x, axis=2), np.linalg.norm(y, axis=2)
    z = lambda e: (e - e.mean(0)) / np.maximum(e.std(0), 1e-12)  # noqa: E731
    corr = z(ex).T @ z(ey) / len(x)  # (P source, P disguised)
    src, out = linear_sum_assignment(-corr)
    source = np.empty(x.shape[1], np.int64)
    source[out] = src
    return source


def _design(y: np.ndarray) -> np.ndarray:
    return np.concatenate([y, np.ones((*y.shape[:-1], 1))], axis=-1)


def fit_inverse(x: np.ndarray, y: np.ndarray, source: np.ndarray, pooled: bool,
                noise: float = 0.0) -> np.ndarray:
    """Least-squares inverse maps, (P, d+1, d) indexed by disguised position. Ridge with
    lambda = samples x (noise^2 + quantisation^2): the noise in y is known from the public spec,
    and without it the fit blows up where k nears the block dimension (double descent)."""
    xs = x[:, source]  # plain blocks aligned with disguised positions
    var = noise ** 2 + 1.0 / (12 * RMT_SCALE ** 2)  # rounding to bytes: uniform, 1/RMT_SCALE wide
    if pooled:
        a, t = _design(y).reshape(1, -1, y.shape[2] + 1), xs.reshape(1, -1, x.shape[2])
    else:
        a, t = _design(y).transpose(1, 0, 2), xs.transpose(1, 0, 2)  # (P, k, d+1)
    gram = a.transpose(0, 2, 1) @ a + a.shape[1] * var * np.eye(a.shape[2])
    w = np.linalg.solve(gram, a.transpose(0, 2, 1) @ t)
    return np.repeat(w, y.shape[1], axis=0) if pooled else w


def apply_inverse(y: np.ndarray, w: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Disguised blocks (N, P, d) -> plain blocks (N, P, d) at their source positions."""
    rec = np.matmul(_design(y).transpose(1, 0, 2), w).transpose(1, 0, 2)
    out = np.empty_like(rec)
    out[:, source] = rec
    return out


@register
class KnownPlaintext(Attack):
    name = "known-plaintext"
    target = "disguise"
    control = "rmt-noiseless"
    holds = "k known (original, disguised) pairs and the victims' disguised images (level 2)"
    columns = ("known-plaintext", "codebook")

    def run(self, view: DisguiseView) -> Outcome:  # type: ignore[override]
        cfg, b = self.config, view.block
        shape = view.victims.shape[1:]
        y_vic = centred_blocks(view.victims_disguised, view.spec, b)
        findings, curve, images = [], [], {}
        noise = view.spec.noise if view.spec else 0.0  # public: the spec names it
        for k in cfg.known_pairs:
            plain, disguised = view.known(k)
            x, y = centred_blocks(plain, None, b), centred_blocks(disguised, view.spec, b)
            source = match_positions(x, y)
            matched = (None if view.true_source is None  # scoring only: the secret permutation
                       else round(float(np.mean(source == view.true_source)), 4))
            for mode in ("per-position", "pooled"):
                w = fit_inverse(x, y, source, mode == "pooled", noise)
                rec = assemble(apply_inverse(y_vic, w, source), shape, b)
                scored = score_images(rec, view)
                curve.append({"k": k, "mode": mode, "positions_matched": matched,
                              **scored.to_dict()})
                findings.append(ssim_finding("known-plaintext", f"k={k} {mode}", scored, view,
                                             summary=k == max(cfg.known_pairs)))
                if k == max(cfg.known_pairs):
                    images[f"least squares, k={k} ({mode})"] = rec[:cfg.grid]
        details = {"curve": curve, "k_at_ssim_0.5": _k_at(curve, 0.5)}
        findings.append(self._codebook(view, y_vic, max(cfg.known_pairs)))
        return Outcome(findings, details, {k: np.clip(v, 0, 255).astype(np.uint8)
                                           for k, v in images.items()})

    def _codebook(self, view: DisguiseView, y_vic: np.ndarray, k: int) -> Finding:
        _, disguised = view.known(k)
        y = centred_blocks(disguised, view.spec, view.block)
        hits = np.zeros(y_vic.shape[:2])
        for p in range(y.shape[1]):
            book = {row.tobytes() for row in y[:, p]}
            hits[:, p] = [row.tobytes() in book for row in y_vic[:, p]]
        cfg = view.config
        return Finding("codebook", f"k={k}", mean_interval(hits.mean(axis=1), view.victim_ids,
                                                           cfg.confidence, cfg.n_boot, cfg.seed),
                       0.0, len(hits), "blocks", summary=True)


def _k_at(curve: list[dict], threshold: float) -> int | None:
    """The smallest k whose best reconstruction reaches mean SSIM >= threshold."""
    ks = sorted({c["k"] for c in curve if c["ssim"]["estimate"] >= threshold})
    return ks[0] if ks else None
