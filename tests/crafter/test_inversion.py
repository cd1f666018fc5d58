"""Inverse-crafting attacks: the insider with the CraftNet file recovers the plain features,
an outsider's learned map beats chance, and the scan attacks the recovered features as
leaks (attributes on them are no longer utility).

Sizes: 160 attacker images, 20 victim identities (80 victim images), the committed beta 0.3
network. Margins were measured over synthetic_data seeds 0-4 (see each test)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featurelock.attack_harness.crafter_target import DEFAULT_CRAFTER_DIR, crafter_target
from featurelock.attack_harness.data import synthetic_data
from featurelock.attack_harness.inversion import BLACKBOX, WHITEBOX, blackbox_inverse, cosines
from featurelock.attack_harness.reference import ZooEvaluator
from featurelock.attack_harness.scan import ScanConfig, run_scan
from featurelock.attack_harness.targets import CachedEmbedder, LocalTarget
from featurelock.attack_harness.tradeoff import tradeoff_points
from featurelock.models.crafter.files import craftnet_name, load_craftnet

BETA = 0.3
BUDGET, VICTIM_IDS, SEED = 160, 20, 0


@pytest.fixture(scope="module")
def evaluator():
    return ZooEvaluator()


@pytest.fixture(scope="module")
def features(evaluator):
    """(aux ids, aux plain, aux crafted, victim plain, victim crafted, the CraftNet)."""
    data = synthetic_data(BUDGET, n_victim_ids=VICTIM_IDS, seed=SEED)
    net = load_craftnet(DEFAULT_CRAFTER_DIR / craftnet_name(BETA))
    aux = np.asarray(evaluator.embed(data.aux_images), np.float32)
    vic = np.asarray(evaluator.embed(data.victim_images), np.float32)
    with torch.inference_mode():
        aux_c, vic_c = (net(torch.from_numpy(x)).numpy() for x in (aux, vic))
    return data.aux_ids, aux, aux_c, vic, vic_c, net


def test_whitebox_inverse_recovers_the_plain_features(scan):
    """Mean cosine to the truth, seeds 0-4: 0.90-0.97 recovered (served: 0.26-0.33). The
    scan's `inversion` attack reports it for the white-box reading (`whitebox_inverse`)."""
    cos = scan.targets["crafted"]["attacks"]["inversion"]
    assert cos["served (no inversion)"]["mean"] < 0.45  # crafting moved the features far
    assert cos[WHITEBOX]["mean"] > 0.85
    assert cos[WHITEBOX]["n"] == 4 * VICTIM_IDS


def test_blackbox_map_beats_chance(features):
    """The outsider's ridge map vs the best constant guess (its mean plain feature), seeds
    0-4: mean cosine 0.74-0.83 vs 0.03-0.22 (gap >= 0.61); the served features 0.26-0.33."""
    ids, aux, aux_c, vic, vic_c, _ = features
    recovered = blackbox_inverse(aux_c, aux, ids, vic_c, seed=SEED)
    constant = np.repeat(aux.mean(axis=0, keepdims=True), len(vic), axis=0)
    assert cosines(recovered, vic).mean() > cosines(constant, vic).mean() + 0.4
    assert cosines(recovered, vic).mean() > cosines(vic_c, vic).mean() + 0.2


@pytest.fixture(scope="module")
def scan(evaluator):
    embed = CachedEmbedder(evaluator.embed)
    targets = {"plain": LocalTarget(embed, name="plain"),
               "crafted": crafter_target(BETA, embed, DEFAULT_CRAFTER_DIR)}
    config = ScanConfig(budget=BUDGET, seed=SEED, representations=("float",), n_boot=200,
                        progress=False, attacks=("linkability", "attributes", "inversion"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_scan(targets, config, synthetic_data(BUDGET, n_victim_ids=VICTIM_IDS,
                                                        seed=SEED), evaluator)
    finally:
        torch.set_num_threads(threads)


def _test(result, target, reading, what="zero-query rank-1", column="linkability"):
    return next(t for t in result.tests if t["target"] == target and t["reading"] == reading
                and t["column"] == column and t["what"] == what)


def test_inverted_features_link_people_better_than_the_crafted_ones(scan):
    """Zero-query linkability rank-1, seeds 0-4 at this size: crafted 0.23-0.74, inverted
    (white-box) 0.72-0.96, at least 0.22 above crafted; the plaintext control 0.72-0.96."""
    crafted = _test(scan, "crafted", "float")
    inverted = _test(scan, "crafted", WHITEBOX)
    assert inverted["leak"]
    assert inverted["score"] > crafted["score"] + 0.15
    assert scan.verdicts["crafted"]["columns"]["linkability"]["status"] == "leak"


def test_inverted_readings_only_for_the_readable_target_and_gated(scan):
    readings = {t["reading"] for t in scan.tests if t["target"] == "plain"}
    assert readings == {"float"}  # plaintext is the control: nothing to invert
    entry = scan.targets["crafted"]
    # attributes as served stay utility; read from the recovered features they are tests
    assert {u["reading"] for u in entry["utility"]} == {"float"}
    gated = {t["reading"] for t in scan.tests if t["target"] == "crafted"
             and t["column"] == "attributes"}
    assert gated == {WHITEBOX, BLACKBOX}
    cos = entry["attacks"]["inversion"]
    assert cos[WHITEBOX]["mean"] > cos[BLACKBOX]["mean"] > cos["served (no inversion)"]["mean"]
    point = next(p for p in tradeoff_points(scan) if p["target"] == "crafted")
    assert point["linkability_inverted"] >= point["linkability"] - 1e-9 or \
        point["linkability_inverted_reading"] in (WHITEBOX, BLACKBOX)
    assert set(point["inverted_cosine"]) == {WHITEBOX, BLACKBOX}
