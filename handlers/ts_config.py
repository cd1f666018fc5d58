"""The hardened TorchServe config.properties that featurelock writes for every server.

Every listener on 127.0.0.1, token authorization on, model API off, models only from the local
model store, no workflows, Prometheus metrics. serve_config/config.properties is this template
rendered with the default ports (a unit test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from importlib.resources import files
from string import Template

__all__ = ["Ports", "render_config", "DEFAULT_PORTS", "MAX_REQUEST_SIZE", "METRICS_CONFIG"]

MAX_REQUEST_SIZE = 10 * 1024 * 1024
TOKEN_EXPIRATION_MIN = 30 * 24 * 60

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
# The keys only gate the shared API (tenants authenticate with their own tokens, revocable
# live), and an expired key refuses ALL inference until someone calls /token: 30 days.
disable_token_authorization=false
token_expiration_min=${token_expiration_min}
enable_model_api=false
# Models load only from the local model store (load_models names files, fetches no URL).
model_store=${model_store}
load_models=${load_models}
# TorchServe 0.12 has no switch for the workflow API: POST /workflows ignores enable_model_api
# and registers the workflow's models. It fetches archives from allowed_urls (none match) or
# reads them from workflow_store (default: the model store!): an empty directory leaves it
# nothing to register.
allowed_urls=${allowed_urls}
workflow_store=${workflow_store}
# No per-model pip installs, no env-var overrides of this file, no config snapshots.
install_py_dep_per_model=false
enable_envvars_config=false
# JSON bodies reach the handler undecoded: it parses them after authenticating the tenant
# (TorchServe's own decode runs before any handler and logs a traceback per malformed body).
decode_input_request=false
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
# A regex that matches no URL: nothing may be fetched (the model API is off anyway).
NO_URLS = "(?!)"
# Kept empty: TorchServeProcess creates <workdir>/no-workflows empty for each server.
EXAMPLE_WORKFLOW_STORE = "/srv/featurelock/no-workflows"
# TorchServe's defaults plus featurelock's series; without it the frontend drops our metrics.
METRICS_CONFIG = Path(str(files("featurelock.serve_config") / "metrics.yaml"))


def render_config(model_store: str | Path, models: list[str] | None = None,
                  ports: Ports = DEFAULT_PORTS, *, token_expiration_min: int = TOKEN_EXPIRATION_MIN,
                  max_request_size: int = MAX_REQUEST_SIZE, job_queue_size: int = 100,
                  metrics_config: str | Path = METRICS_CONFIG,
                  workflow_store: str | Path = EXAMPLE_WORKFLOW_STORE) -> str:
    """config.properties text. `models`: .mar file names in the store (None: all of them).
    `workflow_store` must be an empty directory (or none at all), never the model store."""
    store, workflows = Path(model_store).resolve(), Path(workflow_store).resolve()
    if workflows == store:
        raise ValueError("workflow_store must not be the model store: POST /workflows would "
                         "register the models there")
    return _TEMPLATE.substitute(
        inference_port=ports.inference, management_port=ports.management,
        metrics_port=ports.metrics, grpc_inference_port=ports.grpc_inference,
        grpc_management_port=ports.grpc_management, token_expiration_min=token_expiration_min,
        model_store=_escape(str(store)), allowed_urls=NO_URLS,
        load_models=",".join(models) if models else "all",
        max_request_size=max_request_size, job_queue_size=job_queue_size,
        metrics_config=_escape(str(metrics_config)),
        workflow_store=_escape(str(workflows)))


def _escape(value: str) -> str:
    """A Java .properties value: backslashes doubled (Properties.load un-escapes them)."""
    return value.replace("\\", "\\\\")
