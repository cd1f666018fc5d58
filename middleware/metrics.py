"""featurelock's metrics: every definition in one module, for every host.

    featurelock_stage_duration_seconds{model, scheme, stage}     histogram, BUCKETS below
        stage: decode      per request: parse the body and decode the image
               preprocess  per batch: stack, resize/normalise into the model's input tensor
               inference   per batch: the forward pass
               craft       per batch: the crafting network of a `scheme: crafter` model
               encrypt     per request: FeatureProtector.protect (cipher + binary envelope)
               serialise   per request: the response body (JSON envelope / JSON floats; the
                           binary envelope is already bytes)
               handler     per batch: the whole worker-side time, first stage to last
    featurelock_requests_total{model, scheme, outcome}            counter
        outcome: ok | bad_input | unauthenticated | encrypt_failed | internal_error
    featurelock_response_bytes_total{model, scheme}               counter, bytes of 200 bodies
    featurelock_key_registry_generation{model}                    gauge, the key registry
                           generation this worker serves (`featurelock.middleware.registry_watch`)
    featurelock_key_registry_reload_failures_total{model}         counter, registry changes that
                           could not be loaded (the worker kept serving its last good state)

Labels stay low-cardinality: model name, scheme, stage, outcome. Never tenants, tokens,
request ids or key ids. Encrypt share of worker time = rate(encrypt _sum) / rate(handler _sum).

Two ways to record the same definitions:

* `PrometheusMetrics(registry=...)`: prometheus-client objects, for hosts other than TorchServe
  (KServe's model server, a plain ASGI app); tests pass a fresh `CollectorRegistry`.
* `featurelock.handlers.metrics_bridge`: inside TorchServe. Its frontend builds every histogram
  with Prometheus' default buckets (5 ms .. 10 s: useless for microsecond encryption), so the
  bridge aggregates locally into `HistogramState` below and publishes the classic histogram
  series (`_bucket{le}`, `_sum`, `_count`) as TorchServe counters: the same series names and
  PromQL as prometheus-client's histogram, with our buckets.

Imports nothing beyond the standard library; prometheus-client is imported by
`PrometheusMetrics` only.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BUCKETS", "STAGES", "OUTCOMES", "STAGE_SECONDS", "REQUESTS", "RESPONSE_BYTES",
    "REGISTRY_GENERATION", "REGISTRY_RELOAD_FAILURES", "MetricDef", "DEFINITIONS", "Recorder",
    "NullRecorder", "PrometheusMetrics", "HistogramState",
    "le_label", "torchserve_series", "torchserve_gauges", "torchserve_metrics_yaml",
]

# 1-2.5-5 per decade from 1 us to 10 s: microsecond encryption and 100 ms inference both land
# in buckets fine enough for histogram_quantile.
BUCKETS: tuple[float, ...] = tuple(
    round(m * 10.0 ** e, 12) for e in range(-6, 1) for m in (1.0, 2.5, 5.0)) + (10.0,)

STAGES = ("decode", "preprocess", "inference", "craft", "encrypt", "serialise", "handler")
OUTCOMES = ("ok", "bad_input", "unauthenticated", "encrypt_failed", "internal_error")


@dataclass(frozen=True)
class MetricDef:
    name: str
    kind: str  # "histogram" | "counter" | "gauge"
    labels: tuple[str, ...]
    unit: str
    help: str


STAGE_SECONDS = MetricDef(
    "featurelock_stage_duration_seconds", "histogram", ("model", "scheme", "stage"), "seconds",
    "Worker time per stage (decode, encrypt, serialise: per request; preprocess, inference, "
    "handler: per batch)")
REQUESTS = MetricDef(
    "featurelock_requests_total", "counter", ("model", "scheme", "outcome"), "count",
    "Requests answered by the featurelock handler, by outcome")
RESPONSE_BYTES = MetricDef(
    "featurelock_response_bytes_total", "counter", ("model", "scheme"), "bytes",
    "Bytes of successful response bodies (envelopes, or JSON floats for plaintext)")
REGISTRY_GENERATION = MetricDef(
    "featurelock_key_registry_generation", "gauge", ("model",), "count",
    "Key registry generation this worker serves (every registry write bumps it)")
REGISTRY_RELOAD_FAILURES = MetricDef(
    "featurelock_key_registry_reload_failures_total", "counter", ("model",), "count",
    "Key registry changes that could not be loaded; the last good state is still served")
DEFINITIONS = (STAGE_SECONDS, REQUESTS, RESPONSE_BYTES, REGISTRY_GENERATION,
               REGISTRY_RELOAD_FAILURES)


def le_label(bound: float) -> str:
    """The `le` label value of a bucket bound, formatted as prometheus-client does."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _check(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


class Recorder:
    """The interface a handler records through, bound to one (model, scheme)."""

    def observe(self, stage: str, seconds: float) -> None:
        raise NotImplementedError

    def count(self, outcome: str, n: int = 1) -> None:
        raise NotImplementedError

    def add_bytes(self, n: int) -> None:
        raise NotImplementedError

    def registry_generation(self, generation: int) -> None:
        """The key registry generation now served."""
        raise NotImplementedError

    def registry_reload_failed(self) -> None:
        raise NotImplementedError


class NullRecorder(Recorder):
    """Records nothing (metrics disabled)."""

    def observe(self, stage: str, seconds: float) -> None:
        pass

    def count(self, outcome: str, n: int = 1) -> None:
        pass

    def add_bytes(self, n: int) -> None:
        pass

    def registry_generation(self, generation: int) -> None:
        pass

    def registry_reload_failed(self) -> None:
        pass


class PrometheusMetrics:
    """The definitions as prometheus-client objects, registered in `registry`.

        metrics = PrometheusMetrics(registry=CollectorRegistry())
        rec = metrics.recorder("reid-compact", "aes-256-gcm")
        rec.observe("encrypt", 12e-6); rec.count("ok"); rec.add_bytes(1090)
    """

    def __init__(self, registry: Any = None) -> None:
        import prometheus_client as pc

        self.registry = pc.REGISTRY if registry is None else registry
        self.stage_seconds = pc.Histogram(
            STAGE_SECONDS.name, STAGE_SECONDS.help, STAGE_SECONDS.labels, buckets=BUCKETS,
            registry=self.registry)
        self.requests = pc.Counter(REQUESTS.name, REQUESTS.help, REQUESTS.labels,
                                   registry=self.registry)
        self.response_bytes = pc.Counter(RESPONSE_BYTES.name, RESPONSE_BYTES.help,
                                         RESPONSE_BYTES.labels, registry=self.registry)
        self.registry_generation = pc.Gauge(
            REGISTRY_GENERATION.name, REGISTRY_GENERATION.help, REGISTRY_GENERATION.labels,
            registry=self.registry)
        self.registry_reload_failures = pc.Counter(
            REGISTRY_RELOAD_FAILURES.name, REGISTRY_RELOAD_FAILURES.help,
            REGISTRY_RELOAD_FAILURES.labels, registry=self.registry)

    def recorder(self, model: str, scheme: str) -> Recorder:
        return _PrometheusRecorder(self, model, scheme)


class _PrometheusRecorder(Recorder):
    def __init__(self, metrics: PrometheusMetrics, model: str, scheme: str) -> None:
        self._stages = {s: metrics.stage_seconds.labels(model, scheme, s) for s in STAGES}
        self._outcomes = {o: metrics.requests.labels(model, scheme, o) for o in OUTCOMES}
        self._bytes = metrics.response_bytes.labels(model, scheme)
        self._generation = metrics.registry_generation.labels(model)
        self._reload_failures = metrics.registry_reload_failures.labels(model)

    def observe(self, stage: str, seconds: float) -> None:
        if stage not in self._stages:
            _check(stage, STAGES, "stage")
        self._stages[stage].observe(seconds)

    def count(self, outcome: str, n: int = 1) -> None:
        if outcome not in self._outcomes:
            _check(outcome, OUTCOMES, "outcome")
        self._outcomes[outcome].inc(n)

    def add_bytes(self, n: int) -> None:
        self._bytes.inc(n)

    def registry_generation(self, generation: int) -> None:
        self._generation.set(generation)

    def registry_reload_failed(self) -> None:
        self._reload_failures.inc()


class HistogramState(Recorder):
    """Thread-safe local accumulation of every metric for one (model, scheme).

    `observe` costs a bisect and two additions under an uncontended lock. `drain()` returns the
    increments since the previous drain, as (metric name, label values, increment) with
    CUMULATIVE bucket counts, exactly the series prometheus-client's histogram exposes.
    """

    def __init__(self, model: str, scheme: str, buckets: tuple[float, ...] = BUCKETS) -> None:
        if list(buckets) != sorted(buckets) or not buckets:
            raise ValueError("buckets must be a non-empty increasing sequence")
        self.model, self.scheme = model, scheme
        self.bounds = tuple(buckets) + (float("inf"),)
        self._les = [le_label(b) for b in self.bounds]
        self._lock = threading.Lock()
        self._announced: set[str] = set()  # stages whose zero buckets were already published
        self._generation: int | None = None  # a gauge: kept across drains, not reset
        self._generation_changed = False
        self._reset()

    def _reset(self) -> None:
        self._counts = {s: [0] * len(self.bounds) for s in STAGES}  # per bucket, not cumulative
        self._sums = dict.fromkeys(STAGES, 0.0)
        self._outcomes = dict.fromkeys(OUTCOMES, 0)
        self._bytes = 0
        self._reload_failures = 0
        self._dirty = False

    def observe(self, stage: str, seconds: float) -> None:
        if stage not in self._sums:
            _check(stage, STAGES, "stage")
        i = bisect_left(self.bounds, seconds)
        with self._lock:
            self._counts[stage][i] += 1
            self._sums[stage] += seconds
            self._dirty = True

    def count(self, outcome: str, n: int = 1) -> None:
        if outcome not in self._outcomes:
            _check(outcome, OUTCOMES, "outcome")
        with self._lock:
            self._outcomes[outcome] += n
            self._dirty = True

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self._bytes += n
            self._dirty = True

    def registry_generation(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                self._generation, self._generation_changed, self._dirty = generation, True, True

    def registry_reload_failed(self) -> None:
        with self._lock:
            self._reload_failures += 1
            self._dirty = True

    def generation_line(self) -> tuple[str, tuple[str, ...], float] | None:
        """The generation gauge's current line (None before the first load), to re-publish."""
        with self._lock:
            generation = self._generation
        return None if generation is None else (REGISTRY_GENERATION.name, (self.model,), generation)

    def drain(self) -> list[tuple[str, tuple[str, ...], float]]:
        """Increments since the last drain; the generation gauge only when it changed."""
        with self._lock:
            if not self._dirty:
                return []
            counts, sums, outcomes, nbytes = self._counts, self._sums, self._outcomes, self._bytes
            failures, generation = self._reload_failures, self._generation
            gauge_changed, self._generation_changed = self._generation_changed, False
            self._reset()
        m, s = self.model, self.scheme
        out: list[tuple[str, tuple[str, ...], float]] = []
        for stage in STAGES:
            per_bucket = counts[stage]
            total = sum(per_bucket)
            if not total:
                continue
            first = stage not in self._announced
            self._announced.add(stage)
            running = 0
            for le, c in zip(self._les, per_bucket):
                running += c
                # Every bucket is published once (histogram_quantile interpolates from the
                # bucket below); after that, a zero increment needs no line.
                if running or first:
                    out.append((STAGE_SECONDS.name + "_bucket", (m, s, stage, le), running))
            out.append((STAGE_SECONDS.name + "_sum", (m, s, stage), sums[stage]))
            out.append((STAGE_SECONDS.name + "_count", (m, s, stage), total))
        for outcome, n in outcomes.items():
            if n:
                out.append((REQUESTS.name, (m, s, outcome), n))
        if nbytes:
            out.append((RESPONSE_BYTES.name, (m, s), nbytes))
        if gauge_changed:
            out.append((REGISTRY_GENERATION.name, (m,), generation))
        if failures:
            out.append((REGISTRY_RELOAD_FAILURES.name, (m,), failures))
        return out


def torchserve_series() -> list[tuple[str, tuple[str, ...], str]]:
    """(name, dimension names, unit) of every TorchServe counter the bridge emits."""
    h = STAGE_SECONDS
    return [(h.name + "_bucket", h.labels + ("le",), h.unit), (h.name + "_sum", h.labels, h.unit),
            (h.name + "_count", h.labels, "count"),
            (REQUESTS.name, REQUESTS.labels, REQUESTS.unit),
            (RESPONSE_BYTES.name, RESPONSE_BYTES.labels, RESPONSE_BYTES.unit),
            (REGISTRY_RELOAD_FAILURES.name, REGISTRY_RELOAD_FAILURES.labels,
             REGISTRY_RELOAD_FAILURES.unit)]


def torchserve_gauges() -> list[tuple[str, tuple[str, ...], str]]:
    """(name, dimension names, unit) of every TorchServe gauge the bridge emits."""
    g = REGISTRY_GENERATION
    return [(g.name, g.labels, g.unit)]


def torchserve_metrics_yaml(base: dict | None = None) -> dict:
    """A TorchServe metrics.yaml document: `base` (TorchServe's own ts_metrics) plus our
    series as model_metrics counters and gauges. serve_config/metrics.yaml is this document."""
    doc = dict(base or {})
    model = dict(doc.get("model_metrics") or {})
    for kind, series in (("counter", torchserve_series()), ("gauge", torchserve_gauges())):
        kept = [c for c in model.get(kind) or [] if not c["name"].startswith("featurelock_")]
        model[kind] = kept + [{"name": name, "unit": unit, "dimensions": list(dims)}
                              for name, dims, unit in series]
    doc["model_metrics"] = model
    return doc
