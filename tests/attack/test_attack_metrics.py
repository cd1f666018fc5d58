"""SSIM / PSNR on known cases, balanced accuracy, rank-1, clustered bootstrap intervals."""

import math

import numpy as np
import pytest

from featurelock.attack_harness.metrics import (
    Interval, balanced_accuracy, balanced_accuracy_chance, batch_psnr, batch_ssim,
    cluster_bootstrap, cluster_weights, gaussian_kernel, psnr, rank1_hits, ssim)


def _ssim_direct(a, b, data_range=255.0):
    """Wang et al. 2004 written out window by window (slow, independent of the filter code)."""
    k1d = gaussian_kernel(1.5)
    w = np.outer(k1d, k1d)
    n = w.shape[0]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for i in range(a.shape[0] - n + 1):
        for j in range(a.shape[1] - n + 1):
            pa, pb = a[i:i + n, j:j + n], b[i:i + n, j:j + n]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_gaussian_window_is_11_taps_normalised():
    k = gaussian_kernel(1.5)
    assert k.size == 11 and math.isclose(k.sum(), 1.0) and np.allclose(k, k[::-1])


def test_ssim_identical_is_one_and_psnr_infinite(rng):
    img = rng.integers(0, 256, (32, 24, 3)).astype(np.uint8)
    assert ssim(img, img) == pytest.approx(1.0)
    assert psnr(img, img) == math.inf


def test_ssim_matches_the_direct_definition(rng):
    a = rng.uniform(0, 255, (20, 17))
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255)
    assert ssim(a, b) == pytest.approx(_ssim_direct(a, b), abs=1e-10)


def test_ssim_known_cases(rng):
    black, white = np.zeros((16, 16)), np.full((16, 16), 255.0)
    # Constant images: only the luminance term, (2*0*255 + C1) / (0 + 255^2 + C1).
    c1 = (0.01 * 255) ** 2
    assert ssim(black, white) == pytest.approx(c1 / (255**2 + c1))
    # Independent noise images are nearly uncorrelated: SSIM near 0; symmetric.
    a, b = rng.uniform(0, 255, (64, 64)), rng.uniform(0, 255, (64, 64))
    assert abs(ssim(a, b)) < 0.05
    assert ssim(a, b) == pytest.approx(ssim(b, a))
    # Negated contrast around the mean gives a strongly negative structure term.
    assert ssim(a, 255 - a) < -0.9


def test_ssim_colour_is_the_channel_mean(rng):
    a = rng.uniform(0, 255, (16, 16, 3))
    b = np.clip(a + rng.normal(0, 30, a.shape), 0, 255)
    assert ssim(a, b) == pytest.approx(np.mean([ssim(a[..., c], b[..., c]) for c in range(3)]))


def test_batch_ssim_and_psnr_agree_with_single(rng):
    a = rng.integers(0, 256, (3, 20, 20, 3)).astype(np.uint8)
    b = rng.integers(0, 256, (3, 20, 20, 3)).astype(np.uint8)
    assert np.allclose(batch_ssim(a, b), [ssim(x, y) for x, y in zip(a, b)])
    assert np.allclose(batch_psnr(a, b), [psnr(x, y) for x, y in zip(a, b)])


def test_psnr_known_values():
    a = np.zeros((8, 8))
    assert psnr(a, a + 1) == pytest.approx(20 * math.log10(255))  # MSE 1 -> 48.13 dB
    assert psnr(a, a + 255) == pytest.approx(0.0)
    assert psnr(a, a + 0.5, data_range=1.0) == pytest.approx(10 * math.log10(4))


def test_ssim_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        ssim(np.zeros((16, 16)), np.zeros((16, 15)))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


def test_balanced_accuracy_and_chance():
    y = np.array([0, 0, 0, 0, 1, 1])
    assert balanced_accuracy(y, np.zeros(6, int)) == pytest.approx(0.5)  # majority: chance
    assert balanced_accuracy(y, y) == 1.0
    assert balanced_accuracy(y, np.array([0, 0, 1, 1, 1, 0])) == pytest.approx((0.5 + 0.5) / 2)
    assert balanced_accuracy_chance(np.array([2, 5, 5, 7])) == pytest.approx(1 / 3)


def test_rank1_hits_ignores_same_camera_matches():
    gallery = np.eye(3)
    g_ids, g_cams = np.array([1, 1, 2]), np.array([0, 1, 0])
    query = np.array([[1.0, 0.1, 0.0]])  # nearest is the same-camera match: ignored
    hits, chance, valid = rank1_hits(query, np.array([1]), np.array([0]), gallery, g_ids, g_cams)
    assert hits.tolist() == [1.0] and valid.tolist() == [True]
    assert chance[0] == pytest.approx(1 / 2)  # gallery items 1 (true) and 2 remain


def test_cluster_weights_resample_whole_clusters():
    clusters = np.array([5, 5, 9, 9, 9, 1])
    w = cluster_weights(clusters, 50, np.random.default_rng(0))
    assert w.shape == (50, 6)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 2] == w[:, 4])
    assert np.allclose((w[:, [0, 2, 5]]).sum(1), 3)  # 3 clusters drawn per resample


def test_interval_covers_a_known_mean_about_95_percent():
    truth, covered = 0.3, 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x = (rng.random(120) < truth).astype(float)
        iv = cluster_bootstrap(lambda w: (w @ x) / w.sum(1), x.size, np.arange(x.size), 0.95,
                               300, seed)
        covered += iv.low <= truth <= iv.high
    assert 0.9 <= covered / 200 <= 0.99


def test_clustered_interval_is_wider_than_naive_for_correlated_data(rng):
    ids = np.repeat(np.arange(30), 4)
    x = np.repeat((rng.random(30) < 0.5).astype(float), 4)  # same value within a cluster
    stat = lambda w: (w @ x) / w.sum(1)  # noqa: E731
    clustered = cluster_bootstrap(stat, x.size, ids, 0.95, 500, 0)
    naive = cluster_bootstrap(stat, x.size, np.arange(x.size), 0.95, 500, 0)
    assert clustered.se > 1.5 * naive.se


def test_interval_widens_with_level():
    iv = Interval(0.5, 0.4, 0.6, 0.95, 0.051)
    wider = iv.widened(0.999)
    assert wider.low < iv.low and wider.high > iv.high and wider.estimate == 0.5
    with pytest.raises(ValueError):
        cluster_bootstrap(lambda w: w.sum(1), 3, np.arange(3), level=1.0)
