"""Known-plaintext attack on the projection (level 2): place blocks by the invariants the
transform keeps, invert what the pairs span, fill the rest from a public prior; and the codebook.

From k (original, disguised) pairs:

1. placement: an orthogonal projection keeps every inner product, so the k x k Gram matrix
   of the k pairs' blocks at a source position equals the Gram matrix at the disguised
   position it went to (its diagonal, the block energies, plus the spec's public noise
   variance). Positions are matched one-to-one by the distance between Gram matrices
   (Hungarian method); `match_positions`. Few pairs suffice: k = 16 gives 136 numbers per
   position;
2. inversion, three ways (the curve reports those the public spec makes worth trying):
   * `prior` -- the k pairs span a subspace of each position's blocks, and they fix the
     projection on it exactly (Y = X R^T, so C = S^-1 U^T Y maps a disguised block to its
     coordinates in that subspace, X = U S V^T). The rest of the block is filled by the
     conditional mean of a Gaussian prior (mean and covariance of the attacker's own public
     blocks at that position) given those coordinates, each weighted by its noise
     (`fit_prior_inverse`). With k >= block dimension it is least squares with a prior;
   * `per-position` -- ridge least squares of the inverse per matched position (needs k near
     the block dimension to be useful);
   * `pooled` -- one least-squares inverse for all positions: what breaks a shared projection;
3. reconstruction of the victims from their disguised images.

Without noise the projection is exact once k >= block dimension; against AES nothing matches
and nothing inverts. `codebook`: the share of the victims' disguised blocks that equal a known
disguised block at the same position (AES is deterministic per position: each hit reveals
that block exactly).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from featurelock.middleware.disguise import RMT_SCALE

from ..attack import Attack, Finding, Outcome, register
from ..disguise_view import DisguiseView, assemble, centred_blocks, score_images
from ..metrics import mean_interval
from ._common import ssim_finding

__all__ = ["KnownPlaintext", "match_positions", "gram_cost", "fit_inverse", "apply_inverse",
           "fit_prior_inverse", "PriorInverse", "block_prior", "noise_variance"]

_GRAM_PAIRS = 64  # pairs whose Gram matrices place the blocks (more adds cost, not accuracy)


def noise_variance(noise: float) -> float:
    """Per-coordinate variance of what the disguise adds: the spec's noise plus the rounding
    to bytes (uniform, 1/RMT_SCALE wide)."""
    return noise ** 2 + 1.0 / (12 * RMT_SCALE ** 2)


def gram_cost(x: np.ndarray, y: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """(P source, P disguised) squared distances between the per-position Gram matrices of
    (k, P, d) plain and disguised blocks; the noise's expected d * variance is taken off the
    disguised diagonal."""
    x, y = x[:_GRAM_PAIRS], y[:_GRAM_PAIRS]
    k, p, d = x.shape
    xt, yt = x.transpose(1, 0, 2), y.transpose(1, 0, 2)
    gx = (xt @ xt.transpose(0, 2, 1)).reshape(p, k * k)
    gy = yt @ yt.transpose(0, 2, 1)
    gy[:, np.arange(k), np.arange(k)] -= d * noise_variance(noise)
    gy = gy.reshape(p, k * k)
    return ((gx ** 2).sum(1)[:, None] + (gy ** 2).sum(1)[None, :] - 2 * gx @ gy.T)


def match_positions(x: np.ndarray, y: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """(k, P, d) plain and disguised blocks -> source position of each disguised position,
    by Gram-matrix distance (Hungarian method)."""
    src, out = linear_sum_assignment(gram_cost(x, y, noise))
    source = np.empty(x.shape[1], np.int64)
    source[out] = src
    return source


class PriorInverse:
    """Per disguised position: coordinates of a block in the pairs' subspace, and the
    conditional-mean fill of the rest from the public prior (see the module docstring)."""

    def __init__(self, c: np.ndarray, gain: np.ndarray, offset: np.ndarray) -> None:
        self.c, self.gain, self.offset = c, gain, offset  # (P, m, d), (P, d, m), (P, d)

    def __call__(self, y: np.ndarray, source: np.ndarray) -> np.ndarray:
        """Disguised blocks (N, P, d) -> plain blocks at their source positions."""
        a = y.transpose(1, 0, 2) @ self.c.transpose(0, 2, 1)  # (P, N, m)
        rec = (self.offset[:, None] + a @ self.gain.transpose(0, 2, 1)).transpose(1, 0, 2)
        out = np.empty_like(rec)
        out[:, source] = rec
        return out


def block_prior(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (P, d) and covariance (P, d, d) per position of (n, P, d) plain blocks."""
    mu = blocks.mean(axis=0)
    dev = (blocks - mu[None]).transpose(1, 0, 2)
    return mu, dev.transpose(0, 2, 1) @ dev / max(len(blocks) - 1, 1)


def fit_prior_inverse(x: np.ndarray, y: np.ndarray, source: np.ndarray,
                      prior: tuple[np.ndarray, np.ndarray], noise: float = 0.0) -> PriorInverse:
    """`x`, `y`: (k, P, d) known pairs; `prior`: `block_prior` of the attacker's public plain
    blocks (by source position).
    Measurement a = C y estimates B x (B = V^T, the pairs' orthonormal basis) with noise
    variance var * (1 + E||y||^2 / s_i^2) per coordinate; the estimate is
    E[x | a] = mu + S B^T (B S B^T + diag(noise))^-1 (a - B mu) under N(mu, S)."""
    var = noise_variance(noise)
    xs = x[:, source].transpose(1, 0, 2)  # (P, k, d): plain blocks aligned with disguised positions
    yt = y.transpose(1, 0, 2)
    u, s, vt = np.linalg.svd(xs, full_matrices=False)  # (P,k,m) (P,m) (P,m,d)
    keep = s > 1e-6 * s[:, :1]
    s_safe = np.where(keep, s, 1.0)
    c = u.transpose(0, 2, 1) @ yt / s_safe[:, :, None] * keep[:, :, None]
    energy = (yt ** 2).sum(axis=2).mean(axis=1)  # (P,) mean ||y||^2 at each disguised position
    tau = np.where(keep, var * (1 + energy[:, None] / s_safe ** 2), 1e12)
    mu, sigma = prior[0][source], prior[1][source]
    sb = sigma @ vt.transpose(0, 2, 1)  # S B^T, (P, d, m)
    inner = vt @ sb + tau[:, :, None] * np.eye(vt.shape[1])
    gain = np.linalg.solve(inner.transpose(0, 2, 1), sb.transpose(0, 2, 1)).transpose(0, 2, 1)
    offset = mu - (gain @ (vt @ mu[:, :, None]))[:, :, 0]
    return PriorInverse(c, gain, offset)


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
    attacker = "holder of k pairs"
    holds = "k known (original, disguised) pairs and the victims' disguised images (level 2)"
    columns = ("known-plaintext", "codebook")

    def run(self, view: DisguiseView) -> Outcome:  # type: ignore[override]
        cfg, b = self.config, view.block
        shape = view.victims.shape[1:]
        y_vic = centred_blocks(view.victims_disguised, view.spec, b)
        findings, curve, images = [], [], {}
        noise = view.spec.noise if view.spec else 0.0  # public: the spec names it
        prior = block_prior(centred_blocks(view.public, None, b))  # its own plain images
        for k in cfg.known_pairs:
            plain, disguised = view.known(k)
            x, y = centred_blocks(plain, None, b), centred_blocks(disguised, view.spec, b)
            source = match_positions(x, y, noise)
            placed = (None if view.true_source is None  # scoring only: the secret permutation
                      else round(float(np.mean(source == view.true_source)), 4))
            for mode in _modes(view, k):
                if mode == "prior":
                    blocks = fit_prior_inverse(x, y, source, prior, noise)(y_vic, source)
                else:
                    w = fit_inverse(x, y, source, mode == "pooled", noise)
                    blocks = apply_inverse(y_vic, w, source)
                rec = assemble(blocks, shape, b)
                scored = score_images(rec, view)
                curve.append({"k": k, "mode": mode, "positions_placed": placed,
                              **scored.to_dict()})
                findings.append(ssim_finding("known-plaintext", f"k={k} {mode}", scored, view,
                                             summary=k == max(cfg.known_pairs) and mode == "prior"))
                if k in (min(cfg.known_pairs), max(cfg.known_pairs)):
                    images[f"known pairs, k={k} ({mode})"] = rec[:cfg.grid]
        details = {"curve": curve, "k_at_ssim_0.5": _k_at(curve, 0.5),
                   "k_placing_all": _k_placing_all(curve)}
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


def _modes(view: DisguiseView, k: int) -> tuple[str, ...]:
    """The inversions worth scoring, from the public spec: least squares per position only
    once k exceeds the block dimension (below it the prior fill is better: README), the
    pooled fit only for a shared projection. SSIM scoring dominates the attack's cost."""
    d = view.block * view.block * view.victims.shape[-1]
    shared = view.spec is not None and view.spec.shared
    return ("prior",) + (("per-position",) if k > d else ()) + (("pooled",) if shared else ())


def _k_placing_all(curve: list[dict]) -> int | None:
    """The smallest k whose Gram placement put every block right (None: never, or unscored)."""
    ks = sorted({c["k"] for c in curve if c["positions_placed"] == 1.0})
    return ks[0] if ks else None
