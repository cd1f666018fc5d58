"""rank-1 / mAP follow the Market-1501 rules (same-camera matches ignored)."""

import numpy as np
import pytest

from featurelock.models.evaluation import reid_metrics


def _unit(rows):
    x = np.asarray(rows, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_perfect_and_hand_computed_ap():
    q = _unit([[1, 0, 0]])
    # Ranked by similarity: g0 (id 2), g1 (id 1), g2 (id 9), g3 (id 1).
    g = _unit([[1, 0.1, 0], [1, 0.3, 0], [1, 0.6, 0], [1, 1.0, 0]])
    m = reid_metrics(q, np.array([1]), np.array([0]), g, np.array([2, 1, 9, 1]), np.array([1] * 4))
    assert m["rank1"] == 0.0
    assert m["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)  # hits at ranks 2 and 4


def test_same_camera_match_is_ignored():
    q = _unit([[1, 0]])
    g = _unit([[1, 0], [0.6, 0.8], [0, 1]])
    ids, cams = np.array([5, 5, 7]), np.array([0, 1, 2])
    m = reid_metrics(q, np.array([5]), np.array([0]), g, ids, cams)
    assert m["rank1"] == 1.0 and m["mAP"] == 1.0 and m["n_queries"] == 1
    with pytest.raises(ValueError, match="no query"):
        reid_metrics(q, np.array([5]), np.array([0]), g[:1], ids[:1], cams[:1])


def test_random_embeddings_score_near_chance():
    rng = np.random.default_rng(0)
    n_ids = 50
    g_ids = np.repeat(np.arange(n_ids), 4)
    g = _unit(rng.normal(size=(len(g_ids), 32)))
    q = _unit(rng.normal(size=(n_ids, 32)))
    m = reid_metrics(q, np.arange(n_ids), np.zeros(n_ids, int), g, g_ids, np.ones_like(g_ids))
    assert m["rank1"] < 0.15 and m["mAP"] < 0.15
