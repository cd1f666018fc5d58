"""featurelock's metrics inside a Ray Serve replica, through Ray's own metrics pipeline.

Each replica aggregates locally (`PublishingRecorder`, as inside TorchServe) and publishes the
increments every second as Ray counters named like a classic Prometheus histogram's series
(`featurelock_stage_duration_seconds_bucket{le}`, `_sum`, `_count`, `featurelock_requests_total`,
...), plus the generation gauge. Ray's per-node metrics agent exports them, with Ray's `ray_`
namespace prefix and its own labels added (SessionName, NodeAddress, WorkerId, ...), and
`_total` appended to counter names that lack it (`ray_featurelock_stage_duration_seconds_
bucket_total`), on every node's metrics export port; Prometheus finds those ports through the
file Ray's dashboard head writes (/tmp/ray/prom_metrics_service_discovery.json, a link to the
session's file; no dashboard, no file) or, on Kubernetes, a KubeRay PodMonitor.

serve_config/prometheus.yml's `featurelock-ray` job strips the prefix and that `_total`
(metric_relabel_configs), so the series are stored under the same names and labels as
TorchServe's and the recording rules in serve_config/recording_rules.yml apply unchanged (they
sum away the extra labels); tests/metrics/test_prometheus_scale_out_e2e.py checks it.

A counter is exported from its first non-zero increment on (Ray refuses zero increments), so
a bucket nothing has landed in yet is absent, not zero: a quantile that falls in the lowest
exported bucket is interpolated from 0 instead of from the bucket below (at most that
bucket's width off), and `increase()` over a series born at its first value misses that value.
"""

from __future__ import annotations

from featurelock.middleware.metrics import torchserve_gauges, torchserve_series

from .metrics_bridge import DEFAULT_INTERVAL, PublishingRecorder

__all__ = ["RayMetrics", "RAY_PREFIX"]

RAY_PREFIX = "ray_"  # what Ray's exporter puts before every metric name


class RayMetrics(PublishingRecorder):
    """A PublishingRecorder whose sink is `ray.util.metrics` (call inside a Ray worker)."""

    def __init__(self, model: str, scheme: str, interval: float = DEFAULT_INTERVAL) -> None:
        from ray.util.metrics import Counter, Gauge

        self._counters = {name: Counter(name, description=f"featurelock: {name}",
                                        tag_keys=tuple(dims))
                          for name, dims, _unit in torchserve_series()}
        self._gauges = {name: Gauge(name, description=f"featurelock: {name}",
                                    tag_keys=tuple(dims))
                        for name, dims, _unit in torchserve_gauges()}
        self._dims = {name: tuple(dims)
                      for name, dims, _unit in [*torchserve_series(), *torchserve_gauges()]}
        super().__init__(model, scheme, interval)

    def _emit(self, name: str, labels: tuple[str, ...], value: float) -> None:
        tags = dict(zip(self._dims[name], labels))
        if name in self._gauges:
            self._gauges[name].set(value, tags=tags)
        elif value:  # Ray refuses a zero increment; every bucket still appears once non-zero
            self._counters[name].inc(value, tags=tags)
