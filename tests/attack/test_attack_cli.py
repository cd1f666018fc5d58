"""`featurelock scan`: arguments, reports and the CI-gate exit status."""

import json
import xml.etree.ElementTree as ET

import pytest

from featurelock.attack_harness.scan import CONTROL
from featurelock.middleware.cli import main

FAST = ["--model", "pixel", "--budget", "160", "--victim-ids", "12", "--representations",
        "float", "--attacks", "reconstruction", "--no-progress"]


def test_plaintext_baseline_passes_by_default_and_fails_with_any_leak(tmp_path, capsys):
    assert main(["scan", "--local", "plaintext", "--report", str(tmp_path / "a"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "LEAKS" in out and "report:" in out
    assert main(["scan", "--local", "plaintext", "--fail-if", "any-leak",
                 "--report", str(tmp_path / "b"), *FAST]) == 1
    doc = json.loads((tmp_path / "b" / "report.json").read_text())
    assert doc["exit_status"] == 1 and (tmp_path / "b" / "report.html").is_file()


def test_aes_target_passes(tmp_path, capsys):
    junit, sarif = tmp_path / "ci" / "scan.xml", tmp_path / "ci" / "scan.sarif"
    assert main(["scan", "--local", "aes-256-gcm", "--report", str(tmp_path), *FAST,
                 "--junit", str(junit), "--sarif", str(sarif)]) == 0
    assert "within chance" in capsys.readouterr().out
    # The CI files: a test case per target x column, none failed; no leak, no SARIF result.
    root = ET.fromstring(junit.read_text(encoding="utf-8"))
    cases = [c for s in root.iter("testsuite") for c in s.iter("testcase")]
    assert {s.get("name") for s in root.iter("testsuite")} == {"local-aes-256-gcm", CONTROL}
    assert cases and root.get("failures") == "0" and root.get("tests") == str(len(cases))
    log = json.loads(sarif.read_text(encoding="utf-8"))
    assert log["version"] == "2.1.0" and log["runs"][0]["results"] == []


@pytest.mark.parametrize("argv", [
    ["--report", "x"],                                          # no target
    ["--local", "plaintext", "--report", "x", "--budget", "0"],  # argparse: bad budget
    ["--local", "rot13", "--report", "x"],                       # unknown scheme
    ["--local", "plaintext", "--report", "x", "--representations", "pixels"],
    ["--endpoint", "ftp://nowhere/predictions/m", "--report", "x"],
    ["--local", "plaintext", "--report", "x", "--dataset", "imagenet"],
])
def test_usage_errors_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(["scan", *argv, "--model", "pixel", "--no-progress"]))
    assert exc.value.code == 2
    assert "featurelock scan" in capsys.readouterr().err


def test_unreachable_endpoint_exits_2(tmp_path, capsys):
    code = main(["scan", "--endpoint", "http://127.0.0.1:9/predictions/reid", "--report",
                 str(tmp_path), *FAST])
    assert code == 2 and "cannot reach" in capsys.readouterr().err
