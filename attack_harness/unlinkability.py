"""Verification and linkage numbers for protected templates (numpy only).

* `d_sys`: the global unlinkability measure D<->sys of Gomez-Barrero et al., "General Framework
  to Evaluate Unlinkability in Biometric Template Protection Systems", IEEE TIFS 13(6), 2018,
  reimplemented from the paper's definition as the research note states it (the authors' code
  has a restrictive licence and is not vendored): histograms of mated and non-mated linkage
  scores over min(len(mated) / 10, 100) bins spanning all scores; LR = p(s|mated) /
  p(s|non-mated); local D<->(s) = 2 * omega*LR / (1 + omega*LR) - 1 where omega*LR > 1, else 0,
  and 1 where no non-mated score falls in the bin; D<->sys = integral of D<->(s) p(s|mated) ds
  (trapezoid over the bin centres). 0 = fully unlinkable, 1 = fully linkable.
* `tar_at_fmr`, `eer`: accept when score > threshold; the threshold from `threshold_at_fmr`.
"""

from __future__ import annotations

import numpy as np

from featurelock.middleware.templates.gallery import threshold_at_fmr

__all__ = ["d_sys", "tar_at_fmr", "eer", "pair_scores"]


def d_sys(mated: np.ndarray, nonmated: np.ndarray, omega: float = 1.0,
          n_bins: int | None = None) -> float:
    mated = np.asarray(mated, np.float64).ravel()
    nonmated = np.asarray(nonmated, np.float64).ravel()
    if mated.size < 10 or nonmated.size < 10:
        raise ValueError("need at least 10 mated and 10 non-mated scores")
    if n_bins is None:
        n_bins = int(min(mated.size // 10, 100))
    lo = min(mated.min(), nonmated.min())
    hi = max(mated.max(), nonmated.max())
    if hi <= lo:  # every score equal: no evidence either way
        return 0.0
    edges = np.linspace(lo, hi, n_bins + 1)
    y1, _ = np.histogram(mated, edges, density=True)
    y2, _ = np.histogram(nonmated, edges, density=True)
    lr = np.divide(y1, y2, out=np.ones_like(y1), where=y2 > 0)
    olr = omega * lr
    d = np.where(olr > 1.0, 2.0 * olr / (1.0 + olr) - 1.0, 0.0)
    d[y2 == 0] = 1.0
    centres = (edges[:-1] + edges[1:]) / 2.0
    trapezoid = getattr(np, "trapezoid", None) or np.trapz
    return float(trapezoid(d * y1, centres))


def pair_scores(scores: np.ndarray, ids_a: np.ndarray, ids_b: np.ndarray,
                same_set: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mated, non-mated) entries of a score matrix; `same_set` drops the diagonal (a template
    against itself)."""
    same = np.asarray(ids_a)[:, None] == np.asarray(ids_b)[None, :]
    keep = np.ones_like(same)
    if same_set:
        np.fill_diagonal(keep, False)
    return scores[same & keep], scores[~same & keep]


def tar_at_fmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    t = threshold_at_fmr(impostor, fmr)
    return float(np.mean(np.asarray(genuine) > t))


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Equal error rate: over thresholds at every score, (FMR + FNMR) / 2 where they are closest."""
    g = np.sort(np.asarray(genuine, np.float64))
    i = np.sort(np.asarray(impostor, np.float64))
    t = np.unique(np.concatenate([g, i]))
    fnmr = np.searchsorted(g, t, side="right") / g.size  # genuine <= t: rejected
    fmr = 1.0 - np.searchsorted(i, t, side="right") / i.size  # impostor > t: accepted
    k = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[k] + fnmr[k]) / 2.0)
