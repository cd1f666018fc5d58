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

(TorchServe's bundled simpleclient keeps counter names as given and appends the Hostname
label.) Counters add up across workers, so `histogram_quantile(0.95, sum by (le) (rate(
..._bucket[1m])))` and the recording rules in serve_config/ work unchanged for TorchServe and
for prometheus-client hosts. The metrics must be declared in the metrics.yaml that the
frontend's `metrics_config` names (serve_config/metrics.yaml); if they are not, the worker
logs one WARNING and records nothing (never a silent gap).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from featurelock.middleware.errors import EncryptionError
from featurelock.middleware.metrics import (HistogramState, NullRecorder, Recorder,
                                            torchserve_series)

from .errors import (BadInput, Forbidden, MissingCredentials, NotServed, PayloadTooLarge,
                     UnsupportedMedia)

__all__ = ["TorchServeMetrics", "NullRecorder", "handler_metrics", "outcome_of", "DEFAULT_INTERVAL"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0  # seconds between publications (Prometheus scrapes every >= 1 s)


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


class TorchServeMetrics(Recorder):
    """A HistogramState for one (model, scheme), published through TorchServe's metrics cache.

    `metrics_cache`: the worker's `context.metrics`. Raises LookupError if a featurelock series
    is not declared in it. `start()` runs the publishing thread; `close()` publishes what is
    left and stops it.
    """

    def __init__(self, metrics_cache: Any, model: str, scheme: str,
                 interval: float = DEFAULT_INTERVAL) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        from ts.metrics.metric_type_enum import MetricTypes

        self._metrics = {}
        for name, dims, _unit in torchserve_series():
            try:
                metric = metrics_cache.get_metric(name, MetricTypes.COUNTER)
            except Exception:  # ts raises its own MetricsCacheKeyError
                raise LookupError(f"{name} is not declared in TorchServe's metrics_config") from None
            if list(metric.dimension_names) != list(dims):
                raise LookupError(f"{name}: metrics_config declares dimensions "
                                  f"{list(metric.dimension_names)}, expected {list(dims)}")
            self._metrics[name] = metric
        self.state = HistogramState(model, scheme)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._publish_lock = threading.Lock()

    # Recorder: the handler's hot path touches only the local state.
    def observe(self, stage: str, seconds: float) -> None:
        self.state.observe(stage, seconds)

    def count(self, outcome: str, n: int = 1) -> None:
        self.state.count(outcome, n)

    def add_bytes(self, n: int) -> None:
        self.state.add_bytes(n)

    def publish(self) -> int:
        """Emit the increments since the last publication; the number of metric lines."""
        with self._publish_lock:
            lines = self.state.drain()
            for name, labels, value in lines:
                self._metrics[name].add_or_update(value, list(labels))
        return len(lines)

    def start(self) -> "TorchServeMetrics":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="featurelock-metrics",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.publish()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish()
            except Exception:  # metrics must never take the worker down; logged, retried
                log.exception("featurelock: publishing metrics failed")


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
