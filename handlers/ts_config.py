"""The hardened TorchServe config.properties that featurelock writes for every server.

Every listener on 127.0.0.1, token authorization on, model API off, models only from the local
model store, Prometheus metrics. serve_config/config.properties is this template rendered with
the default ports (a unit test keeps the two in step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from importlib.resources import files
from string import Template

__all__ = ["Ports", "render_config", "DEFAULT_PORTS", "MAX_REQUEST_SIZE", "METRICS_CONFIG"]

MAX_REQUEST_SIZE = 10 * 1024 * 1024

_TEMPLATE = Template("""# featurelock's hardened TorchServe configuration (written by `featurelock serve`).
#
# Every listener on loopback only (ShellTorch: never expose management on 0.0.0.0).
inference_address=http://127.0.0.1:${inference_port}
management_address=http://127.0.0.1:${management_port}
metrics_address=http://127.0.0.1:${metrics_port}
grpc_inference_address=127.0.0.1
grpc_management_address=127.0.0.1
grpc_inference_port=${grpc_inference_port}
grpc_management_port=${grpc_management_port}
# Token authorization ON (key_file.json in the work directory); no model registration API.
disable_token_authorization=false
token_expiration_min=${token_expiration_min}
enable_model_api=false
# Models load only from the local model store.
model_store=${model_store}
allowed_urls=${allowed_urls}
load_models=${load_models}
# No per-model pip installs, no env-var overrides of this file, no config snapshots.
install_py_dep_per_model=false
enable_envvars_config=false
# Prometheus metrics on the (loopback) metrics port, featurelock's metrics declared.
metrics_mode=prometheus
metrics_config=${metrics_config}
# Bodies beyond this are refused by the frontend (413) before reaching a worker.
max_request_size=${max_request_size}
max_response_size=${max_request_size}
default_workers_per_model=1
job_queue_size=${job_queue_size}
""")


@dataclass(frozen=True)
class Ports:
    inference: int = 8080
    management: int = 8081
    metrics: int = 8082
    grpc_inference: int = 7070
    grpc_management: int = 7071


DEFAULT_PORTS = Ports()
EXAMPLE_MODEL_STORE = "/srv/featurelock/model-store"
EXAMPLE_METRICS_CONFIG = "/srv/featurelock/metrics.yaml"
# TorchServe's defaults plus featurelock's series; without it the frontend drops our metrics.
METRICS_CONFIG = Path(str(files("featurelock.serve_config") / "metrics.yaml"))


def render_config(model_store: str | Path, models: list[str] | None = None,
                  ports: Ports = DEFAULT_PORTS, *, token_expiration_min: int = 60,
                  max_request_size: int = MAX_REQUEST_SIZE, job_queue_size: int = 100,
                  metrics_config: str | Path = METRICS_CONFIG) -> str:
    """config.properties text. `models`: .mar file names in the store (None: all of them)."""
    store = Path(model_store).resolve()
    return _TEMPLATE.substitute(
        inference_port=ports.inference, management_port=ports.management,
        metrics_port=ports.metrics, grpc_inference_port=ports.grpc_inference,
        grpc_management_port=ports.grpc_management, token_expiration_min=token_expiration_min,
        model_store=_escape(str(store)), allowed_urls=_escape(f"file://{re.escape(str(store))}/.*\\.mar"),
        load_models=",".join(models) if models else "all",
        max_request_size=max_request_size, job_queue_size=job_queue_size,
        metrics_config=_escape(str(metrics_config)))


def _escape(value: str) -> str:
    """A Java .properties value: backslashes doubled (Properties.load un-escapes them)."""
    return value.replace("\\", "\\\\")
