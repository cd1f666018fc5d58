"""The harness has teeth: plaintext and deterministic shufflebits leak, aes-256-gcm does not.

The targets serve the transparent PixelEmbedder (a fixed projection of a centre thumbnail),
so these tests check the harness, not the re-ID model's quality.
"""

import json

import pytest

from featurelock.attack_harness.data import synthetic_data
from featurelock.attack_harness.reference import PixelEmbedder
from featurelock.attack_harness.report import summary_table, write_reports
from featurelock.attack_harness.scan import ScanConfig, run_scan
from featurelock.attack_harness.targets import LocalTarget, local_targets

SCHEMES = ["plaintext", "shufflebits", "shufflebits-otp", "shufflebits-masked", "aes-256-gcm"]


@pytest.fixture(scope="module")
def scan():
    evaluator = PixelEmbedder()
    data = synthetic_data(400, 80, 4, seed=0)
    targets = local_targets(SCHEMES, evaluator.embed, shufflebits_seed=0)
    return run_scan(targets, ScanConfig(budget=400, progress=False, rmle_steps=60), data,
                    evaluator)


def _leaks(scan, target, attack=None, rep=None):
    return [t for t in scan.tests if t["target"] == target and t["leak"]
            and (attack is None or t["attack"] == attack)
            and (rep is None or t["representation"] == rep)]


@pytest.mark.slow
def test_plaintext_leaks_attributes_and_identity(scan):
    v = scan.verdicts["plaintext"]
    assert v["leak"] and v["scheme"] == "plaintext"
    assert _leaks(scan, "plaintext", "attributes")
    identity = v["best"]["identity"]
    assert identity["leak"] and identity["score"] > 5 * identity["chance"]
    assert v["best"]["psnr_gain"]["leak"]
    assert v["rmle"]["status"] == "ran"


@pytest.mark.slow
def test_deterministic_shufflebits_leaks_to_the_bits_reader(scan):
    assert scan.verdicts["shufflebits"]["leak"]
    assert _leaks(scan, "shufflebits", rep="bits")
    # The natural first try, ciphertext read as floats, sees (almost) nothing by comparison.
    bits = scan.targets["shufflebits"]["representations"]["bits"]["reconstruction"]
    floats = scan.targets["shufflebits"]["representations"]["float"]["reconstruction"]
    assert bits["psnr"] - bits["psnr_baseline"] > floats["psnr"] - floats["psnr_baseline"] + 0.3


@pytest.mark.slow
def test_aes_gcm_is_within_chance_for_every_attacker(scan):
    assert not scan.verdicts["aes-256-gcm"]["leak"]
    assert not _leaks(scan, "aes-256-gcm")
    assert scan.verdicts["aes-256-gcm"]["rmle"]["status"] == "not applicable"
    reps = scan.targets["aes-256-gcm"]["representations"]
    assert set(reps) == {"float", "bits", "hamming", "bytes"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shufflebits-otp", "shufflebits-masked"])
def test_otp_and_masked_are_reported(scan, name):
    # No claim about the outcome: only that every attacker was run and reported.
    v = scan.verdicts[name]
    assert set(v["best"]) == {"attributes", "identity", "ssim_gain", "psnr_gain"}
    assert {t["representation"] for t in scan.tests if t["target"] == name} == {
        "float", "bits", "hamming", "bytes"}


@pytest.mark.slow
def test_exit_status_and_reports(scan, tmp_path):
    assert scan.exit_status() == 1  # shufflebits (protected) leaks
    paths = write_reports(scan, tmp_path)
    doc = json.loads(paths["json"].read_text())
    assert doc["exit_status"] == 1 and set(doc["verdicts"]) == set(SCHEMES)
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") >= 5 * 6 * 3  # victim, decoders, baseline
    assert "http://" not in page and "https://" not in page  # self-contained
    table = summary_table(scan)
    assert "aes-256-gcm" in table and "within chance" in table and "LEAKS" in table


def _small(seed):
    evaluator = PixelEmbedder()
    data = synthetic_data(96, 12, 4, seed=seed)
    targets = {"plaintext": LocalTarget(evaluator.embed),
               "shufflebits": LocalTarget(evaluator.embed, "shufflebits", shufflebits_seed=3)}
    config = ScanConfig(budget=96, seed=seed, progress=False, n_boot=200, rmle_steps=5,
                        representations=("float", "bits", "hamming"))
    doc = run_scan(targets, config, data, evaluator).to_dict()
    doc.pop("seconds")
    return doc


def test_deterministic_given_a_seed():
    a, b = _small(1), _small(1)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["tests"] and a["targets"]["plaintext"]["queries_charged"] == 96


def test_config_validates():
    assert ScanConfig().fail_if == "protected-leak"
    with pytest.raises(ValueError, match="fail_if"):
        ScanConfig(fail_if="sometimes")
    with pytest.raises(ValueError, match="representations"):
        ScanConfig(representations=("pixels",))


def test_exit_status_follows_fail_if():
    from featurelock.attack_harness.scan import ScanResult

    def result(fail_if, leaking_scheme):
        verdicts = {s: {"scheme": s, "leak": s == leaking_scheme, "best": {}}
                    for s in ("plaintext", "aes-256-gcm")}
        return ScanResult(ScanConfig(fail_if=fail_if), {}, "", {}, [], verdicts, {}, 0.0)

    assert result("protected-leak", "plaintext").exit_status() == 0
    assert result("protected-leak", "aes-256-gcm").exit_status() == 1
    assert result("any-leak", "plaintext").exit_status() == 1
    assert result("never", "aes-256-gcm").exit_status() == 0


def test_gate_thresholds_by_margin_and_multiplicity():
    from featurelock.attack_harness.metrics import Interval
    from featurelock.attack_harness.scan import _gate

    def raw(score_se, m):
        reps = {f"r{i}": {"dim": 1, "reconstruction": None, "attributes": {
            "attributes": {"a": {"score": Interval(0.70, 0, 1, 0.95, score_se), "chance": 0.5,
                                 "n": 100}}, "mean": None}} for i in range(m)}
        return {"t": {"scheme": "aes-256-gcm", "representations": reps}}

    config = ScanConfig(margin=0.05)
    assert all(t["leak"] for t in _gate(raw(0.05, 1), config))  # 0.70 - 1.96*0.05 > 0.55
    assert not any(t["leak"] for t in _gate(raw(0.05, 200), config))  # Bonferroni: z = 3.9
    assert not any(t["leak"] for t in _gate(raw(0.01, 1), ScanConfig(margin=0.25)))
