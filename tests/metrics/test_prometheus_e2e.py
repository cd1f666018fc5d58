"""A real TorchServe publishing featurelock's metrics, scraped by a real Prometheus (Debian's
`prometheus` package) on loopback; the recording rules in serve_config/ must return numbers."""

from __future__ import annotations

import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from fl_serving_helpers import Traffic, dashboard_queries, finite_values, prometheus_binary

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # load_tests/ is not an installed package

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SERIES = ("featurelock_stage_duration_seconds_bucket", "featurelock_stage_duration_seconds_sum",
          "featurelock_stage_duration_seconds_count", "featurelock_requests_total",
          "featurelock_response_bytes_total")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    pytest.importorskip("ts")
    from featurelock.handlers.stack import Stack

    root = tmp_path_factory.mktemp("metrics-e2e")
    with Stack.build(root, ("plaintext", "aes-256-gcm"), max_batch_delay=2) as st:
        yield st


def _traffic(stack, threads: int = 2, limit: int = 3000) -> Traffic:
    from featurelock.handlers.client import EndpointClient
    from featurelock.handlers.stack import TENANT, sample_images

    clients = [EndpointClient(stack.ts.inference_url, ep.model, TENANT, ep.token,
                              stack.ts.inference_key) for ep in stack.endpoints.values()]
    return Traffic(clients, sample_images(8), threads, limit)


def _label_values(prom, label: str) -> list[str]:
    import json

    query = urllib.parse.urlencode({"match[]": "featurelock_requests_total"})
    with urllib.request.urlopen(f"{prom.url}/api/v1/label/{label}/values?{query}") as resp:
        return json.loads(resp.read())["data"]


def test_featurelock_series_are_on_torchserves_own_metrics_page(stack):
    from featurelock.handlers.client import EndpointClient
    from featurelock.handlers.stack import TENANT, sample_images

    ep = stack.endpoints["aes-256-gcm"]
    c = EndpointClient(stack.ts.inference_url, ep.model, TENANT, ep.token, stack.ts.inference_key)
    for image in sample_images(4):
        assert c.embed(image).status == 200
    assert c.embed(b"not an image").status == 400
    deadline = time.monotonic() + 15
    while True:
        text = urllib.request.urlopen(stack.ts.metrics_url, timeout=10).read().decode()
        if all(f"\n{name}{{" in text for name in SERIES) and 'outcome="bad_input"' in text:
            break
        assert time.monotonic() < deadline, "featurelock series missing from /metrics"
        time.sleep(0.5)
    assert 'stage="encrypt",le="1e-06"' in text  # our buckets, not TorchServe's 5 ms default
    assert 'scheme="aes-256-gcm"' in text and 'tenant' not in text and TENANT not in text
    assert "featurelock: metrics are off" not in stack.ts.logs()


def test_prometheus_recording_rules_return_numbers(stack, tmp_path):
    from featurelock.handlers.prometheus_config import PrometheusProcess, render_config

    binary = prometheus_binary()
    target = urllib.parse.urlsplit(stack.ts.metrics_url).netloc
    config = render_config(static={"featurelock-torchserve": [target]})
    wanted = ("featurelock:encrypt_seconds:p50_1m", "featurelock:encrypt_seconds:p95_1m",
              "featurelock:encrypt_share:ratio_1m", "featurelock:encrypt_seconds:mean_1m")
    values: dict = {}
    rate_rule = 'featurelock:requests:rate_1m{scheme="plaintext",outcome="ok"}'
    # The shipped Grafana dashboard's every panel target, as Grafana sends it for this job.
    panels = dashboard_queries("featurelock-torchserve")
    with PrometheusProcess(config, tmp_path / "prometheus", binary=binary) as prom:
        # Every rule is read while the traffic still runs: a rate over 1 m falls to 0 once it
        # stops, and the sender's request cap is generous (it stops at the deadline anyway).
        with _traffic(stack, limit=30000) as traffic:
            deadline, rate = time.monotonic() + 90, None
            while time.monotonic() < deadline and (len(values) < len(wanted) or not rate
                                                   or panels):
                time.sleep(1)
                for name in wanted:
                    value = prom.value(f'{name}{{scheme="aes-256-gcm"}}')
                    if value is not None:
                        values[name] = value
                rate = prom.value(rate_rule)
                # A query that does not parse raises here; one with a finite sample is done.
                panels = [p for p in panels if not finite_values(prom.query(p[2]))]
            job_values = _label_values(prom, "job")
        assert set(values) == set(wanted), (values, prom.logs()[-2000:])
        assert not panels, f"dashboard panels without data: {panels}"
        assert "featurelock-torchserve" in job_values  # the $job variable's choices
        assert traffic.statuses.get(200, 0) > 0 and set(traffic.statuses) == {200}
        p50, p95 = values[wanted[0]], values[wanted[1]]
        assert 0 < p50 <= p95 < 0.05  # encryption well under 50 ms, resolved by our buckets
        assert 0 < values["featurelock:encrypt_share:ratio_1m"] < 1
        assert rate is not None and rate > 0, (rate, traffic.sent)
        generation = prom.value('featurelock:key_registry_generation:min{model="ts-aes-256-gcm"}')
        assert generation is not None and generation >= 1
