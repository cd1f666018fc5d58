"""featurelock's metrics inside TorchServe, on the frontend's own /metrics (prometheus mode).

Why not `context.metrics` histograms: TorchServe 0.12's frontend builds every HISTOGRAM from
metrics.yaml with prometheus' DEFAULT buckets (5 ms .. 10 s; `Histogram.build()` without
`.buckets()`), so a 20 us encryption would only ever land in `le="0.005"`. And every
`context.metrics` update is one `[METRICS]...` log line that the worker formats (with a
gethostname() call) and the frontend parses: seven lines per request would cost more than the
encryption we measure.

So the worker aggregates locally (`HistogramState`: a bisect and two additions per
observation) and a daemon thread publishes the increments every `interval` seconds as
TorchServe COUNTERS named exactly like a classic prometheus histogram's series:

    featurelock_stage_duration_seconds_bucket{model,scheme,stage,le,Hostname}
    featurelock_stage_duration_seconds_sum / _count{model,scheme,stage,Hostname}
    featurelock_requests_total{model,scheme,outcome,Hostname}
    featurelock_response_bytes_total{model,scheme,Hostname}
    featurelock_key_registry_reload_failures_total{model,Hostname}
    featurelock_key_registry_generation{model,Hostname}      a GAUGE: set on change, and
                                                             re-set every GAUGE_HEARTBEAT s

(TorchServe's bundled simpleclient keeps counter names as given and appends the Hostname
label.) Counters add up across workers, so `histogram_quantile(0.95, sum by (le) (rate(
..._bucket[1m])))` and the recording rules in serve_config/ work unchanged for TorchServe and
for prometheus-client hosts. The metrics must be declared in the metrics.yaml that the
frontend's `metrics_config` names (serve_config/metrics.yaml); if they are not, the worker
logs one WARNING and records nothing (never a silent gap).

Every worker of a model sets the same generation series (TorchServe adds no worker label), so
the gauge shows the last value any worker published. The heartbeat makes a lagging worker
re-assert its older generation instead of hiding behind a newer one; each worker also logs
the generation it loads.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from featurelock.middleware._periodic import Periodic
from featurelock.middleware.errors import EncryptionError
from featurelock.middleware.metrics import (HistogramState, NullRecorder, Recorder,
                                            torchserve_gauges, torchserve_series)

from .errors import (BadInput, Forbidden, MissingCredentials, NotServed, PayloadTooLarge,
                     UnsupportedMedia)

__all__ = ["PublishingRecorder", "TorchServeMetrics", "NullRecorder", "handler_metrics", "outcome_of", "DEFAULT_INTERVAL"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0  # seconds between publications (Prometheus scrapes every >= 1 s)
GAUGE_HEARTBEAT = 10.0  # seconds between re-publications of an unchanged generation gauge


def outcome_of(exc: BaseException | None) -> str:
    """The `outcome` label of a request that ended with `exc` (None: ok)."""
    from featurelock.models.errors import ImageDecodeError

    if exc is None:
        return "ok"
    if isinstance(exc, (MissingCredentials, Forbidden)):
        return "unauthenticated"
    if isinstance(exc, (BadInput, PayloadTooLarge, UnsupportedMedia, NotServed, ImageDecodeError)):
        return "bad_input"
    if isinstance(exc, EncryptionError):
        return "encrypt_failed"
    return "internal_error"


class PublishingRecorder(Recorder):
    """Records into a local HistogramState (the hot path: a bisect and two additions) and
    publishes the increments every `interval` seconds from a daemon thread through `_emit`.
    Subclasses bind `_emit` to an engine's metrics (TorchServe's cache, Ray's metrics)."""

    def __init__(self, model: str, scheme: str, interval: float = DEFAULT_INTERVAL) -> None:
        self.state = HistogramState(model, scheme)
        self._ticker = Periodic("featurelock-metrics", interval, self._publish_logged)
        self._publish_lock = threading.Lock()
        self._gauge_published = float("-inf")

    def _emit(self, name: str, labels: tuple[str, ...], value: float) -> None:
        """Add `value` to counter `name` (set it, for the generation gauge)."""
        raise NotImplementedError

    def observe(self, stage: str, seconds: float) -> None:
        self.state.observe(stage, seconds)

    def count(self, outcome: str, n: int = 1) -> None:
        self.state.count(outcome, n)

    def add_bytes(self, n: int) -> None:
        self.state.add_bytes(n)

    def registry_generation(self, generation: int) -> None:
        self.state.registry_generation(generation)

    def registry_reload_failed(self) -> None:
        self.state.registry_reload_failed()

    def publish(self, now: float | None = None) -> int:
        """Emit the increments since the last publication (and the generation gauge when it
        changed or GAUGE_HEARTBEAT passed); the number of metric lines."""
        now = time.monotonic() if now is None else now
        with self._publish_lock:
            lines = self.state.drain()
            gauge = self.state.generation_line()
            if gauge is not None:
                if any(name == gauge[0] for name, _, _ in lines):  # changed: drained with the rest
                    self._gauge_published = now
                elif now - self._gauge_published >= GAUGE_HEARTBEAT:
                    lines.append(gauge)
                    self._gauge_published = now
            for name, labels, value in lines:
                self._emit(name, labels, value)
        return len(lines)

    def start(self) -> "PublishingRecorder":
        self._ticker.start()
        return self

    def close(self) -> None:
        self._ticker.close()
        self.publish()

    def _publish_logged(self) -> None:
        try:
            self.publish()
        except Exception:  # metrics must never take the worker down; logged, retried
            log.exception("featurelock: publishing metrics failed")


class TorchServeMetrics(PublishingRecorder):
    """Publishes through TorchServe's metrics cache (`context.metrics`). Raises LookupError if
    a featurelock series is not declared in it."""

    def __init__(self, metrics_cache: Any, model: str, scheme: str,
                 interval: float = DEFAULT_INTERVAL) -> None:
        from ts.metrics.metric_type_enum import MetricTypes

        self._metrics = {}
        series = [(s, MetricTypes.COUNTER) for s in torchserve_series()]
        series += [(s, MetricTypes.GAUGE) for s in torchserve_gauges()]
        for (name, dims, _unit), kind in series:
            try:
                metric = metrics_cache.get_metric(name, kind)
            except Exception:  # ts raises its own MetricsCacheKeyError
                raise LookupError(f"{name} is not declared in TorchServe's metrics_config") from None
            if list(metric.dimension_names) != list(dims):
                raise LookupError(f"{name}: metrics_config declares dimensions "
                                  f"{list(metric.dimension_names)}, expected {list(dims)}")
            self._metrics[name] = metric
        super().__init__(model, scheme, interval)

    def _emit(self, name: str, labels: tuple[str, ...], value: float) -> None:
        self._metrics[name].add_or_update(value, list(labels))


def handler_metrics(context: Any, model: str, scheme: str,
                    interval: float = DEFAULT_INTERVAL) -> Recorder:
    """The recorder for a handler: TorchServeMetrics when the series are declared, else a
    NullRecorder after one WARNING that says how to fix it."""
    cache = getattr(context, "metrics", None)
    if cache is None:
        log.warning("featurelock: TorchServe gave no metrics cache; featurelock metrics are off")
        return NullRecorder()
    try:
        return TorchServeMetrics(cache, model, scheme, interval).start()
    except LookupError as exc:
        log.warning("featurelock: metrics are off: %s. Point config.properties metrics_config "
                    "at serve_config/metrics.yaml", exc)
        return NullRecorder()
