"""Run featurelock models on a KServe ModelServer, held to loopback (tests, CLI, containers).

    with KServeProcess([(config, model_path)], env={"FEATURELOCK_KEY_REGISTRY": ...,
                       "FEATURELOCK_KEK": "file:/..."}, workdir=tmp) as ks:
        ks.url          # http://127.0.0.1:<port>: /v1/models/<m>:predict, /v2/models/<m>/infer
        ks.metrics_url  # kserve's own /metrics, with featurelock's series

    python -m featurelock.handlers.kserve_server --model-dir EXPORT --scheme S --name N [--port P]
    serve_kserve(model_dir, scheme, name, ...)           # the same, in this process (blocks)

What kserve 0.21's ModelServer does not do, and this module adds:

* Loopback: its RESTServer hardcodes uvicorn's host to "0.0.0.0". `_RESTServer` sets it to
  `host` (127.0.0.1 unless asked) before serving. gRPC is not offered at all: its GRPCServer
  binds "[::]" with no way to change it.
* Statuses: kserve's exception handlers can express only 400 (InvalidInput), 404, 500, 501 and
  503, and put exception text in the body (the catch-all sends "Type : message"). Here the
  model's `RefusedRequest` (401/403/405/413/415/...) is answered with `error_body`, and
  kserve's own 400/500 cases, FastAPI's 422 validation errors and anything unexpected get
  `public_error`'s fixed messages.
* A request body limit (413), checked on Content-Length and while reading: kserve reads any
  body whole.
* No model repository changes: `/v2/repository/models/<m>/load|unload` take no credentials, so
  any client could unload a model; both answer 405.

Keys reach the server only through the environment (FEATURELOCK_KEY_REGISTRY: a directory,
FEATURELOCK_KEK: a KEK URI), never as arguments or files written here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Sequence

from featurelock.middleware.errors import FeaturelockError

from .errors import ServingError
from .serving_config import ServingConfig

__all__ = ["KServeProcess", "KServeStartError", "serve_kserve", "serve_models", "main",
           "LOOPBACK", "request_limit"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_SPEC_FILE = "featurelock-kserve-models.json"
_LOG_FILE = "kserve.out"


class KServeStartError(ServingError):
    """The KServe model server could not be started, or did not become ready."""


def request_limit(configs: Sequence[ServingConfig]) -> int:
    """The largest request body accepted: one image at the largest max_body_bytes, base64
    encoded, plus room for the JSON around it and small images beside it."""
    return max(c.max_body_bytes for c in configs) * 4 // 3 + (1 << 20)


# -- in this process --------------------------------------------------------------------------
def serve_models(models: Sequence[tuple[ServingConfig, Path]], *, port: int = 8080,
                 host: str = LOOPBACK, use_gpu: bool = False,
                 max_request_bytes: int | None = None, grace_period: int = 5) -> None:
    """Load every model (refuse to start on any problem), then serve until SIGTERM/SIGINT."""
    if not models:
        raise KServeStartError("no models to serve")
    if host != LOOPBACK:
        log.warning("featurelock: KServe listens on %s, not loopback: put TLS or a mesh in front",
                    host)
    from ._kserve_app import FeaturelockModelServer
    from .kserve_model import FeaturelockKServeModel

    loaded = []
    for config, path in models:
        model = FeaturelockKServeModel(config, path, use_gpu=use_gpu)
        model.load()
        loaded.append(model)
    limit = max_request_bytes or request_limit([c for c, _ in models])
    server = FeaturelockModelServer(host=host, http_port=port, max_request_bytes=limit,
                                    grace_period=grace_period)
    server.start(loaded)


def serve_kserve(model_dir: str | Path, scheme: str, name: str, version: str = "1",
                 port: int = 8080, *, host: str = LOOPBACK, backend: str | None = None,
                 serving: dict[str, Any] | None = None, use_gpu: bool = False,
                 profile: Any = None) -> None:
    """Serve one exported model (an export directory, or a model file with `profile`) on
    KServe, in this process, until SIGTERM/SIGINT. `serving`: extra featurelock keys
    (key_registry_env, kek_env, max_body_bytes, max_pixels, output_dim). The model is test-run
    on its profile before the server starts (ProfileError on a mismatch)."""
    from .packaging import check_model, resolve_model, serving_config

    source = resolve_model(model_dir, backend, profile)
    dim = check_model(source, (serving or {}).get("output_dim"))
    config = serving_config(source, scheme, name, version, {**(serving or {}), "output_dim": dim})
    serve_models([(config, source.model_file)], port=port, host=host, use_gpu=use_gpu)


# -- in a subprocess --------------------------------------------------------------------------
class KServeProcess:
    """A KServe model server in its own process group on a free loopback port; a context
    manager that starts it and always stops it. `env`: added to this process's environment
    (registry directories and KEK URIs, never key bytes). Logs go to <workdir>/logs."""

    def __init__(self, models: Sequence[tuple[ServingConfig, Path]], *, env: Mapping[str, str],
                 workdir: Path, port: int | None = None, startup_timeout: float = 120.0,
                 use_gpu: bool = False) -> None:
        if not models:
            raise KServeStartError("no models to serve")
        for config, _ in models:
            if not isinstance(config, ServingConfig):
                raise TypeError(f"models must hold ServingConfigs, got {type(config).__name__}")
        self.models = [(config, Path(path).resolve()) for config, path in models]
        self.env_overrides = dict(env)
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.startup_timeout = startup_timeout
        self.use_gpu = use_gpu
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise KServeStartError("not started")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def model_names(self) -> list[str]:
        return [config.model for config, _ in self.models]

    def logs(self) -> str:
        path = self.log_dir / _LOG_FILE
        return path.read_text(errors="replace") if path.is_file() else ""

    def __enter__(self) -> "KServeProcess":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "KServeProcess":
        from .server import PGID_FILE, free_ports

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        if self.port is None:
            self.port = free_ports(1)[0]
        spec = self.workdir / _SPEC_FILE
        spec.write_text(json.dumps({"models": [
            {"featurelock": config.to_yaml_section(), "model_path": str(path)}
            for config, path in self.models]}), encoding="utf-8")
        cmd = [sys.executable, "-m", "featurelock.handlers.kserve_server", "--config", str(spec),
               "--port", str(self.port), "--host", LOOPBACK]
        if self.use_gpu:
            cmd.append("--gpu")
        env = {**os.environ, **self.env_overrides, "PYTHONUNBUFFERED": "1"}
        with open(self.log_dir / _LOG_FILE, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        (self.workdir / PGID_FILE).write_text(f"{self.proc.pid}\n")
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        from .server import stop_workdir

        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_workdir(self.workdir, timeout)  # SIGTERM to the group, then SIGKILL
        proc.poll()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        paths = ["/v2/health/ready", *(f"/v2/models/{m}/ready" for m in self.model_names())]
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise KServeStartError(f"the KServe model server exited; see "
                                       f"{self.log_dir / _LOG_FILE}")
            if all(self._ok(p) for p in paths):
                return
            time.sleep(0.2)
        raise KServeStartError(f"KServe not ready within {self.startup_timeout:.0f}s; see "
                               f"{self.log_dir / _LOG_FILE}")

    def _ok(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.HTTPError):
            return False


# -- command line ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m featurelock.handlers.kserve_server",
                                description="Serve featurelock models on a KServe ModelServer.")
    one = p.add_argument_group("one model")
    one.add_argument("--model-dir", type=Path, help="export directory or model file")
    one.add_argument("--scheme", help="a featurelock scheme, or plaintext (baselines only)")
    one.add_argument("--name", help="model name (in the URL and bound into every envelope)")
    one.add_argument("--version", default="1")
    one.add_argument("--backend", choices=("torchscript", "onnx"), default=None)
    one.add_argument("--profile", default=None, metavar="NAME|FILE",
                     help="input profile of a bare model file (built-in name, zoo model name, "
                          ".yaml/.json file)")
    one.add_argument("--key-registry-env", default=None,
                     help="env var naming the key registry (default FEATURELOCK_KEY_REGISTRY)")
    one.add_argument("--kek-env", default=None,
                     help="env var holding the KEK URI (default FEATURELOCK_KEK)")
    p.add_argument("--config", type=Path,
                   help='JSON {"models": [{"featurelock": {...}, "model_path": ...}]} '
                        "(written by KServeProcess); instead of the one-model options")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default=LOOPBACK,
                   help="listen address (default 127.0.0.1; 0.0.0.0 only behind TLS or a mesh)")
    p.add_argument("--gpu", action="store_true", help="run on cuda:0 when CUDA is available")
    return p


def _models_from_spec(path: Path) -> list[tuple[ServingConfig, Path]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return [(ServingConfig.from_model_yaml({"featurelock": m["featurelock"]}),
             Path(m["model_path"])) for m in doc["models"]]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # kserve is imported later, through _kserve_import
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.config is not None:
            serve_models(_models_from_spec(args.config), port=args.port, host=args.host,
                         use_gpu=args.gpu)
            return 0
        if not (args.model_dir and args.scheme and args.name):
            raise SystemExit("kserve_server: give --config, or --model-dir, --scheme and --name")
        serving = {k: v for k, v in (("key_registry_env", args.key_registry_env),
                                     ("kek_env", args.kek_env)) if v}
        serve_kserve(args.model_dir, args.scheme, args.name, args.version, args.port,
                     host=args.host, backend=args.backend, serving=serving, use_gpu=args.gpu,
                     profile=args.profile)
        return 0
    except FeaturelockError as exc:  # ServerConfigError, PackageError, ...: one line, no traceback
        print(f"kserve_server: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
