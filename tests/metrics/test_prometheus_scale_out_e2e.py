"""Ray Serve and KServe scraped by a real Prometheus (Debian's `prometheus`) with the shipped
config's jobs and recording rules: featurelock's series are stored under TorchServe's names and
labels, and every recording rule returns a number for the model.

* Ray: a two-node LocalRayCluster (1 CPU each, two replicas) with its dashboard head, which
  writes the session's service-discovery file; Prometheus finds both nodes' metrics agents
  through that file (the `featurelock-ray` job's file_sd, rendered with this session's path)
  and the job's metric relabelling strips Ray's `ray_` prefix and the `_total` Ray appends.
* KServe: a KServeProcess, scraped as is (`featurelock-kserve`).

Both also check how histogram_quantile copes with the buckets each engine exports (Ray never
exports a bucket that is still zero) against the _sum/_count mean. Everything on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest
from fl_serving_helpers import (Traffic, dashboard_panels_without_data, dashboard_queries,
                                file_kek, finite_values, make_registry, pedestrian_pngs,
                                prometheus_binary)

from featurelock.middleware.metrics import BUCKETS, STAGES, le_label

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

RAY_MODEL, KSERVE_MODEL, SCHEME = "ray-aes", "ks-aes", "aes-256-gcm"
NODES = 2
DEADLINE_S = 60  # for the series and rules to appear, per engine


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import torch

    from featurelock.export.bundle import export_model
    from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model

    root = tmp_path_factory.mktemp("scale-out")
    torch.manual_seed(0)  # the default model, TorchScript only (the fastest export)
    export_model(load_model("reid-compact", pretrained=DEFAULT_WEIGHTS.is_file()),
                 root / "export", formats_=("torchscript",), batch_sizes=(1, 2))
    kek = file_kek(root)
    return {"root": root, "export": root / "export", "kek": kek, "images": pedestrian_pngs(4)}


def _registry(exported, name: str) -> tuple[Path, dict[str, str]]:
    reg = exported["root"] / name
    return reg, make_registry(reg, SCHEME, exported["kek"], tenants=("acme",))


def _break_registry(reg: Path, seconds: float = 2.0) -> None:
    """Replace the registry's tenants.json with bad JSON for `seconds` (the watchers poll every
    0.5 s, fail to load it, keep serving the last good state and count the failure), then put
    the original back. Renamed into place, as the registry's own writers do."""
    path, tmp = reg / "tenants.json", reg / ".tenants.json.tmp"
    original = path.read_bytes()
    for data in (b"{ not json", original):
        tmp.write_bytes(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        time.sleep(seconds)


def _wait_until_scraped(prom, model: str) -> None:
    """Until Prometheus holds the model's generation gauge: its targets are found and scraped
    (Prometheus applies discovery results after ~5 s), so later changes are seen as changes."""
    deadline = time.monotonic() + DEADLINE_S
    while not prom.query(f'featurelock_key_registry_generation{{model="{model}"}}'):
        assert time.monotonic() < deadline, (prom.targets(), prom.logs()[-2000:])
        time.sleep(0.5)


def _finite(prom, expr: str) -> list[float]:
    values = [float(r["value"][1]) for r in prom.query(expr)]
    return [v for v in values if v == v and abs(v) != float("inf")]


def _wait_for_rules(prom, model: str, traffic: Traffic) -> dict[str, list[float]]:
    """Every recording rule's finite values for `model`, polled until all have one (or the
    deadline, or the traffic ran out)."""
    from featurelock.handlers.prometheus_config import recording_rule_names

    names = recording_rule_names()
    values: dict[str, list[float]] = {}
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and len(values) < len(names):
        time.sleep(1)
        for name in names:
            if name not in values:
                found = _finite(prom, f'{name}{{model="{model}"}}')
                if found:
                    values[name] = found
    assert set(values) == set(names), (sorted(set(names) - set(values)), traffic.statuses,
                                       prom.logs()[-2000:])
    return values


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus 2.x's histogram_quantile over (upper bound, cumulative rate) pairs sorted by
    bound, +Inf last: linear inside the bucket, from 0 for the first one."""
    rank = q * buckets[-1][1]
    b = next(i for i, (_, c) in enumerate(buckets) if c >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    lo, below = (0.0, 0.0) if b == 0 else buckets[b - 1]
    hi, upto = buckets[b]
    return lo + (hi - lo) * (rank - below) / (upto - below)


def _check_quantiles(prom, model: str, engine: str) -> dict[str, dict[str, float]]:
    """Per stage, at one instant: p50 from the stored buckets (histogram_quantile), from the
    same buckets with every missing one filled in as zero (what prometheus-client and, once,
    TorchServe export), and the _sum/_count mean. Printed for the record; the two p50s must
    fall in the same bucket (a Ray p50 in the lowest exported bucket interpolates from 0, not
    from the bucket below, which Ray never exported)."""
    at, out = time.time(), {}
    bounds = [*BUCKETS, float("inf")]
    for stage in STAGES:
        sel = f'stage="{stage}",model="{model}"'
        buckets = f"sum by (le) (rate(featurelock_stage_duration_seconds_bucket{{{sel}}}[1m]))"
        p50 = prom.value(f"histogram_quantile(0.5, {buckets})", at)
        mean = prom.value(f"sum(rate(featurelock_stage_duration_seconds_sum{{{sel}}}[1m])) / "
                          f"sum(rate(featurelock_stage_duration_seconds_count{{{sel}}}[1m]))", at)
        stored = {r["metric"]["le"]: float(r["value"][1]) for r in prom.query(buckets, at)}
        if not stored.get("+Inf"):  # a stage this engine or scheme never times (serialise of
            print(f"{engine} {stage:10} no observations")  # a binary envelope, ...)
            continue
        full = [(b, stored.get(le_label(b), 0.0)) for b in bounds]
        p50_full = _quantile(0.5, full)
        hi = next(b for b, c in full if c >= 0.5 * full[-1][1])
        lo = max([0.0] + [b for b in bounds if b < hi])
        lowest = min(b for b in bounds if le_label(b) in stored)
        print(f"{engine} {stage:10} p50 {p50:.3e} s (stored buckets) {p50_full:.3e} s (missing "
              f"as zeros); mean {mean:.3e} s; p50 bucket ({lo:g}, {hi:g}], lowest exported "
              f"le={lowest:g}; {len(bounds) - len(stored)} of {len(bounds)} never exported")
        assert p50 is not None and mean is not None and mean > 0, stage
        assert lo <= p50_full <= hi and 0 < p50 <= hi, stage
        out[stage] = {"p50": p50, "p50_full": p50_full, "mean": mean}
    assert "encrypt" in out and "inference" in out
    return out


def _check_series(prom, model: str, job: str) -> None:
    """Our series under TorchServe's names, with model/scheme/stage/le/outcome labels."""
    sel = f'job="{job}",model="{model}",scheme="{SCHEME}"'
    encrypt = prom.query(f'featurelock_stage_duration_seconds_bucket{{{sel},stage="encrypt"}}')
    assert encrypt and all("le" in r["metric"] for r in encrypt)
    ok = prom.query(f'featurelock_requests_total{{{sel},outcome="ok"}}')
    assert ok and sum(float(r["value"][1]) for r in ok) > 0
    for name in ("featurelock_stage_duration_seconds_sum",
                 "featurelock_stage_duration_seconds_count", "featurelock_response_bytes_total"):
        assert prom.query(f"{name}{{{sel}}}"), name
    assert prom.query(f'featurelock_key_registry_generation{{job="{job}",model="{model}"}}')
    # Nothing stored under Ray's names, and no tenant anywhere.
    ray_names = "ray_.+|featurelock_.+_(bucket|sum|count)_total"
    assert not prom.query(f'{{job="{job}",__name__=~"{ray_names}"}}')
    assert not prom.query(f'{{job="{job}",__name__=~"featurelock_.+",tenant!=""}}')


def test_ray_cluster_scraped_through_rays_discovery_file(exported, tmp_path):
    from featurelock.handlers.client import EndpointClient
    from featurelock.handlers.prometheus_config import PrometheusProcess, render_config
    from featurelock.handlers.ray_local import LocalRayCluster
    from featurelock.handlers.ray_serve import RayModel, RayOptions

    pytest.importorskip("ray.serve")
    binary = prometheus_binary()
    reg, tokens = _registry(exported, "reg-ray")
    env = {"FEATURELOCK_KEK": exported["kek"], "FEATURELOCK_KEY_REGISTRY": str(reg)}
    model = RayModel.from_export(exported["export"], SCHEME, RAY_MODEL, backend="torchscript")
    with LocalRayCluster(nodes=NODES, cpus_per_node=1, env=env, dashboard=True) as cluster:
        import ray

        cluster.deploy(model, RayOptions(num_replicas=NODES, num_cpus=1, max_batch_size=2))
        ports = {f"127.0.0.1:{n['MetricsExportPort']}" for n in ray.nodes() if n["Alive"]}
        assert len(ports) == NODES
        deadline, listed = time.monotonic() + 20, set()
        while time.monotonic() < deadline and not ports <= listed:
            if cluster.discovery_file.is_file():
                listed = {t for group in json.loads(cluster.discovery_file.read_text())
                          for t in group["targets"]}
            time.sleep(0.5)
        assert ports <= listed, (ports, listed)

        config = render_config(file_sd={"featurelock-ray": [cluster.discovery_file]})
        client = EndpointClient(cluster.url, RAY_MODEL, "acme", tokens["acme"], None)
        with PrometheusProcess(config, tmp_path / "prometheus", binary=binary) as prom, \
                Traffic([client], exported["images"], threads=2, limit=2000) as traffic:
            _wait_until_scraped(prom, RAY_MODEL)
            _break_registry(reg)
            values = _wait_for_rules(prom, RAY_MODEL, traffic)
            _check_series(prom, RAY_MODEL, "featurelock-ray")
            _check_quantiles(prom, RAY_MODEL, "ray")
            # Both nodes' agents were found through the file and scraped under our job name.
            node_targets = [t for t in prom.targets() if t["labels"]["instance"] in ports]
            assert len(node_targets) == NODES
            assert all(t["labels"]["job"] == "featurelock-ray" for t in node_targets)
            instances = {r["metric"]["instance"] for r in prom.query(
                f'featurelock_key_registry_generation{{model="{RAY_MODEL}"}}')}
            assert instances == ports  # every replica's gauge, one replica per node
            failures = _finite(prom, "sum(featurelock_key_registry_reload_failures_total"
                                     f'{{model="{RAY_MODEL}"}})')
            # Ray's counter is born above 0; the rule counts a series new in 5 m whole.
            increase = _reload_failures_increase(prom, RAY_MODEL)
            labels = prom.query(f'featurelock_requests_total{{model="{RAY_MODEL}"}}')[0]["metric"]
            _check_dashboard(prom, "featurelock-ray")
    assert traffic.statuses.get(200, 0) > 0 and set(traffic.statuses) == {200}, traffic.statuses
    assert failures and failures[0] >= 1  # the broken registry, counted, never served
    assert increase >= 1
    assert not any(k.startswith("otel_scope") for k in labels)
    assert {"WorkerId", "NodeAddress", "SessionName"} <= set(labels)
    _check_rule_values(values)
    print(f"ray: {traffic.sent} requests; rules: "
          + ", ".join(f"{k.removeprefix('featurelock:')}={v}" for k, v in values.items())
          + f"; reload failures {failures[0]:g}")


def test_kserve_scraped_as_is(exported, tmp_path):
    if importlib.util.find_spec("kserve") is None:
        pytest.skip("kserve is not installed (the `kserve` extra)")
    from featurelock.handlers.client import EndpointClient
    from featurelock.handlers.kserve_protocol import KSERVE_V1
    from featurelock.handlers.kserve_server import KServeProcess
    from featurelock.handlers.packaging import resolve_model, serving_config
    from featurelock.handlers.prometheus_config import PrometheusProcess, render_config

    binary = prometheus_binary()
    reg, tokens = _registry(exported, "reg-kserve")
    source = resolve_model(exported["export"])
    models = [(serving_config(source, SCHEME, KSERVE_MODEL, "1"), source.model_file)]
    env = {"FEATURELOCK_KEK": exported["kek"], "FEATURELOCK_KEY_REGISTRY": str(reg)}
    with KServeProcess(models, env=env, workdir=tmp_path / "server") as ks:
        config = render_config(static={"featurelock-kserve": [f"127.0.0.1:{ks.port}"]})
        client = EndpointClient(ks.url, KSERVE_MODEL, "acme", tokens["acme"], None,
                                protocol=KSERVE_V1)
        with PrometheusProcess(config, tmp_path / "prometheus", binary=binary) as prom, \
                Traffic([client], exported["images"], threads=2, limit=2000) as traffic:
            _wait_until_scraped(prom, KSERVE_MODEL)
            _break_registry(reg)
            values = _wait_for_rules(prom, KSERVE_MODEL, traffic)
            _check_series(prom, KSERVE_MODEL, "featurelock-kserve")
            quantiles = _check_quantiles(prom, KSERVE_MODEL, "kserve")
            # prometheus-client creates the failure counter at 0, so increase() sees the
            # broken registry once it is scraped.
            increase = _reload_failures_increase(prom, KSERVE_MODEL)
            _check_dashboard(prom, "featurelock-kserve")
    assert traffic.statuses.get(200, 0) > 0 and set(traffic.statuses) == {200}, traffic.statuses
    # prometheus-client exports every bucket from the start: nothing to fill in.
    for stage, q in quantiles.items():
        assert q["p50"] == pytest.approx(q["p50_full"], rel=1e-6), stage
    _check_rule_values(values)
    assert increase > 0
    print(f"kserve: {traffic.sent} requests; rules: "
          + ", ".join(f"{k.removeprefix('featurelock:')}={v}" for k, v in values.items())
          + f"; reload failures increase_5m later {increase:g}")


def _check_dashboard(prom, job: str) -> None:
    """Every panel of the shipped Grafana dashboard returns data for this engine's job, and
    its reload-failures panel shows the broken registry."""
    assert not dashboard_panels_without_data(prom, job), job
    (expr,) = [q for title, _, q in dashboard_queries(job) if "reload failures" in title]
    assert max(finite_values(prom.query(expr))) >= 1, job


def _reload_failures_increase(prom, model: str, timeout: float = 15.0) -> float:
    """featurelock:key_registry_reload_failures:increase_5m for `model` once it is above 0
    (rules are evaluated on their own period), or 0.0 after `timeout` seconds."""
    rule = f'featurelock:key_registry_reload_failures:increase_5m{{model="{model}"}}'
    deadline, increase = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline and not increase:
        increase = prom.value(rule) or 0.0
        time.sleep(0.5)
    return increase


def _check_rule_values(values: dict[str, list[float]]) -> None:
    p50 = values["featurelock:encrypt_seconds:p50_1m"][0]
    p95 = values["featurelock:encrypt_seconds:p95_1m"][0]
    assert 0 < p50 <= p95 < 0.05  # encryption well under 50 ms, resolved by our buckets
    assert 0 < values["featurelock:encrypt_share:ratio_1m"][0] < 1
    assert max(values["featurelock:requests:rate_1m"]) > 0
    assert values["featurelock:response_bytes:per_request_1m"][0] > 0
    assert values["featurelock:key_registry_generation:min"][0] >= 1

