"""serve_config/prometheus.yml without a server: every engine's job stores featurelock's series
under the TorchServe names, the rendered test copy keeps the shipped rules, and promtool (when
installed, with the Debian package) accepts the config and the recording rules."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from featurelock.handlers.prometheus_config import (JOBS, PROMETHEUS_YML, RECORDING_RULES_YML,
                                                    recording_rule_names, render_config)
from featurelock.middleware.metrics import torchserve_gauges, torchserve_series


def _job(doc: dict, name: str) -> dict:
    return next(job for job in doc["scrape_configs"] if job["job_name"] == name)


def _relabel(rules: list[dict], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabelling for the actions the shipped config uses (None: dropped).
    Prometheus anchors every regex (^(?:...)$): re.fullmatch."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        regex = re.compile(rule.get("regex", "(.*)"))
        if action == "labeldrop":
            labels = {k: v for k, v in labels.items() if not regex.fullmatch(k)}
            continue
        value = rule.get("separator", ";").join(labels.get(s, "")
                                                for s in rule.get("source_labels", []))
        match = regex.fullmatch(value)
        if action == "keep":
            if not match:
                return None
        elif action == "replace":
            if match:
                labels[rule["target_label"]] = match.expand(
                    rule.get("replacement", "$1").replace("$", "\\"))
        else:
            raise AssertionError(f"action {action} not modelled here")
    return labels


def _ray_name(name: str, kind: str) -> str:
    """The name Ray's exporter gives a featurelock metric: `ray_` prefix, `_total` appended
    to counters whose name does not already end in it (as observed from Ray 2.60's agent)."""
    counter = kind == "counter" and not name.endswith("_total")
    return f"ray_{name}_total" if counter else f"ray_{name}"


def test_ray_series_are_stored_under_the_torchserve_names():
    rules = _job(yaml.safe_load(PROMETHEUS_YML.read_text()), "featurelock-ray")[
        "metric_relabel_configs"]
    series = [(n, "counter") for n, _, _ in torchserve_series()]
    series += [(n, "gauge") for n, _, _ in torchserve_gauges()]
    assert {n for n, _ in series} >= {"featurelock_requests_total",
                                      "featurelock_stage_duration_seconds_bucket"}
    for name, kind in series:
        labels = {"__name__": _ray_name(name, kind), "model": "m", "WorkerId": "w",
                  "otel_scope_name": "ray._private.telemetry.open_telemetry_metric_recorder"}
        out = _relabel(rules, labels)
        assert out == {"__name__": name, "model": "m", "WorkerId": "w"}, name
    for ray_own in ("ray_serve_num_http_requests_total", "ray_node_cpu_utilization",
                    "featurelock_requests_total"):  # not from Ray's exporter: not ours either
        assert _relabel(rules, {"__name__": ray_own}) is None


def test_ray_job_reads_rays_discovery_file_under_its_own_job_name():
    job = _job(yaml.safe_load(PROMETHEUS_YML.read_text()), "featurelock-ray")
    assert job["file_sd_configs"][0]["files"] == ["/tmp/ray/prom_metrics_service_discovery.json"]
    # Ray's file labels its targets job="ray"; the target relabelling puts ours back.
    assert _relabel(job["relabel_configs"], {"job": "ray"}) == {"job": "featurelock-ray"}


def test_render_keeps_rules_and_only_the_named_jobs(tmp_path):
    sd = tmp_path / "sd.json"
    doc = render_config(static={"featurelock-kserve": ["127.0.0.1:1234"]},
                        file_sd={"featurelock-ray": [sd]}, interval="2s")
    assert [j["job_name"] for j in doc["scrape_configs"]] == ["featurelock-ray",
                                                             "featurelock-kserve"]
    shipped = yaml.safe_load(PROMETHEUS_YML.read_text())
    ray = _job(doc, "featurelock-ray")
    assert ray["file_sd_configs"] == [{"files": [str(sd.resolve())], "refresh_interval": "2s"}]
    for key in ("metric_relabel_configs", "relabel_configs"):
        assert ray[key] == _job(shipped, "featurelock-ray")[key]
    assert _job(doc, "featurelock-kserve")["static_configs"] == [{"targets": ["127.0.0.1:1234"]}]
    assert doc["global"] == {"scrape_interval": "2s", "evaluation_interval": "2s"}
    assert doc["rule_files"] == [str(RECORDING_RULES_YML.resolve())]
    # The fallback: static targets (e.g. from ray.nodes()) in place of the discovery file.
    static = render_config(static={"featurelock-ray": ["127.0.0.1:1", "127.0.0.1:2"]})
    assert "file_sd_configs" not in _job(static, "featurelock-ray")
    assert set(JOBS) == {j["job_name"] for j in shipped["scrape_configs"]}


def test_render_refuses_unknown_or_doubly_named_jobs():
    with pytest.raises(ValueError, match="static: no job 'ray'"):
        render_config(static={"ray": ["127.0.0.1:1"]})
    with pytest.raises(ValueError, match="both name featurelock-ray"):
        render_config(static={"featurelock-ray": []}, file_sd={"featurelock-ray": []})
    with pytest.raises(ValueError, match="at least one job"):
        render_config()


def test_recording_rule_names():
    names = recording_rule_names()
    assert "featurelock:encrypt_seconds:p50_1m" in names and len(names) == len(set(names)) > 5


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed")
def test_promtool_accepts_config_and_rules(tmp_path):
    # `check config` also checks the rule files it names; the discovery file may be absent.
    for args in (["check", "config", str(PROMETHEUS_YML)],
                 ["check", "rules", str(RECORDING_RULES_YML)]):
        done = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed")
def test_reload_failure_rule_counts_a_counter_born_above_zero():
    """promtool's rule unit tests (tests/metrics/recording_rules_test.yml): a worker's failure
    counter that first appears at 2 counts 2, as one born at 0 counts its increase."""
    done = subprocess.run(["promtool", "test", "rules", "recording_rules_test.yml"],
                          cwd=Path(__file__).parent, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
