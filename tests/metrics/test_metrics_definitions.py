"""featurelock.middleware.metrics and the TorchServe bridge, without a server."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import yaml

pytest.importorskip("prometheus_client")
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from featurelock.middleware import metrics as fm  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _samples(registry: CollectorRegistry) -> dict:
    out = {}
    for family in registry.collect():
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_buckets_reach_down_to_a_microsecond_and_up_to_ten_seconds():
    assert fm.BUCKETS[0] == 1e-6 and fm.BUCKETS[-1] == 10.0
    assert list(fm.BUCKETS) == sorted(set(fm.BUCKETS))
    # at least three buckets per decade between 1 us and 1 ms: microsecond encryption resolves
    assert sum(1e-6 <= b < 1e-3 for b in fm.BUCKETS) >= 9


def test_prometheus_metrics_use_the_given_registry_and_only_low_cardinality_labels():
    registry = CollectorRegistry()
    rec = fm.PrometheusMetrics(registry=registry).recorder("reid", "aes-256-gcm")
    rec.observe("encrypt", 12e-6)
    rec.count("ok")
    rec.add_bytes(1077)
    text = generate_latest(registry).decode()
    assert 'featurelock_stage_duration_seconds_bucket{le="2.5e-05",model="reid",scheme="aes-256-gcm",stage="encrypt"} 1.0' in text
    assert 'featurelock_stage_duration_seconds_bucket{le="1e-05",model="reid",scheme="aes-256-gcm",stage="encrypt"} 0.0' in text
    assert 'featurelock_requests_total{model="reid",outcome="ok",scheme="aes-256-gcm"} 1.0' in text
    assert 'featurelock_response_bytes_total{model="reid",scheme="aes-256-gcm"} 1077.0' in text
    labels = {name for d in fm.DEFINITIONS for name in d.labels}
    assert labels == {"model", "scheme", "stage", "outcome"}
    # a second, independent registry: definitions are not global state
    fm.PrometheusMetrics(registry=CollectorRegistry())


def test_unknown_stage_or_outcome_is_a_value_error():
    rec = fm.PrometheusMetrics(registry=CollectorRegistry()).recorder("m", "s")
    with pytest.raises(ValueError, match="stage must be one of"):
        rec.observe("tenant-acme", 1.0)
    with pytest.raises(ValueError, match="outcome must be one of"):
        rec.count("weird")
    state = fm.HistogramState("m", "s")
    with pytest.raises(ValueError, match="stage must be one of"):
        state.observe("request-1234", 1.0)
    with pytest.raises(ValueError, match="outcome must be one of"):
        state.count("weird")


def test_histogram_state_drains_exactly_the_series_prometheus_client_exposes():
    rng = random.Random(3)
    registry = CollectorRegistry()
    rec = fm.PrometheusMetrics(registry=registry).recorder("m", "s")
    state = fm.HistogramState("m", "s")
    totals: dict = {}

    def drain():
        for name, labels, inc in state.drain():
            key = (name, labels)
            totals[key] = totals.get(key, 0) + inc

    for i in range(500):
        stage = rng.choice(fm.STAGES)
        value = 10 ** rng.uniform(-7, 1.5)  # below the first and above the last bucket too
        value = rng.choice([value, 2.5e-5])  # and exactly on a bucket bound
        rec.observe(stage, value)
        state.observe(stage, value)
        outcome = rng.choice(fm.OUTCOMES)
        rec.count(outcome)
        state.count(outcome)
        rec.add_bytes(100)
        state.add_bytes(100)
        if i % 97 == 0:
            drain()
    drain()
    assert state.drain() == []  # nothing new: no lines
    expected = _samples(registry)
    got = {}
    for (name, labels), value in totals.items():
        keys = ["model", "scheme"]
        if name.startswith(fm.STAGE_SECONDS.name):
            keys.append("stage")
            if name.endswith("_bucket"):
                keys.append("le")
        elif name == fm.REQUESTS.name:
            keys.append("outcome")
        got[(name, tuple(sorted(zip(keys, labels))))] = value
    for key, value in expected.items():
        assert got.get(key, 0) == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert set(got) <= set(expected)


def test_every_bucket_is_published_once_so_quantiles_interpolate_correctly():
    state = fm.HistogramState("m", "s")
    state.observe("encrypt", 2e-5)
    first = [labels[3] for name, labels, _ in state.drain() if name.endswith("_bucket")]
    assert first == [fm.le_label(b) for b in (*fm.BUCKETS, float("inf"))]
    state.observe("encrypt", 2e-5)
    again = [labels[3] for name, labels, inc in state.drain() if name.endswith("_bucket")]
    assert again[0] == "2.5e-05" and "1e-05" not in again


def test_serve_config_metrics_yaml_is_in_step_with_the_definitions():
    import ts

    shipped = yaml.safe_load((REPO / "serve_config" / "metrics.yaml").read_text())
    base = yaml.safe_load((Path(ts.__file__).parent / "configs" / "metrics.yaml").read_text())
    assert shipped == fm.torchserve_metrics_yaml(base)
    # TorchServe's own metrics stay declared
    assert shipped["ts_metrics"] == base["ts_metrics"]


# -- the TorchServe bridge with a fake metrics cache ---------------------------------------------
class _FakeMetric:
    def __init__(self, name, dims, lines):
        self.metric_name, self.dimension_names, self._lines = name, dims, lines

    def add_or_update(self, value, dimension_values, request_id=""):
        assert len(dimension_values) == len(self.dimension_names)
        self._lines.append((self.metric_name, tuple(dimension_values), value))


class _FakeCache:
    def __init__(self, series):
        self.lines = []
        self.metrics = {name: _FakeMetric(name, list(dims), self.lines) for name, dims, _ in series}

    def get_metric(self, name, metric_type):
        return self.metrics[name]


def test_bridge_publishes_increments_and_nothing_when_idle():
    pytest.importorskip("ts")
    from featurelock.handlers.metrics_bridge import TorchServeMetrics

    cache = _FakeCache(fm.torchserve_series() + fm.torchserve_gauges())
    bridge = TorchServeMetrics(cache, "reid", "aes-256-gcm", interval=60)
    bridge.observe("encrypt", 3e-5)
    bridge.count("ok")
    bridge.add_bytes(1077)
    n = bridge.publish()
    assert n == len(cache.lines) and n == 23 + 2 + 2
    assert ("featurelock_requests_total", ("reid", "aes-256-gcm", "ok"), 1) in cache.lines
    assert bridge.publish() == 0
    bridge.close()


def test_bridge_is_off_with_one_warning_when_metrics_are_not_declared(caplog):
    pytest.importorskip("ts")
    from featurelock.handlers.metrics_bridge import handler_metrics
    from featurelock.middleware.metrics import NullRecorder

    class Ctx:
        metrics = _FakeCache([])

    Ctx.metrics.get_metric = lambda name, t: (_ for _ in ()).throw(KeyError(name))
    with caplog.at_level(logging.WARNING):
        rec = handler_metrics(Ctx(), "reid", "aes-256-gcm")
    assert isinstance(rec, NullRecorder)
    assert "metrics_config" in caplog.text


def test_outcomes_of_serving_errors():
    pytest.importorskip("ts")
    from featurelock.handlers import errors as he
    from featurelock.handlers.metrics_bridge import outcome_of
    from featurelock.middleware.errors import EncryptionError

    assert outcome_of(None) == "ok"
    assert outcome_of(he.MissingCredentials()) == "unauthenticated"
    assert outcome_of(he.Forbidden()) == "unauthenticated"
    assert outcome_of(he.BadInput()) == "bad_input"
    assert outcome_of(he.PayloadTooLarge()) == "bad_input"
    assert outcome_of(EncryptionError("x")) == "encrypt_failed"
    assert outcome_of(RuntimeError("x")) == "internal_error"


def test_registry_generation_gauge_and_reload_failures():
    registry = CollectorRegistry()
    rec = fm.PrometheusMetrics(registry=registry).recorder("reid", "aes-256-gcm")
    rec.registry_generation(7)
    rec.registry_reload_failed()
    assert registry.get_sample_value(fm.REGISTRY_GENERATION.name, {"model": "reid"}) == 7
    assert registry.get_sample_value(fm.REGISTRY_RELOAD_FAILURES.name, {"model": "reid"}) == 1
    state = fm.HistogramState("reid", "aes-256-gcm")
    assert state.generation_line() is None
    state.registry_generation(7)
    state.registry_reload_failed()
    assert state.drain() == [(fm.REGISTRY_GENERATION.name, ("reid",), 7),
                             (fm.REGISTRY_RELOAD_FAILURES.name, ("reid",), 1)]
    state.registry_generation(7)  # unchanged: nothing to publish
    assert state.drain() == [] and state.generation_line() == (fm.REGISTRY_GENERATION.name,
                                                               ("reid",), 7)


def test_bridge_republishes_an_unchanged_generation_on_a_heartbeat():
    pytest.importorskip("ts")
    from featurelock.handlers.metrics_bridge import GAUGE_HEARTBEAT, TorchServeMetrics

    cache = _FakeCache(fm.torchserve_series() + fm.torchserve_gauges())
    bridge = TorchServeMetrics(cache, "reid", "aes-256-gcm", interval=60)
    assert bridge.publish(now=0.0) == 0  # no generation yet: no gauge
    bridge.registry_generation(3)
    assert bridge.publish(now=1.0) == 1
    assert bridge.publish(now=1.0 + GAUGE_HEARTBEAT / 2) == 0
    assert bridge.publish(now=1.0 + GAUGE_HEARTBEAT) == 1
    assert cache.lines == [(fm.REGISTRY_GENERATION.name, ("reid",), 3)] * 2
    bridge.close()
