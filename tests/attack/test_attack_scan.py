"""The harness has teeth: every attack finds the leak where nothing protects (the plaintext
control) and in the schemes that leak, and flags nothing in aes-256-gcm or shufflebits-masked.

The targets serve the transparent PixelEmbedder (a fixed projection of a centre thumbnail),
so these tests check the harness, not the re-ID model's quality (test_attack_real_model.py
does that).
"""

import json

import numpy as np
import pytest

from featurelock.attack_harness.data import synthetic_data
from featurelock.attack_harness.reconstruction import DecoderConfig
from featurelock.attack_harness.reference import PixelEmbedder
from featurelock.attack_harness.report import summary_table, write_reports
from featurelock.attack_harness.scan import CONTROL, ScanConfig, run_scan
from featurelock.attack_harness.targets import LocalTarget, local_targets

SCHEMES = ["plaintext", "shufflebits", "shufflebits-otp", "shufflebits-masked", "aes-256-gcm"]
SAFE = ["shufflebits-masked", "aes-256-gcm"]
# The decoder's CV grid (6 x 5 x 5 by default) is most of a scan's time; these tests check the
# scan, so a 2 x 2 x 2 grid does. test_reconstruction_power tests the default grid's power.
SMALL_GRID = DecoderConfig(lambdas=(1.0, 10.0), blurs=(0.0, 3.0), shrinks=(0.5, 1.0))


@pytest.fixture(scope="module")
def scan():
    evaluator = PixelEmbedder()
    data = synthetic_data(240, 80, 4, seed=0)
    targets = local_targets(SCHEMES, evaluator.embed, shufflebits_seed=0)
    # hamming and bytes are left out for time; test_attack_representations covers them.
    config = ScanConfig(budget=240, progress=False, rmle_steps=60, decoder=SMALL_GRID,
                        representations=("float", "bits", "structure", "columns"))
    return run_scan(targets, config, data, evaluator)


def _column(scan, target, column):
    return scan.verdicts[target]["columns"][column]


def _leaks(scan, target, column=None, reading=None):
    return [t for t in scan.tests if t["target"] == target and t["leak"]
            and (column is None or t["column"] == column)
            and (reading is None or t["reading"] == reading)]


@pytest.mark.slow
def test_the_plaintext_target_is_the_control_and_every_attack_fires_on_it(scan):
    assert scan.control == "plaintext" and scan.verdicts["plaintext"]["control"]
    v = scan.verdicts["plaintext"]
    assert v["verdict"] == "LEAKS"
    for column in ("equality", "key recovery", "linkability", "attributes", "identity",
                   "psnr_gain"):
        assert v["columns"][column]["status"] == "leak", column
    link = v["columns"]["linkability"]["best"]
    assert link["score"] > 10 * link["chance"]
    assert scan.targets["plaintext"]["attacks"]["rmle"]["status"] == "ran"


@pytest.mark.slow
def test_deterministic_shufflebits_is_linked_decrypted_and_equal(scan):
    v = scan.verdicts["shufflebits"]
    assert v["verdict"] == "LEAKS"
    assert v["columns"]["equality"]["best"]["score"] == 1.0
    assert _leaks(scan, "shufflebits", "linkability")
    recovery = scan.targets["shufflebits"]["attacks"]["key-recovery"]
    assert recovery["pairs_needed_for_99pct"] is not None
    assert recovery["pairs_needed_for_99pct"] <= 4
    assert v["columns"]["key recovery"]["best"]["score"] > 0.99
    # The natural first try, ciphertext read as floats, sees (almost) nothing by comparison.
    assert _leaks(scan, "shufflebits", reading="bits")
    assert len(_leaks(scan, "shufflebits", reading="bits")) > len(
        _leaks(scan, "shufflebits", reading="float"))


@pytest.mark.slow
def test_otp_is_linked_and_equal_by_the_whole_message_readers(scan):
    link = _leaks(scan, "shufflebits-otp", "linkability")
    assert link and {t["reading"] for t in link} == {"columns"}
    # Randomised bytes, but the same image twice keeps its bit columns: equal canonical forms.
    equal = _leaks(scan, "shufflebits-otp", "equality")
    assert [t["what"] for t in equal] == ["equal canonical forms"]
    # Known pairs decrypt nothing: what is learned from one message does not carry over.
    assert _column(scan, "shufflebits-otp", "key recovery")["status"] == "within chance"


@pytest.mark.slow
@pytest.mark.parametrize("name", SAFE)
def test_masked_and_aes_are_within_chance_where_the_control_shows_power(scan, name):
    v = scan.verdicts[name]
    assert not v["leak"] and not _leaks(scan, name)
    for column, col in v["columns"].items():
        assert col["status"] in ("within chance", "inconclusive"), column
        control = scan.verdicts["plaintext"]["columns"][column]["status"]
        assert (col["status"] == "within chance") == (control == "leak"), column
    assert "within chance (power shown for: " in v["verdict"]
    assert scan.targets[name]["attacks"]["rmle"]["status"] == "not applicable"
    readings = {t["reading"] for t in scan.tests if t["target"] == name}
    assert readings == {"float", "bits", "structure", "columns", "bytes", "-"}


@pytest.mark.slow
def test_every_test_reports_its_detectable_effect(scan):
    for t in scan.tests:
        assert t["detectable"] >= t["chance"] + t["margin"]
        assert t["leak"] == (t["simultaneous_ci"][0] > t["chance"] + t["margin"])


def test_budget_curve_is_measured_and_drawn(tmp_path):
    evaluator = PixelEmbedder()
    data = synthetic_data(120, 24, 4, seed=3)
    targets = local_targets(["plaintext", "aes-256-gcm"], evaluator.embed)
    result = run_scan(targets, ScanConfig(budget=120, progress=False, n_boot=200,
                                          representations=("float", "bits"),
                                          attacks=("linkability", "attributes"),
                                          budgets=(40, 120)), data, evaluator)
    link = result.curves["plaintext"]["linkability"]
    assert [p["budget"] for p in link] == [40, 120]
    assert all(p["score"] > 5 * p["chance"] for p in link)
    assert all(p["score"] < p["chance"] + 0.15 for p in result.curves["aes-256-gcm"]["attributes"])
    doc = json.loads(write_reports(result, tmp_path)["json"].read_text())
    assert doc["curves"]["aes-256-gcm"]["linkability"][0]["budget"] == 40
    assert "Leakage vs query budget" in (tmp_path / "report.html").read_text()


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


def _small(seed, **kw):
    evaluator = PixelEmbedder()
    data = synthetic_data(96, 12, 4, seed=seed)
    targets = {"shufflebits": LocalTarget(evaluator.embed, "shufflebits", shufflebits_seed=3)
               } if kw.pop("leaky", False) else {}
    targets["plaintext"] = LocalTarget(evaluator.embed)
    config = ScanConfig(budget=96, seed=seed, progress=False, n_boot=200, rmle_steps=5,
                        decoder=SMALL_GRID, representations=("float", "bits", "hamming"), **kw)
    return run_scan(targets, config, data, evaluator)


def test_deterministic_given_a_seed():
    a, b = (_small(1, leaky=True).to_dict() for _ in range(2))
    for doc in (a, b):  # timings vary; everything else must not
        doc.pop("seconds")
        for entry in doc["targets"].values():
            entry.pop("seconds")
            entry.pop("cpu_seconds")
            # Envelope nonces and tags are random (shufflebits' payload is not), so the exact
            # share of differing bits between repeated responses varies; the counts do not.
            entry["attacks"]["equality"].pop("differing_bits", None)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    # The equality probe's 8 queries come out of the same budget.
    assert a["tests"] and a["targets"]["plaintext"]["queries_charged"] == 96


def test_without_a_plaintext_target_the_evaluator_is_the_control():
    evaluator = PixelEmbedder()
    data = synthetic_data(64, 12, 4, seed=2)
    result = run_scan({"aes": LocalTarget(evaluator.embed, "aes-256-gcm")},
                      ScanConfig(budget=64, progress=False, n_boot=200,
                                 attacks=("equality", "linkability"),
                                 representations=("float",)), data, evaluator)
    assert result.control == CONTROL and result.verdicts[CONTROL]["control"]
    assert result.verdicts[CONTROL]["columns"]["equality"]["status"] == "leak"
    assert result.verdicts["aes"]["columns"]["equality"]["status"] == "within chance"
    assert result.exit_status() == 0


def test_a_control_that_serves_ciphertext_is_refused():
    evaluator = PixelEmbedder()
    data = synthetic_data(64, 12, 4, seed=2)
    with pytest.raises(ValueError, match="does not serve plaintext"):
        run_scan({"aes": LocalTarget(evaluator.embed, "aes-256-gcm")},
                 ScanConfig(budget=64, progress=False, attacks=("equality",)), data, evaluator,
                 control="aes")


def test_config_validates():
    assert ScanConfig().fail_if == "protected-leak"
    assert "linkability" in ScanConfig().attacks
    with pytest.raises(ValueError, match="fail_if"):
        ScanConfig(fail_if="sometimes")
    with pytest.raises(ValueError, match="representations"):
        ScanConfig(representations=("pixels",))
    with pytest.raises(ValueError, match="attacks"):
        ScanConfig(attacks=("telepathy",))
    with pytest.raises(ValueError, match="budgets"):
        ScanConfig(budget=100, budgets=(300,))


def test_exit_status_follows_fail_if():
    from featurelock.attack_harness.scan import ScanResult

    def result(fail_if, leaking_scheme):
        verdicts = {s: {"scheme": s, "leak": s == leaking_scheme, "columns": {}}
                    for s in ("plaintext", "aes-256-gcm")}
        return ScanResult(ScanConfig(fail_if=fail_if), {}, "", "plaintext", {}, [], verdicts,
                          {}, {}, 0.0)

    assert result("protected-leak", "plaintext").exit_status() == 0
    assert result("protected-leak", "aes-256-gcm").exit_status() == 1
    assert result("any-leak", "plaintext").exit_status() == 1
    assert result("never", "aes-256-gcm").exit_status() == 0


def _test(target, column, what, score, se, chance=0.5):
    from featurelock.attack_harness.attack import Finding
    from featurelock.attack_harness.metrics import Interval

    return Finding(column, what, Interval(score, score - 2 * se, score + 2 * se, 0.95, se),
                   chance, 100, "float", summary=True)


def test_gate_thresholds_by_margin_and_multiplicity():
    from featurelock.attack_harness.attack import ATTACKS
    from featurelock.attack_harness.scan import _gate

    attack = ATTACKS["attributes"](ScanConfig())

    def found(se, m):
        return {"t": [(attack, _test("t", "attributes", f"a{i}", 0.70, se)) for i in range(m)]}

    config = ScanConfig(margin=0.05)
    assert all(t["leak"] for t in _gate(found(0.05, 1), config))  # 0.70 - 1.96*0.05 > 0.55
    assert not any(t["leak"] for t in _gate(found(0.05, 200), config))  # Bonferroni: z = 3.9
    assert not any(t["leak"] for t in _gate(found(0.01, 1), ScanConfig(margin=0.25)))


def test_a_column_is_within_chance_only_where_the_control_leaks():
    from featurelock.attack_harness.attack import ATTACKS
    from featurelock.attack_harness.scan import _gate, _verdicts

    attack = ATTACKS["linkability"](ScanConfig())
    found = {"ctl": [(attack, _test("ctl", "linkability", "zero-query", 0.9, 0.02, 0.01)),
                     (attack, _test("ctl", "attributes", "gender", 0.52, 0.05))],
             "aes": [(attack, _test("aes", "linkability", "zero-query", 0.01, 0.01, 0.01)),
                     (attack, _test("aes", "attributes", "gender", 0.50, 0.05))]}
    raw = {n: {"scheme": "plaintext" if n == "ctl" else "aes-256-gcm", "control": n == "ctl"}
           for n in found}
    verdicts = _verdicts(raw, _gate(found, ScanConfig()), "ctl")
    aes = verdicts["aes"]
    assert aes["columns"]["linkability"]["status"] == "within chance"
    assert aes["columns"]["attributes"]["status"] == "inconclusive"
    assert aes["columns"]["attributes"]["unpowered"] == ["gender"]
    assert aes["verdict"] == ("INCONCLUSIVE (no power for: attributes); within chance (power "
                              "shown for: linkability)") and not aes["leak"]
    assert verdicts["ctl"]["columns"]["attributes"]["status"] == "inconclusive"
    assert np.isclose(aes["columns"]["linkability"]["control"]["score"], 0.9)


def test_differing_bits_counts_every_bit_and_a_length_difference():
    from featurelock.attack_harness.attacks.equality import differing_bits

    assert differing_bits(b"\x00\x00", b"\x00\x00") == 0.0
    assert differing_bits(b"\x00\x00", b"\xff\x00") == 0.5
    assert differing_bits(b"\x0f", b"\x0f\x00") == 0.5  # the missing byte differs entirely
    assert differing_bits(b"", b"") == 0.0
