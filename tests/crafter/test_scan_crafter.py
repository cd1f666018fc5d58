"""The scan against Crafter: crafted features must beat plain ones on the attacker's identity
score, the adaptive attacker must match the basic one on plain features, and attribute
readability is reported as utility, not as a leak."""

from __future__ import annotations

import pytest

from featurelock.attack_harness.crafter_target import (DEFAULT_CRAFTER_DIR, crafter_target,
                                                       parse_crafter_spec)
from featurelock.attack_harness.data import synthetic_data
from featurelock.attack_harness.reference import ZooEvaluator
from featurelock.attack_harness.scan import ScanConfig, run_scan
from featurelock.attack_harness.targets import CachedEmbedder, LocalTarget
from featurelock.attack_harness.tradeoff import tradeoff_points

BETA = 0.3  # a packaged crafting network (models/weights/crafter)


def test_crafter_spec_parsing():
    assert parse_crafter_spec("crafter:beta=3") == 3.0
    assert parse_crafter_spec("aes-256-gcm") is None
    for bad in ("crafter", "crafter:beta=x", "crafter:beta=-1", "crafter:gamma=1"):
        with pytest.raises(ValueError):
            parse_crafter_spec(bad)


@pytest.fixture(scope="module")
def scan():
    evaluator = ZooEvaluator()
    embed = CachedEmbedder(evaluator.embed)
    targets = {"plain": LocalTarget(embed, name="plain"),
               "crafted": crafter_target(BETA, embed, DEFAULT_CRAFTER_DIR)}
    config = ScanConfig(budget=200, representations=("float",), n_boot=200, progress=False,
                        attacks=("attributes", "reconstruction", "basic-decoder"),
                        inverse_readings=())  # the inverse attacks: test_inversion.py
    return run_scan(targets, config, synthetic_data(200, n_victim_ids=20, seed=0), evaluator)


def _identity(result, target, attack):
    return next(t for t in result.tests if t["target"] == target and t["attack"] == attack
                and t["column"] == "identity")


def test_crafted_features_beat_plain_ones_on_identity_against_both_decoders(scan):
    for attack in ("reconstruction", "basic-decoder"):
        plain, crafted = _identity(scan, "plain", attack), _identity(scan, "crafted", attack)
        assert plain["leak"], f"{attack}: no power on plaintext, the comparison says nothing"
        assert crafted["score"] < plain["score"]


def test_adaptive_attacker_is_at_least_as_strong_as_the_basic_one_on_plain_features(scan):
    adaptive = _identity(scan, "plain", "reconstruction")
    basic = _identity(scan, "plain", "basic-decoder")
    assert adaptive["score"] >= basic["score"]


def test_attributes_are_utility_for_crafter_and_a_privacy_test_for_plaintext(scan):
    entry = scan.targets["crafted"]
    assert any(u["what"] == "mean" for u in entry["utility"])
    assert not [t for t in scan.tests if t["target"] == "crafted" and t["column"] == "attributes"]
    assert [t for t in scan.tests if t["target"] == "plain" and t["column"] == "attributes"]
    points = {p["target"]: p for p in tradeoff_points(scan)}
    mean = next(u["score"] for u in entry["utility"] if u["what"] == "mean")
    assert points["crafted"]["attributes"] == pytest.approx(mean)
    assert points["plain"]["identity"] == pytest.approx(
        max(t["score"] for t in scan.tests if t["target"] == "plain" and t["column"] == "identity"))
    if points["plain"]["utility_attributes"]:  # the control carries some attribute
        assert points["plain"]["utility"] == pytest.approx(1.0)


def test_scan_cli_refuses_a_malformed_crafter_target(tmp_path, capsys):
    from featurelock.middleware.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["scan", "--local", "crafter:beta=x", "--report", str(tmp_path)])
    assert exc.value.code == 2
    assert "beta must be a number" in capsys.readouterr().err


def test_http_answers_marked_crafter_are_not_taken_for_plaintext():
    from featurelock.attack_harness.targets import HttpTarget

    target = HttpTarget("http://127.0.0.1:9/predictions/m", tenant="t", token="x",
                        inference_key=None)
    try:
        target._note_readable("rot13")  # not a readable scheme: ignored
        assert target.scheme is None
        target._note_readable("crafter")
        assert target.scheme == "crafter"
    finally:
        target.close()
