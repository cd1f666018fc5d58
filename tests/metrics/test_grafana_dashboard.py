"""The shipped Grafana dashboard and provisioning files (no Grafana here: the queries run
against a real Prometheus in test_prometheus_e2e.py)."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import yaml

from featurelock.middleware.metrics import DEFINITIONS
from featurelock.serve_config.grafana.dashboard import DASHBOARD_JSON, build, panel_queries

GRAFANA = files("featurelock.serve_config.grafana")


def test_shipped_json_is_the_generated_one():
    shipped = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    assert shipped == build(), "run: python -m featurelock.serve_config.grafana.dashboard"


def test_panels_use_only_defined_variables_and_metrics():
    doc = build()
    names = {v["name"] for v in doc["templating"]["list"]} | {"__rate_interval"}
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 9
    for expr in exprs:
        assert set(re.findall(r"\$\{?(\w+)", expr)) <= names, expr
        assert 'job=~"$job"' in expr and 'model=~"$model"' in expr, expr
        for metric in re.findall(r"\b(featurelock_\w+)", expr):
            assert any(metric == d.name or metric.startswith(d.name + "_")
                       for d in DEFINITIONS), metric
    assert {d.name.split("_total")[0] for d in DEFINITIONS} <= {
        m.split("_total")[0].removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        for e in exprs for m in re.findall(r"\b(featurelock_\w+)", e)}  # every metric shown
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    subbed = panel_queries(doc, {"job": "j", "model": ".+", "__rate_interval": "1m"})
    assert len(subbed) == len(exprs) and not any("$" in q for _, _, q in subbed)


def test_provisioning_files_load():
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/featurelock.yaml").read_text())
    (source,) = ds["datasources"]
    assert ds["apiVersion"] == 1 and source["type"] == "prometheus"
    dash = yaml.safe_load((GRAFANA / "provisioning/dashboards/featurelock.yaml").read_text())
    (provider,) = dash["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
