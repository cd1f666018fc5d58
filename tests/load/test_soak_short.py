"""A short `make soak`: mixed load on a real TorchServe with a rotation and a revocation."""

from __future__ import annotations

import pytest

pytest.importorskip("ts")
from load_tests.soak import rss_growth, run_soak  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_short_soak_has_no_unexpected_outcome(tmp_path):
    summary = run_soak(24.0, 2, tmp_path / "stack")
    outcomes = summary["outcomes"]
    assert summary["unexpected_count"] == 0, summary["unexpected"]
    # Every kind of request ran, and the operator's changes were seen live.
    for seen in ("good-acme 200", "good-beta 200", "good-beta 403", "garbage 400",
                 "wrong-token 403", "cross-tenant 403"):
        assert outcomes.get(seen, 0) > 0, (seen, outcomes)
    assert summary["good_p50_ms"] <= summary["good_p99_ms"]
    assert any(name.startswith("worker") for name in summary["rss"])
    assert "frontend" in summary["rss"]


def test_rss_growth_compares_the_first_and_last_window():
    samples = [(0.0, {"w": 100}), (5.0, {"w": 110}), (50.0, {"w": 120}), (55.0, {"w": 130})]
    growth = rss_growth(samples, 10.0)["w"]
    assert growth["growth"] == pytest.approx(125 / 105 - 1)
