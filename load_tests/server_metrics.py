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

__all__ = ["ServerMetrics", "parse", "scrape", "quantile"]

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


def parse(text: str) -> ServerMetrics:
    """featurelock's series from a text-format page. A small parser of our own: the
    prometheus_client parser renames every counter sample to <family>_total, which would hide
    the histogram series TorchServe exposes as counters (Prometheus itself keeps the names)."""
    out = ServerMetrics()
    for line in text.splitlines():
        if not line.startswith("featurelock_"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, raw_labels, value = match.group(1), match.group(2) or "", float(match.group(3))
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


def scrape(url: str, timeout: float = 10.0) -> ServerMetrics:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return parse(resp.read().decode("utf-8"))
