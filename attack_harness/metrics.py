"""Every number the harness reports: image quality, balanced accuracy, retrieval, intervals.

Numpy only. Images are uint8 or float arrays with values in [0, data_range], shaped (H, W),
(H, W, C) or batched (N, H, W[, C]) where a function says so.

* `psnr`, `ssim`: PSNR (MAX = data_range) and the Gaussian-window SSIM of Wang et al. 2004
  (sigma 1.5, 11x11 window, K1 0.01, K2 0.03, population covariances, mean over the window
  positions that fit inside the image, averaged over channels) — the definition behind
  scikit-image's `structural_similarity(gaussian_weights=True, use_sample_covariance=False)`.
* `balanced_accuracy`: mean recall over the classes present in the true labels; chance is
  1 / (number of those classes), whatever the class frequencies.
* `verification_scores`, `threshold_at_fmr`, `tar_at_fmr`, `equal_error_rate`: biometric
  verification (ISO/IEC 19795-1 vocabulary): genuine scores compare two samples of one
  identity, impostor scores two identities; a comparison is accepted when score >= threshold.
  FMR = accepted impostors / impostors, TAR = accepted genuines / genuines (= 1 - FNMR). The
  face field's headline is TAR at FMR 1e-3 (IJB-C, NIST FRVT): the threshold is set on the
  impostor scores so that at most 0.1% of them pass.
* `cluster_bootstrap`: intervals that resample victim IDENTITIES, not images: images of one
  person share their attributes and look alike, so treating them as independent would make the
  intervals too narrow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Callable

import numpy as np

__all__ = [
    "psnr", "ssim", "batch_psnr", "batch_ssim", "SsimTruth", "gaussian_kernel",
    "balanced_accuracy", "balanced_accuracy_chance", "weighted_balanced_accuracy",
    "Interval", "cluster_bootstrap", "cluster_weights", "mean_interval", "rank1_hits",
    "retrieval", "verification_scores", "threshold_at_fmr", "tar_at_fmr", "equal_error_rate",
    "FMR_1E3",
]


# ----------------------------------------------------------------------------- images

def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; inf for identical images."""
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range ** 2 / mse))


def gaussian_kernel(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    """The normalised 1-D Gaussian window (radius int(truncate * sigma + 0.5): 11 taps at 1.5)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _filter_valid(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation over the last two axes of (..., H, W), in float64."""
    from scipy.ndimage import correlate1d

    r = k.size // 2
    # Contiguous first: filtering a moved-axis view strided is about twice as slow.
    out = correlate1d(np.ascontiguousarray(img, np.float64), k, axis=-2,
                      mode="constant")[..., r:-r, :]
    return correlate1d(out, k, axis=-1, mode="constant")[..., r:-r]


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM of two images (H, W) or (H, W, C); channels are averaged."""
    a, b = _pair(a, b)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.ndim != 3:
        raise ValueError(f"images must be (H, W) or (H, W, C), got shape {a.shape}")
    return float(np.mean(_ssim_maps(np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0), data_range,
                                    sigma, k1, k2)))


def _ssim_maps(a: np.ndarray, b: np.ndarray, data_range: float, sigma: float, k1: float,
               k2: float) -> np.ndarray:
    k = gaussian_kernel(sigma)
    if min(a.shape[-2:]) < k.size:
        raise ValueError(f"images must be at least {k.size}x{k.size} for SSIM, got {a.shape[-2:]}")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, k), _filter_valid(b, k)
    var_a = _filter_valid(a * a, k) - mu_a ** 2
    var_b = _filter_valid(b * b, k) - mu_b ** 2
    cov = _filter_valid(a * b, k) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)
    return num / den


def batch_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Per-image SSIM of two (N, H, W, C) batches (b may be one (H, W, C) image)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if b.shape != a.shape:  # one image: filter it once, broadcast its maps
        b = np.broadcast_to(b, a.shape[1:])[None]
    maps = _ssim_maps(np.moveaxis(a, -1, 1), np.moveaxis(b, -1, 1), data_range, 1.5, 0.01, 0.03)
    return maps.reshape(a.shape[0], -1).mean(axis=1)


class SsimTruth:
    """`batch_ssim(images, truth)` against one fixed batch of true images, with the truth's
    window statistics filtered once: a scan scores every reading of every target against the
    same victims. Bit-identical to batch_ssim (SSIM is symmetric; the same operations run).
    A single image (the mean-image baseline) is memoised by its bytes."""

    def __init__(self, truth: np.ndarray, data_range: float = 255.0) -> None:
        self.truth = np.asarray(truth)
        self._b = np.moveaxis(np.asarray(truth, np.float64), -1, 1)
        self._k = gaussian_kernel(1.5)
        self._mu_b = _filter_valid(self._b, self._k)
        self._var_b = _filter_valid(self._b * self._b, self._k) - self._mu_b ** 2
        self._c1, self._c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
        self._memo: dict[bytes, np.ndarray] = {}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        single = images.shape == self.truth.shape[1:]
        if single and images.tobytes() in self._memo:
            return self._memo[images.tobytes()]
        a = np.moveaxis(np.asarray(images[None] if single else images, np.float64), -1, 1)
        if a.shape[1:] != self._b.shape[1:]:
            raise ValueError(f"images must be {self.truth.shape[1:]}, got {images.shape}")
        mu_a = _filter_valid(a, self._k)
        var_a = _filter_valid(a * a, self._k) - mu_a ** 2
        if single:
            a = np.broadcast_to(a, self._b.shape)
        cov = _filter_valid(a * self._b, self._k) - mu_a * self._mu_b
        num = (2 * mu_a * self._mu_b + self._c1) * (2 * cov + self._c2)
        den = (mu_a ** 2 + self._mu_b ** 2 + self._c1) * (var_a + self._var_b + self._c2)
        out = (num / den).reshape(len(self._b), -1).mean(axis=1)
        if single:
            self._memo[images.tobytes()] = out
        return out


def batch_psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """Per-image PSNR (dB) of two (N, ...) batches (b may be one image)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mse = ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range ** 2 / mse)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    return a, b


# ----------------------------------------------------------------------------- classification

def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in y_true."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(weighted_balanced_accuracy(y_true, y_pred, np.ones((1, y_true.size)))[0])


def balanced_accuracy_chance(y_true: np.ndarray) -> float:
    """What any predictor that ignores its input scores in expectation: 1 / #classes present."""
    return 1.0 / np.unique(np.asarray(y_true)).size


def weighted_balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray,
                               weights: np.ndarray) -> np.ndarray:
    """Balanced accuracy under each row of sample weights (B, N): one value per row.

    Classes with zero total weight in a row are left out of that row's mean.
    """
    classes = np.unique(y_true)
    onehot = (y_true[None, :] == classes[:, None]).astype(np.float64)  # (K, N)
    correct = (y_true == y_pred).astype(np.float64)
    support = weights @ onehot.T  # (B, K)
    hits = weights @ (onehot * correct).T
    present = support > 0
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=present)
    return recall.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def rank1_hits(query: np.ndarray, query_ids: np.ndarray, query_cams: np.ndarray,
               gallery: np.ndarray, gallery_ids: np.ndarray,
               gallery_cams: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: rank-1 hit (0/1), the chance of a hit for a random pick, and a validity mask.

    Market-1501 protocol: gallery images of the query's identity from the query's camera are
    ignored; queries without a remaining true match are invalid (left out).
    """
    r = retrieval(query @ gallery.T, query_ids, query_cams, gallery_ids, gallery_cams)
    return r["rank1"], r["rank1_chance"], r["valid"]


def retrieval(sim: np.ndarray, query_ids: np.ndarray, query_cams: np.ndarray,
              gallery_ids: np.ndarray, gallery_cams: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query rank-1 and average precision from a (Nq, Ng) similarity matrix, each with
    its expectation under a random ranking, and the validity mask (Market-1501 protocol as in
    `rank1_hits`). Random ranking of N candidates with R true matches has expected AP
    (H_N + (R - 1) / (N - 1) * (N - H_N)) / N, H_N the harmonic number."""
    same_id = gallery_ids[None, :] == query_ids[:, None]
    junk = same_id & (gallery_cams[None, :] == query_cams[:, None])
    sim = np.where(junk, -np.inf, np.asarray(sim, np.float64))
    order = np.argsort(-sim, axis=1, kind="stable")
    rel = np.take_along_axis(same_id & ~junk, order, axis=1)
    keep = np.take_along_axis(~junk, order, axis=1)  # junk sorts last: -inf
    n_true = rel.sum(axis=1)
    n_valid = keep.sum(axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    precision = np.cumsum(rel, axis=1) / ranks
    ap = (precision * rel).sum(axis=1) / np.maximum(n_true, 1)
    harmonic = np.cumsum(1.0 / ranks)[np.maximum(n_valid, 1) - 1]
    n = np.maximum(n_valid, 2).astype(np.float64)
    ap_chance = (harmonic + (n_true - 1) / (n - 1) * (n_valid - harmonic)) / np.maximum(n_valid, 1)
    return {"rank1": rel[:, 0].astype(np.float64), "rank1_chance": n_true / np.maximum(n_valid, 1),
            "ap": ap, "ap_chance": ap_chance, "valid": n_true > 0}


# ----------------------------------------------------------------------------- verification

FMR_1E3 = 1e-3  # the operating point the face field reports (TAR @ FMR 1e-3)


def verification_scores(sim: np.ndarray, ids_a: np.ndarray, ids_b: np.ndarray | None = None,
                        valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) comparison scores from a similarity matrix.

    With `ids_b` None, `sim` is (N, N) of one set against itself and each unordered pair
    i < j is one comparison; else `sim` is (Na, Nb) and every cell is one. `valid` (same shape
    as `sim`, bool) drops cells, e.g. the same-camera pairs the re-ID protocol ignores.
    """
    sim = np.asarray(sim, np.float64)
    ids_a = np.asarray(ids_a)
    if ids_b is None:
        if sim.shape != (ids_a.size, ids_a.size):
            raise ValueError(f"sim must be ({ids_a.size}, {ids_a.size}), got {sim.shape}")
        keep = np.triu(np.ones(sim.shape, bool), k=1)
        ids_b = ids_a
    else:
        ids_b = np.asarray(ids_b)
        if sim.shape != (ids_a.size, ids_b.size):
            raise ValueError(f"sim must be ({ids_a.size}, {ids_b.size}), got {sim.shape}")
        keep = np.ones(sim.shape, bool)
    if valid is not None:
        keep &= np.asarray(valid, bool)
    same = ids_a[:, None] == ids_b[None, :]
    return sim[keep & same], sim[keep & ~same]


def threshold_at_fmr(impostor: np.ndarray, fmr: float = FMR_1E3) -> float:
    """The lowest threshold whose FMR (share of impostor scores >= it) is at most `fmr`.

    Needs at least 1/fmr impostor scores: with fewer, FMR cannot be told apart from 0 and the
    operating point does not exist (ValueError rather than a threshold that means nothing).
    """
    if not 0 < fmr < 1:
        raise ValueError(f"fmr must be in (0, 1), got {fmr}")
    imp = np.sort(np.asarray(impostor, np.float64).ravel())[::-1]
    if imp.size < math.ceil(1.0 / fmr):
        raise ValueError(f"FMR {fmr:g} needs at least {math.ceil(1.0 / fmr)} impostor scores, "
                         f"got {imp.size}")
    k = int(np.floor(fmr * imp.size + 1e-9))  # how many impostors may pass
    return float(np.nextafter(imp[k], np.inf))  # strictly above the (k+1)-th highest


def tar_at_fmr(genuine: np.ndarray, impostor: np.ndarray,
               fmr: float = FMR_1E3) -> tuple[float, float]:
    """(TAR, threshold): the share of genuine scores accepted at `threshold_at_fmr`."""
    gen = np.asarray(genuine, np.float64).ravel()
    if gen.size == 0:
        raise ValueError("no genuine scores")
    t = threshold_at_fmr(impostor, fmr)
    return float(np.mean(gen >= t)), t


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The error rate where FMR equals FNMR (the mean of the two at the closest threshold)."""
    gen = np.sort(np.asarray(genuine, np.float64).ravel())
    imp = np.sort(np.asarray(impostor, np.float64).ravel())
    if gen.size == 0 or imp.size == 0:
        raise ValueError("need genuine and impostor scores")
    t = np.unique(np.concatenate([gen, imp, [np.inf]]))
    fnmr = np.searchsorted(gen, t, side="left") / gen.size  # genuines below t: rejected
    fmr = 1.0 - np.searchsorted(imp, t, side="left") / imp.size  # impostors >= t: accepted
    i = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[i] + fnmr[i]) / 2)


# ----------------------------------------------------------------------------- intervals

@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval at `level` (bootstrap SE, normal)."""

    estimate: float
    low: float
    high: float
    level: float
    se: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in asdict(self).items()}

    def widened(self, level: float) -> "Interval":
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return Interval(self.estimate, self.estimate - z * self.se, self.estimate + z * self.se,
                        level, self.se)


def cluster_weights(clusters: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) sample weights: each row resamples the clusters with replacement."""
    labels, inverse = np.unique(clusters, return_inverse=True)
    draws = rng.integers(0, labels.size, (n_boot, labels.size))
    counts = np.zeros((n_boot, labels.size))
    np.add.at(counts, (np.repeat(np.arange(n_boot), labels.size), draws.ravel()), 1.0)
    return counts[:, inverse]


def cluster_bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int,
                      clusters: np.ndarray, level: float = 0.95, n_boot: int = 1000,
                      seed: int = 0) -> Interval:
    """Interval for statistic(weights) where weights is (B, n) and the result is (B,).

    statistic(np.ones((1, n))) is the point estimate. The interval is estimate +- z * SE with
    the bootstrap SE (clusters resampled): normal intervals extend to the small tail
    probabilities that multiple-comparison corrections ask for, where percentiles of a few
    thousand resamples cannot.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    clusters = np.asarray(clusters)
    if clusters.shape != (n,):
        raise ValueError(f"clusters must have shape ({n},), got {clusters.shape}")
    estimate = float(statistic(np.ones((1, n)))[0])
    boot = statistic(cluster_weights(clusters, n_boot, np.random.default_rng(seed)))
    se = float(np.std(boot, ddof=1)) if n_boot > 1 else 0.0
    return Interval(estimate, estimate, estimate, level, se).widened(level)


def mean_interval(values: np.ndarray, clusters: np.ndarray, level: float = 0.95,
                  n_boot: int = 1000, seed: int = 0) -> Interval:
    """The mean of per-item `values` (hits, shares, gains) with a cluster-bootstrap interval."""
    values = np.asarray(values, np.float64)
    return cluster_bootstrap(lambda w: (w @ values) / w.sum(axis=1), values.size, clusters,
                             level, n_boot, seed)
