"""The featurelock Grafana dashboard: every panel's PromQL in this one module.

    python -m featurelock.serve_config.grafana.dashboard     # rewrites featurelock.json

Panels read the raw series of middleware/metrics.py with the recording rules' expressions
(serve_config/recording_rules.yml), but keep the `job` label the rules sum away, so each
engine's scrape job (featurelock-torchserve, featurelock-ray, featurelock-kserve, as
serve_config/prometheus.yml names them) is its own line, and the `$job` variable picks engines.
Template variables: `$datasource`, `$job`, `$model`; Grafana fills `$__rate_interval`.

`panel_queries(doc, variables)` walks a dashboard document and returns every panel target's
expression with the variables substituted, as Prometheus' HTTP API takes it: the e2e test
(tests/metrics/test_prometheus_e2e.py) runs each against a real Prometheus.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping

__all__ = ["DASHBOARD_JSON", "UID", "build", "panel_queries", "write"]

DASHBOARD_JSON = Path(str(files("featurelock.serve_config.grafana") / "featurelock.json"))
UID = "featurelock"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", model=~"$model"'  # every panel's selector
RATE = "[$__rate_interval]"
STAGE = "featurelock_stage_duration_seconds"
REQUESTS = "featurelock_requests_total"
GENERATION = "featurelock_key_registry_generation"
RELOAD_FAILURES = "featurelock_key_registry_reload_failures_total"


def _rate(series: str, matcher: str = "") -> str:
    """rate() of `series` under the panel selector, plus `matcher` (e.g. 'stage="encrypt"')."""
    return f"rate({series}{{{SEL}{', ' + matcher if matcher else ''}}}{RATE})"


ERRORS = _rate(REQUESTS, 'outcome!="ok"')
OKS = _rate(REQUESTS, 'outcome="ok"')
PROTECT_TIME = _rate(STAGE + "_sum", 'stage=~"encrypt|craft"')
WORKER_TIME = _rate(STAGE + "_sum", 'stage="handler"')


def _quantile(q: float) -> str:
    return (f"1e6 * histogram_quantile({q}, sum by (le, job, model, stage) "
            f"({_rate(STAGE + '_bucket')}))")


# (row, title, unit, [(expr, legend)], description): the dashboard, top to bottom.
PANELS: list[tuple[str, str, str, list[tuple[str, str]], str]] = [
    ("Requests", "Requests per second by outcome", "reqps",
     [(f"sum by (job, model, outcome) ({_rate(REQUESTS)})",
       "{{job}} {{model}} {{outcome}}")],
     "featurelock_requests_total: ok, bad_input, unauthenticated, encrypt_failed, "
     "internal_error."),
    ("Requests", "Error share (outcome != ok)", "percentunit",
     # `or 0 * all`: a model with no error yet shows 0, not a gap.
     [(f'(sum by (job, model) ({ERRORS}) '
       f"or 0 * sum by (job, model) ({_rate(REQUESTS)})) "
       f"/ sum by (job, model) ({_rate(REQUESTS)})", "{{job}} {{model}}")],
     "Share of answered requests that were not ok."),
    ("Overhead", "Encrypt / craft share of worker time", "percentunit",
     [(f'sum by (job, model, stage) ({PROTECT_TIME}) '
       f"/ ignoring (stage) group_left "
       f'sum by (job, model) ({WORKER_TIME})',
       "{{job}} {{model}} {{stage}}")],
     "Time in the encrypt (and, for crafter models, craft) stage over the whole worker-side "
     "time (stage=handler): featurelock:encrypt_share:ratio_1m per engine."),
    ("Overhead", "Mean µs per stage", "µs",
     [(f"1e6 * sum by (job, model, stage) ({_rate(STAGE + '_sum')}) "
       f"/ sum by (job, model, stage) ({_rate(STAGE + '_count')})",
       "{{job}} {{model}} {{stage}}")],
     "decode, encrypt, serialise: per request; preprocess, inference, craft, handler: "
     "per batch."),
    ("Overhead", "p50 µs per stage", "µs",
     [(_quantile(0.5), "{{job}} {{model}} {{stage}}")],
     "Median from featurelock's buckets (1 µs .. 10 s, 1-2.5-5 per decade)."),
    ("Overhead", "p99 µs per stage", "µs",
     [(_quantile(0.99), "{{job}} {{model}} {{stage}}")],
     "99th percentile; interpolated inside a bucket, so read it to the bucket's precision."),
    ("Responses", "Bytes per ok response", "bytes",
     [(f"sum by (job, model) ({_rate('featurelock_response_bytes_total')}) "
       f'/ sum by (job, model) ({OKS})',
       "{{job}} {{model}}")],
     "Envelope bytes (or JSON floats for plaintext) per successful response."),
    ("Key registry", "Key registry generation (oldest served)", "none",
     [(f"min by (job, model) ({GENERATION}{{{SEL}}})", "{{job}} {{model}}")],
     "Every host has caught up with a `keys`/`tenants` change once this reaches the "
     "generation the CLI printed."),
    ("Key registry", "Registry reload failures (5 min)", "none",
     # The recording rule's expression (a counter first seen above 0 counts whole), per job;
     # `or 0 * generation`: a model that never failed shows 0 (the counter appears at its
     # first failure).
     [(f"sum by (job, model) (({RELOAD_FAILURES}{{{SEL}}} unless {RELOAD_FAILURES}{{{SEL}}} "
       f"offset 5m) * 1 or increase({RELOAD_FAILURES}{{{SEL}}}[5m])) "
       f"or 0 * min by (job, model) ({GENERATION}{{{SEL}}})", "{{job}} {{model}}")],
     "Registry changes a worker could not load; it keeps serving its last good state."),
]


def _variables() -> list[dict[str, Any]]:
    def query_var(name: str, query: str) -> dict[str, Any]:
        return {"name": name, "label": name, "type": "query", "datasource": DATASOURCE,
                "query": {"query": query, "refId": f"{name}-values"}, "definition": query,
                "refresh": 2, "multi": True, "includeAll": True, "allValue": ".+",
                "current": {"text": "All", "value": "$__all"}, "sort": 1}

    return [{"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0},
            query_var("job", f"label_values({REQUESTS}, job)"),
            query_var("model", f'label_values({REQUESTS}{{job=~"$job"}}, model)')]


def build() -> dict[str, Any]:
    """The dashboard document."""
    panels: list[dict[str, Any]] = []
    row, y, x, pid = None, 0, 0, 1
    for row_title, title, unit, targets, description in PANELS:
        if row_title != row:
            if x:
                y, x = y + 8, 0
            panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
            row, y, pid = row_title, y + 1, pid + 1
        panels.append({
            "id": pid, "type": "timeseries", "title": title, "description": description,
            "datasource": DATASOURCE, "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi"}},
            "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
                         "legendFormat": legend, "range": True}
                        for i, (expr, legend) in enumerate(targets)]})
        pid += 1
        x = 12 - x
        if not x:
            y += 8
    return {"uid": UID, "title": "featurelock", "tags": ["featurelock"], "editable": True,
            "schemaVersion": 39, "version": 1, "refresh": "30s", "timezone": "",
            "time": {"from": "now-1h", "to": "now"},
            "description": "featurelock: overhead, outcomes, bytes and key registry per engine "
                           "(generated by featurelock.serve_config.grafana.dashboard)",
            "templating": {"list": _variables()}, "annotations": {"list": []},
            "panels": panels}


def panel_queries(doc: Mapping[str, Any], variables: Mapping[str, str]
                  ) -> list[tuple[str, str, str]]:
    """(panel title, refId, expression) of every panel target in `doc`, rows' nested panels
    included, each `$name`/`${name}` replaced by `variables[name]` (KeyError if missing)."""
    def sub(expr: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: variables[m.group(1)], expr)

    out = []
    stack = list(doc.get("panels") or [])
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels") or [])
        for target in panel.get("targets") or []:
            out.append((panel["title"], target["refId"], sub(target["expr"])))
    return out


def write(path: Path = DASHBOARD_JSON) -> Path:
    path.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write())
