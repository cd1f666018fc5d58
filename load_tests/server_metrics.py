"""Read featurelock's server-side figures back from a /metrics page (TorchServe or any host).

`scrape(url)` -> ServerMetrics; `delta(after, before)` isolates one run. Quantiles are
interpolated inside buckets exactly as PromQL's histogram_quantile does.
"""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from featurelock.middleware.metrics import REQUESTS, STAGE_SECONDS

__all__ = ["ServerMetrics", "parse", "scrape", "settled", "quantile"]

_H = STAGE_SECONDS.name


@dataclass
class ServerMetrics:
    sums: dict = field(default_factory=lambda: defaultdict(float))      # (scheme, stage)
    counts: dict = field(default_factory=lambda: defaultdict(float))    # (scheme, stage)
    buckets: dict = field(default_factory=lambda: defaultdict(float))   # (scheme, stage, le)
    requests: dict = field(default_factory=lambda: defaultdict(float))  # (scheme, outcome)

    def minus(self, before: "ServerMetrics") -> "ServerMetrics":
        out = ServerMetrics()
        for name in ("sums", "counts", "buckets", "requests"):
            mine, theirs = getattr(self, name), getattr(before, name)
            target = getattr(out, name)
            for key, value in mine.items():
                target[key] = value - theirs.get(key, 0.0)
        return out

    def share(self, scheme: str, stage: str = "encrypt") -> float | None:
        """Seconds in `stage` / seconds in the whole handler, for `scheme`."""
        total = self.sums.get((scheme, "handler"), 0.0)
        return self.sums.get((scheme, stage), 0.0) / total if total > 0 else None

    def mean(self, scheme: str, stage: str) -> float | None:
        n = self.counts.get((scheme, stage), 0.0)
        return self.sums.get((scheme, stage), 0.0) / n if n > 0 else None

    def quantile(self, q: float, scheme: str, stage: str) -> float | None:
        pairs = sorted((float(le), c) for (s, st, le), c in self.buckets.items()
                       if s == scheme and st == stage)
        return quantile(q, pairs)


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """histogram_quantile over sorted (upper bound, cumulative count) pairs."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, cum in buckets:
        if cum >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * ((rank - below) / (cum - below) if cum > below else 0)
        lower, below = upper, cum
    return None


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


_RAY_TOTAL = re.compile(r"^ray_(" + _H + r"_(?:bucket|sum|count))_total$")


def _name(name: str) -> str:
    """A Ray node's name for one of our series -> TorchServe's: Ray puts `ray_` before every
    name and `_total` after every counter's (the relabelling serve_config/prometheus.yml does)."""
    ray_histogram = _RAY_TOTAL.match(name)
    if ray_histogram:
        return ray_histogram.group(1)
    return name[4:] if name.startswith("ray_featurelock_") else name


def parse(text: str) -> ServerMetrics:
    """featurelock's series from a text-format page (TorchServe, prometheus-client, or a Ray
    node's export). A small parser of our own: the prometheus_client parser renames every
    counter sample to <family>_total, which would hide the histogram series TorchServe exposes
    as counters (Prometheus itself keeps the names)."""
    out = ServerMetrics()
    for line in text.splitlines():
        if not line.startswith(("featurelock_", "ray_featurelock_")):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, raw_labels, value = _name(match.group(1)), match.group(2) or "", float(match.group(3))
        labels = dict(_LABEL.findall(raw_labels))
        scheme = labels.get("scheme")
        if scheme is None:
            continue
        if name == _H + "_sum":
            out.sums[(scheme, labels["stage"])] += value
        elif name == _H + "_count":
            out.counts[(scheme, labels["stage"])] += value
        elif name == _H + "_bucket":
            out.buckets[(scheme, labels["stage"], labels["le"])] += value
        elif name == REQUESTS.name:
            out.requests[(scheme, labels["outcome"])] += value
    return out


def scrape(url: str | list[str], timeout: float = 10.0) -> ServerMetrics:
    """One page, or the sum over several (a Ray cluster: one page per node)."""
    pages = []
    for one in [url] if isinstance(url, str) else url:
        with urllib.request.urlopen(one, timeout=timeout) as resp:
            pages.append(resp.read().decode("utf-8"))
    return parse("\n".join(pages))


def settled(urls: list[str], *, interval: float = 2.0, timeout: float = 40.0) -> ServerMetrics:
    """The metrics once two scrapes `interval` apart agree: Ray's agents export what the
    replicas published on their own period (seconds), so the last run needs time to land."""
    import time

    last = scrape(urls)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = scrape(urls)
        if now.counts == last.counts and now.requests == last.requests:
            return now
        last = now
    return last
