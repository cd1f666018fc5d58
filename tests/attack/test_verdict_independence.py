"""A target's verdict is a property of the target: the multiple-comparison correction runs
over its own tests, so scanning it alone or beside others (same seed, same budget) gives the
same intervals and the same verdicts."""

import pytest

from featurelock.attack_harness.data import synthetic_data
from featurelock.attack_harness.reference import PixelEmbedder
from featurelock.attack_harness.scan import ScanConfig, _gate, run_scan
from featurelock.attack_harness.targets import local_targets

SCHEMES = ("plaintext", "shufflebits", "aes-256-gcm")


def test_the_correction_counts_only_the_targets_own_tests():
    from featurelock.attack_harness.attack import ATTACKS, Finding
    from featurelock.attack_harness.metrics import Interval

    attack = ATTACKS["attributes"](ScanConfig())
    one = Finding("attributes", "a", Interval(0.7, 0.6, 0.8, 0.95, 0.05), 0.5, 100, "float")
    alone = _gate({"t": [(attack, one)]}, ScanConfig())
    crowded = _gate({"t": [(attack, one)], "u": [(attack, one)] * 200}, ScanConfig())
    assert alone[0]["leak"] and crowded[0] == alone[0]
    assert not any(t["leak"] for t in crowded[1:])  # 200 tests: z = 3.9


@pytest.fixture(scope="module")
def setting():
    evaluator = PixelEmbedder()
    data = synthetic_data(96, 12, 4, seed=4)
    config = ScanConfig(budget=96, seed=4, progress=False, n_boot=200,
                        attacks=("equality", "key-recovery", "linkability", "attributes"),
                        representations=("float", "bits"))
    return evaluator, data, config


@pytest.fixture(scope="module")
def together(setting):
    return _scan(setting, SCHEMES)


def _scan(setting, schemes):
    evaluator, data, config = setting
    targets = local_targets(schemes, evaluator.embed, shufflebits_seed=7)
    return run_scan(targets, config, data, evaluator)


def _verdict(result, name, scores):
    v = result.verdicts[name]
    tests = [(t["column"], t["what"], t["reading"], t["leak"], t["simultaneous_level"],
              round(t["simultaneous_ci"][0], 9) if scores else None)
             for t in result.tests if t["target"] == name]
    return v["verdict"], {c: col["status"] for c, col in v["columns"].items()}, tests


@pytest.mark.parametrize("name", SCHEMES)
def test_a_targets_verdict_is_the_same_alone_and_beside_others(setting, together, name):
    alone = _scan(setting, (name,))
    # aes-256-gcm draws a fresh key and nonces per scan, so its scores move a little; its
    # verdicts, statuses and correction must not. The others are deterministic: every interval
    # must be the same too.
    scores = name != "aes-256-gcm"
    assert _verdict(alone, name, scores) == _verdict(together, name, scores)
