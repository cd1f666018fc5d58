"""serve_config/prometheus.yml for given targets, and a Prometheus on loopback to scrape them.

    config = render_config(static={"featurelock-kserve": ["127.0.0.1:8080"]},
                           file_sd={"featurelock-ray": [session_dir / RAY_DISCOVERY_FILE]})
    with PrometheusProcess(config, workdir) as prom:     # Debian's `prometheus` binary
        prom.value('featurelock:requests:rate_1m{outcome="ok"}')

The rendered copy keeps every rule of the shipped jobs (metric relabelling included) and the
shipped recording rules; only the targets, the jobs kept and the intervals change. Tests,
benchmarks and load tests use it so that what they check is the configuration operators run.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .errors import ServingError

__all__ = ["PROMETHEUS_YML", "RECORDING_RULES_YML", "RAY_DISCOVERY_FILE", "JOBS",
           "render_config", "recording_rule_names", "PrometheusProcess", "PrometheusError"]

PROMETHEUS_YML = Path(str(files("featurelock.serve_config") / "prometheus.yml"))
RECORDING_RULES_YML = Path(str(files("featurelock.serve_config") / "recording_rules.yml"))
# Written by Ray's dashboard head (PrometheusServiceDiscoveryWriter, every 5 s) into the
# session directory, with a symlink at /tmp/ray/<this name>; no dashboard, no file.
RAY_DISCOVERY_FILE = "prom_metrics_service_discovery.json"
JOBS = ("featurelock-torchserve", "featurelock-ray", "featurelock-kserve")
LOOPBACK = "127.0.0.1"


class PrometheusError(ServingError):
    """Prometheus could not be started, did not become ready, or a query failed."""


def render_config(static: Mapping[str, Sequence[str]] | None = None,
                  file_sd: Mapping[str, Sequence[str | Path]] | None = None, *,
                  interval: str = "1s", base: Path = PROMETHEUS_YML,
                  rules: Sequence[Path] = (RECORDING_RULES_YML,)) -> dict[str, Any]:
    """The shipped config (`base`) with only the jobs named in `static` ("host:port" targets)
    or `file_sd` (discovery files, re-read every `interval`) kept, each given those targets;
    scrape and rule evaluation every `interval`; `rules` by absolute path."""
    static, file_sd = dict(static or {}), dict(file_sd or {})
    doc = yaml.safe_load(Path(base).read_text(encoding="utf-8"))
    known = {job["job_name"]: job for job in doc["scrape_configs"]}
    for arg, jobs in (("static", static), ("file_sd", file_sd)):
        for name in jobs:
            if name not in known:
                raise ValueError(f"{arg}: no job {name!r} in {base} (jobs: {', '.join(known)})")
    both = set(static) & set(file_sd)
    if both:
        raise ValueError(f"static and file_sd both name {', '.join(sorted(both))}")
    if not static and not file_sd:
        raise ValueError("name at least one job in static or file_sd")
    scrape = []
    for name, job in known.items():
        if name not in static and name not in file_sd:
            continue
        job = copy.deepcopy(job)
        for key in [k for k in job if k.endswith("_sd_configs") or k == "static_configs"]:
            del job[key]
        if name in static:
            job["static_configs"] = [{"targets": [str(t) for t in static[name]]}]
        else:
            job["file_sd_configs"] = [{"files": [str(Path(f).resolve()) for f in file_sd[name]],
                                       "refresh_interval": interval}]
        scrape.append(job)
    doc["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
    doc["rule_files"] = [str(Path(r).resolve()) for r in rules]
    doc["scrape_configs"] = scrape
    return doc


def recording_rule_names(path: Path = RECORDING_RULES_YML) -> list[str]:
    """The `record:` name of every rule in a rules file, in order."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return [rule["record"] for group in doc["groups"] for rule in group["rules"]
            if "record" in rule]


class PrometheusProcess:
    """A Prometheus server on a free 127.0.0.1 port with `config`, its storage and log in
    `workdir`; a context manager that starts it and always stops it."""

    def __init__(self, config: Mapping[str, Any], workdir: Path, *, binary: str | None = None,
                 port: int | None = None, startup_timeout: float = 30.0) -> None:
        self.config = dict(config)
        self.workdir = Path(workdir)
        self.binary = binary or shutil.which("prometheus")
        if not self.binary:
            raise PrometheusError("prometheus is not installed (apt-get install prometheus)")
        self.port = port
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "prometheus.log"

    def logs(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.is_file() else ""

    def start(self) -> "PrometheusProcess":
        from .server import free_ports

        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_ports(1)[0]
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={config_file}",
                 f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                 f"--web.listen-address={LOOPBACK}:{self.port}",
                 "--storage.tsdb.retention.time=1h"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> "PrometheusProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited; see {self.log_file}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready within {self.startup_timeout:.0f}s; "
                              f"see {self.log_file}")

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422: a bad expression; the body says why
            doc = json.loads(exc.read() or b"{}")
        if doc.get("status") != "success":
            raise PrometheusError(f"{path} {dict(params)}: {doc.get('error', doc)}")
        return doc["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector of `expr` (now, or at unix time `at`): [{metric, value}]."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self._get("/api/v1/query", params)
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr!r} is a {data['resultType']}, not a vector")
        return data["result"]

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The one finite value `expr` returns, or None (no sample, NaN or infinite)."""
        result = self.query(expr, at)
        if len(result) > 1:
            raise PrometheusError(f"{expr!r} returned {len(result)} series, not one")
        if not result:
            return None
        value = float(result[0]["value"][1])
        return value if value == value and abs(value) != float("inf") else None

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets (/api/v1/targets): labels, health, lastError, ..."""
        return self._get("/api/v1/targets", {"state": "active"})["activeTargets"]
