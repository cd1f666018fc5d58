"""A scan's verdicts as files CI systems read: JUnit XML and SARIF 2.1.0.

    report = result.to_dict()             # or json.load(open("report.json"))
    write_junit(report, Path("scan.xml"))  # GitLab / Jenkins / GitHub test reports
    write_sarif(report, Path("scan.sarif"))  # code-scanning tools

Both read only the report's `verdicts` (per target: `scheme`, `columns[column]` with `status`
and the `worst` test's numbers) and `config.fail_if`. JUnit: a testsuite per target, a test
case per column:

    leak            failure, the numbers in the message (score, simultaneous interval, chance
                    + margin). A plaintext target's leak is expected (it is the control that
                    proves the attack's power) and passes, unless fail_if is "any-leak".
    within chance   passed
    inconclusive    skipped: the attack found nothing on the plaintext control either
    anything else   skipped, with the status text (a status this module does not know)

SARIF: one rule per column, one result (level "error") per leak that JUnit counts as a
failure; a plaintext target's expected leak is no result. The exit codes stay the scan's.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping

__all__ = ["junit_xml", "sarif_log", "write_junit", "write_sarif", "SARIF_SCHEMA"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL = "featurelock scan"
_PLAINTEXT = "plaintext"  # attack_harness.targets.PLAINTEXT, without importing torch


def _leak_fails(verdict: Mapping[str, Any], fail_if: str) -> bool:
    """Whether a leak of this target is a failure (a plaintext target's leak is expected)."""
    return fail_if == "any-leak" or verdict.get("scheme") != _PLAINTEXT


def _numbers(column: str, entry: Mapping[str, Any]) -> str:
    t = entry.get("worst") or entry.get("best") or {}
    if "score" not in t:
        return f"{column}: {entry.get('status')}"
    low, high = t.get("simultaneous_ci") or t.get("ci") or (float("nan"), float("nan"))
    level = t.get("simultaneous_level", t.get("ci_level", 0.0))
    return (f"{column}: score {t['score']:.4g}, {level:.0%} simultaneous interval "
            f"[{low:.4g}, {high:.4g}], chance {t.get('chance', float('nan')):.4g} + margin "
            f"{t.get('margin', float('nan')):.4g}, n {t.get('n', '?')} "
            f"({t.get('what', '?')}, {t.get('reading', '?')})")


def _skip_reason(column: str, entry: Mapping[str, Any]) -> str:
    status = str(entry.get("status"))
    if status == "inconclusive":
        tests = ", ".join(entry.get("unpowered") or []) or "its tests"
        return (f"inconclusive: no power: the same attack found nothing on the plaintext "
                f"control either ({tests}); raise --budget")
    return status


def junit_xml(report: Mapping[str, Any]) -> str:
    """The JUnit XML document of a scan report (see the module docstring)."""
    fail_if = (report.get("config") or {}).get("fail_if", "protected-leak")
    root = ET.Element("testsuites", name=TOOL)
    totals = dict.fromkeys(("tests", "failures", "skipped"), 0)
    for target, verdict in (report.get("verdicts") or {}).items():
        suite = ET.SubElement(root, "testsuite", name=str(target))
        counts = dict.fromkeys(totals, 0)
        props = ET.SubElement(suite, "properties")
        for key in ("scheme", "verdict"):
            ET.SubElement(props, "property", name=key, value=str(verdict.get(key, "")))
        for column, entry in (verdict.get("columns") or {}).items():
            counts["tests"] += 1
            case = ET.SubElement(suite, "testcase", name=str(column),
                                 classname=f"featurelock.scan.{target}")
            status = entry.get("status")
            if status == "leak" and _leak_fails(verdict, fail_if):
                counts["failures"] += 1
                message = "leak: " + _numbers(column, entry)
                ET.SubElement(case, "failure", message=message, type="leak").text = message
            elif status == "leak":
                ET.SubElement(case, "system-out").text = (
                    "expected leak on a plaintext target: " + _numbers(column, entry))
            elif status == "within chance":
                ET.SubElement(case, "system-out").text = _numbers(column, entry)
            else:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=_skip_reason(column, entry))
        for key, n in counts.items():
            suite.set(key, str(n))
            totals[key] += n
        suite.set("errors", "0")
    for key, n in totals.items():
        root.set(key, str(n))
    root.set("errors", "0")
    if "seconds" in report:
        root.set("time", f"{float(report['seconds']):.1f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def sarif_log(report: Mapping[str, Any], *, artifact: str = "report.json") -> dict[str, Any]:
    """The SARIF 2.1.0 log of a scan report; `artifact` is the location results point to
    (the scan's report file: a leak has no line of source)."""
    fail_if = (report.get("config") or {}).get("fail_if", "protected-leak")
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for target, verdict in (report.get("verdicts") or {}).items():
        for column, entry in (verdict.get("columns") or {}).items():
            rules.setdefault(str(column), {
                "id": str(column), "name": str(column),
                "shortDescription": {"text": f"The {column} attack recovers information "
                                             "from the endpoint's responses"},
                "defaultConfiguration": {"level": "error"}})
            if entry.get("status") != "leak" or not _leak_fails(verdict, fail_if):
                continue
            results.append({
                "ruleId": str(column),
                "level": "error",
                "message": {"text": f"{target} ({verdict.get('scheme')}) leaks: "
                                    + _numbers(column, entry)},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": artifact}},
                    "logicalLocations": [{"name": str(target), "kind": "module"}]}],
                "partialFingerprints": {"featurelockTarget/v1": f"{target}/{column}"}})
    ordered = list(rules)
    for r in results:
        r["ruleIndex"] = ordered.index(r["ruleId"])
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": TOOL, "rules": list(rules.values())}},
        "results": results}]}


def write_junit(report: Mapping[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(report), encoding="utf-8")
    return path


def write_sarif(report: Mapping[str, Any], path: Path, *, artifact: str = "report.json") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sarif_log(report, artifact=artifact), indent=1) + "\n",
                    encoding="utf-8")
    return path
