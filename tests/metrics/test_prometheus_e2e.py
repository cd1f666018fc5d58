"""A real TorchServe publishing featurelock's metrics, scraped by a real Prometheus (Debian's
`prometheus` package) on loopback; the recording rules in serve_config/ must return numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # load_tests/ is not an installed package

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SERIES = ("featurelock_stage_duration_seconds_bucket", "featurelock_stage_duration_seconds_sum",
          "featurelock_stage_duration_seconds_count", "featurelock_requests_total",
          "featurelock_response_bytes_total")


def _prometheus() -> str:
    found = shutil.which("prometheus")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (.ci/run installs Debian's package)")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    pytest.importorskip("ts")
    from featurelock.handlers.stack import Stack

    root = tmp_path_factory.mktemp("metrics-e2e")
    with Stack.build(root, ("plaintext", "aes-256-gcm"), max_batch_delay=2) as st:
        yield st


class _Traffic:
    """Background requests until stopped (or `limit` requests): bounded in time and count."""

    def __init__(self, stack, threads: int = 2, limit: int = 3000) -> None:
        from featurelock.handlers.client import EndpointClient
        from featurelock.handlers.stack import TENANT, sample_images

        self.images = sample_images(8)
        self.clients = [EndpointClient(stack.ts.inference_url, ep.model, TENANT, ep.token,
                                       stack.ts.inference_key)
                        for ep in stack.endpoints.values()]
        self.limit, self.sent, self.statuses = limit, 0, {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]

    def _run(self, i: int) -> None:
        n = 0
        while not self.stop.is_set():
            with self.lock:
                if self.sent >= self.limit:
                    return
                self.sent += 1
            client = self.clients[n % len(self.clients)]
            status = client.embed(self.images[n % len(self.images)]).status
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            n += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


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
    from featurelock.handlers.server import free_ports

    binary = _prometheus()
    port = free_ports(1)[0]
    config = yaml.safe_load((REPO / "serve_config" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(REPO / "serve_config" / "recording_rules.yml")]
    target = urllib.parse.urlsplit(stack.ts.metrics_url).netloc
    config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api/v1/query?query="

    def query(expr: str) -> list:
        with urllib.request.urlopen(api + urllib.parse.quote(expr), timeout=5) as resp:
            doc = json.loads(resp.read())
        assert doc["status"] == "success"
        return doc["data"]["result"]

    wanted = ("featurelock:encrypt_seconds:p50_1m", "featurelock:encrypt_seconds:p95_1m",
              "featurelock:encrypt_share:ratio_1m", "featurelock:encrypt_seconds:mean_1m")
    values: dict = {}
    try:
        with _Traffic(stack) as traffic:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and len(values) < len(wanted):
                time.sleep(1)
                for name in wanted:
                    try:
                        result = query(f'{name}{{scheme="aes-256-gcm"}}')
                    except OSError:
                        continue  # Prometheus still starting
                    if result and result[0]["value"][1] not in ("NaN", "+Inf", "-Inf"):
                        values[name] = float(result[0]["value"][1])
        assert set(values) == set(wanted), (values, (tmp_path / "prometheus.log").read_text()[-2000:])
        assert traffic.statuses.get(200, 0) > 0 and set(traffic.statuses) == {200}
        p50, p95 = values[wanted[0]], values[wanted[1]]
        assert 0 < p50 <= p95 < 0.05  # encryption well under 50 ms, resolved by our buckets
        assert 0 < values["featurelock:encrypt_share:ratio_1m"] < 1
        rate = query('featurelock:requests:rate_1m{scheme="plaintext",outcome="ok"}')
        assert rate and float(rate[0]["value"][1]) > 0
        generation = query('featurelock:key_registry_generation:min{model="ts-aes-256-gcm"}')
        assert generation and float(generation[0]["value"][1]) >= 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
