"""JUnit XML and SARIF from a scan's verdicts (`featurelock scan --junit/--sarif`).

The verdicts come from the scan's own `_verdicts` over hand-made gated tests, so the writers
read the structure a real scan produces; the CLI test in test_attack_cli.py runs a real one.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from featurelock.attack_harness.ci_reports import junit_xml, sarif_log, write_junit, write_sarif


def _test(target: str, column: str, score: float, leak: bool, what: str = "rank-1") -> dict:
    return {"target": target, "attack": column, "column": column, "what": what,
            "reading": "float", "summary": True, "score": score, "ci": [score - .02, score + .02],
            "ci_level": .95, "simultaneous_ci": [score - .05, score + .05],
            "simultaneous_level": .95, "chance": .1, "margin": .05, "detectable": .2, "n": 80,
            "leak": leak}


@pytest.fixture
def report() -> dict:
    from featurelock.attack_harness.scan import _verdicts

    raw = {"plain": {"scheme": "plaintext", "control": True},
           "aes": {"scheme": "aes-256-gcm", "control": False},
           "weak": {"scheme": "shufflebits", "control": False}}
    tests = [_test("plain", "reconstruction", .9, True), _test("plain", "attribute", .12, False),
             _test("aes", "reconstruction", .1, False), _test("aes", "attribute", .1, False),
             _test("weak", "reconstruction", .7, True), _test("weak", "attribute", .1, False)]
    verdicts = _verdicts(raw, tests, "plain")
    # A status another version of the scan may add: reported as skipped with its text.
    verdicts["weak"]["columns"]["membership"] = {"status": "not applicable"}
    return {"config": {"fail_if": "protected-leak"}, "verdicts": verdicts, "seconds": 12.3}


def _cases(xml: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(xml)  # well-formed, or this raises
    assert root.tag == "testsuites"
    return {(suite.get("name"), case.get("name")): case
            for suite in root.iter("testsuite") for case in suite.iter("testcase")}


def test_junit_case_per_target_and_column(report):
    xml = junit_xml(report)
    cases = _cases(xml)
    assert set(cases) == {("plain", "reconstruction"), ("plain", "attribute"),
                          ("aes", "reconstruction"), ("aes", "attribute"),
                          ("weak", "reconstruction"), ("weak", "attribute"),
                          ("weak", "membership")}
    failure = cases["weak", "reconstruction"].find("failure")
    assert failure is not None and "score 0.7" in failure.get("message")
    assert "[0.65, 0.75]" in failure.get("message") and "chance 0.1" in failure.get("message")
    # The plaintext control's leak proves the attack's power: expected, not a failure.
    assert cases["plain", "reconstruction"].find("failure") is None
    assert cases["aes", "reconstruction"].find("failure") is None  # within chance: passed
    assert cases["aes", "reconstruction"].find("skipped") is None
    skipped = cases["aes", "attribute"].find("skipped")  # control found nothing: no power
    assert skipped is not None and "no power" in skipped.get("message")
    assert cases["weak", "membership"].find("skipped").get("message") == "not applicable"
    root = ET.fromstring(xml)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("7", "1", "4")  # attribute: 3 unpowered
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["weak"].get("failures") == "1" and suites["aes"].get("skipped") == "1"


def test_junit_any_leak_fails_plaintext_too(report):
    report["config"]["fail_if"] = "any-leak"
    assert _cases(junit_xml(report))["plain", "reconstruction"].find("failure") is not None


def test_sarif_result_per_leaking_column(report, tmp_path):
    path = write_sarif(report, tmp_path / "scan.sarif", artifact="out/report.json")
    log = json.loads(path.read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] and len({r["id"] for r in rules}) == len(rules)
    assert {r["id"] for r in rules} == {"reconstruction", "attribute", "membership"}
    levels = {(r["locations"][0]["logicalLocations"][0]["name"], r["ruleId"]): r["level"]
              for r in run["results"]}
    assert levels == {("weak", "reconstruction"): "error"}  # the control's leak is expected
    report["config"]["fail_if"] = "any-leak"
    assert len(sarif_log(report)["runs"][0]["results"]) == 2
    for r in run["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"] and r["message"]["text"]
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
            "out/report.json"
    assert sarif_log({"verdicts": {}})["runs"][0]["results"] == []


def test_write_junit_creates_parent(report, tmp_path):
    path = write_junit(report, tmp_path / "ci" / "scan.xml")
    assert _cases(path.read_text(encoding="utf-8"))
