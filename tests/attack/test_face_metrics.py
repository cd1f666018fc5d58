"""Verification metrics (TAR at FMR, EER) and template inversion on constructed inputs."""

import numpy as np
import pytest

from featurelock.attack_harness.metrics import (FMR_1E3, equal_error_rate, tar_at_fmr,
                                                threshold_at_fmr, verification_scores)
from featurelock.attack_harness.reconstruction import template_inversion


def test_threshold_lets_at_most_fmr_of_impostors_pass():
    impostor = np.arange(2000, dtype=np.float64)  # 0..1999: the top 2 may pass at FMR 1e-3
    t = threshold_at_fmr(impostor, 1e-3)
    assert np.sum(impostor >= t) == 2
    assert 1997 < t <= 1998
    # Ties at the cut: none of the tied scores may pass, or FMR would exceed the target.
    tied = np.r_[np.zeros(1997), np.ones(3)]
    assert np.sum(tied >= threshold_at_fmr(tied, 1e-3)) == 0


def test_tar_at_fmr_on_constructed_scores():
    impostor = np.linspace(-1.0, 0.5, 10_000)  # top 10 impostors lie above ~0.4985
    genuine = np.r_[np.full(30, 0.9), np.full(70, 0.45)]  # 30 above the cut, 70 below it
    tar, t = tar_at_fmr(genuine, impostor, FMR_1E3)
    assert tar == pytest.approx(0.30)
    assert np.mean(impostor >= t) <= FMR_1E3
    assert tar_at_fmr(np.full(5, 2.0), impostor)[0] == 1.0


def test_fmr_needs_enough_impostors():
    with pytest.raises(ValueError, match="at least 1000 impostor"):
        threshold_at_fmr(np.zeros(999), 1e-3)
    with pytest.raises(ValueError, match="fmr"):
        threshold_at_fmr(np.zeros(10), 0.0)


def test_equal_error_rate():
    assert equal_error_rate(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 0.0
    # Overlap of one genuine and one impostor in four each: EER 1/4.
    assert equal_error_rate(np.array([0.3, 0.6, 0.7, 0.8]),
                            np.array([0.1, 0.2, 0.25, 0.65])) == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    same = rng.normal(size=20_000)
    assert equal_error_rate(same[:10_000], same[10_000:]) == pytest.approx(0.5, abs=0.02)


def test_verification_scores_pairs_and_masks():
    ids = np.array([0, 0, 1, 1, 2])
    sim = np.arange(25, dtype=np.float64).reshape(5, 5)
    genuine, impostor = verification_scores(sim, ids)
    assert sorted(genuine) == [1.0, 13.0]  # (0,1) and (2,3), each once
    assert impostor.size == 10 - 2
    g2, i2 = verification_scores(sim[:2], ids[:2], ids, valid=~np.eye(2, 5, dtype=bool))
    assert sorted(g2) == [1.0, 5.0] and i2.size == 6
    with pytest.raises(ValueError):
        verification_scores(sim[:3], ids)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_template_inversion_perfect_and_blind():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(60), 3)
    centres = _unit(rng.normal(size=(60, 64)))
    templates = _unit(centres[ids] + 0.3 * rng.normal(size=(180, 64)) / 8)
    baseline = _unit(rng.normal(size=(1, 64)))[0]
    perfect = template_inversion(templates, baseline, templates, ids, n_boot=200)
    assert perfect["score"].estimate == 1.0 and perfect["type2_rate"] > 0.9
    assert perfect["chance"] == pytest.approx(1e-3)
    blind = template_inversion(_unit(rng.normal(size=(180, 64))), baseline, templates, ids,
                               n_boot=200)
    assert blind["score"].estimate < 0.05
    few = template_inversion(templates[:20], baseline, templates[:20], ids[:20])
    assert few["skipped"].startswith("not applicable")
