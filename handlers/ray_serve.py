"""The Ray Serve adapter: featurelock's serving pipeline as one Ray Serve deployment per model.

    from ray import serve
    app = featurelock_app(RayModel.from_export("export/", "aes-256-gcm", "reid"), RayOptions())
    serve.run(app, name="reid", route_prefix="/predictions/reid")

or, Ray Serve's own way (`serve run`, `serve deploy`, KubeRay's RayService):
`import_path: featurelock.handlers.ray_serve:build_app` with `args` (serve_config/ray-serve.yaml).

Clients POST to `/predictions/<model>` exactly as on TorchServe (same headers, bodies, envelopes
and statuses), without TorchServe's inference key: the tenant token is the credential.

Each replica runs `ServingPipeline` (authenticate → decode → preprocess → model → protect) on
dynamic batches (`serve.batch`). Keys never travel through Ray: a replica's arguments are the
model's `featurelock:` section and the model file's path, both free of secrets, and the replica
loads the key registry itself under the KEK, from its NODE's environment
(FEATURELOCK_KEY_REGISTRY, FEATURELOCK_KEK: a path and a URI, set where `ray start` runs, or in
the KubeRay pod spec from Secrets). Keysets refuse to be pickled, so none can reach the object
store by accident. The registry is followed live, as on TorchServe.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ray import serve
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from .errors import BadInput, PayloadTooLarge, RequestError
from .pipeline import JSON, Request, Response, ServingPipeline
from .serving_config import ServingConfig

__all__ = ["RayModel", "RayOptions", "FeaturelockDeployment", "featurelock_app", "build_app",
           "NODE_HEADER"]

log = logging.getLogger(__name__)

NODE_HEADER = "X-Featurelock-Node"  # only with RayOptions(identify_node=True)


@dataclass(frozen=True)
class RayModel:
    """What a replica serves: the `featurelock:` section and the model file (a path every node
    can read: a shared volume or the container image). No keys."""

    config: ServingConfig
    model_path: str

    @classmethod
    def from_export(cls, model_dir: str | Path, scheme: str, name: str, version: str = "1",
                    backend: str | None = None, profile: Any = None,
                    **serving: Any) -> "RayModel":
        """An export directory, or a bare model file with `profile` (name, file or
        InputProfile); test-run here, before any replica starts (ProfileError on a mismatch)."""
        from .packaging import check_model, resolve_model, serving_config

        source = resolve_model(model_dir, backend, profile)
        dim = check_model(source, serving.get("output_dim"))
        config = serving_config(source, scheme, name, version, {**serving, "output_dim": dim})
        return cls(config, str(source.model_file.resolve()))


@dataclass(frozen=True)
class RayOptions:
    """Replicas, resources and batching of one model's deployment."""

    num_replicas: int = 1
    autoscaling: Mapping[str, Any] | None = None  # min_replicas, max_replicas,
    #                                                target_ongoing_requests, ...: replaces
    #                                                num_replicas when given
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.005
    max_ongoing_requests: int = 32
    identify_node: bool = False  # answer with the replica's Ray node id (tests, debugging)
    extra: Mapping[str, Any] = field(default_factory=dict)  # any other serve.deployment option

    def deployment_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "max_ongoing_requests": self.max_ongoing_requests, **self.extra}
        if self.autoscaling:
            options["autoscaling_config"] = dict(self.autoscaling)
        else:
            options["num_replicas"] = self.num_replicas
        return options


async def _read_body(request: HttpRequest, limit: int) -> bytes:
    """The body, or PayloadTooLarge as soon as it passes `limit` (never buffered past it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge("body too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _payload(body: bytes, content_type: str) -> dict[str, Any]:
    """TorchServe's request shape: JSON documents decoded, anything else as bytes."""
    if content_type.split(";")[0].strip().lower() != JSON:
        return {"body": body}
    try:
        return {"body": json.loads(body)}
    except (ValueError, UnicodeDecodeError):
        raise BadInput("malformed JSON body") from None


class FeaturelockDeployment:
    """One replica. Arguments are plain values (pickled by Ray, visible in its dashboard):
    never keys, never tokens."""

    def __init__(self, section: dict[str, Any], model_path: str, max_batch_size: int = 8,
                 batch_wait_timeout_s: float = 0.005, identify_node: bool = False) -> None:
        import ray

        from .ray_metrics import RayMetrics

        config = ServingConfig.from_model_yaml({"featurelock": section})
        gpu_id = 0 if ray.get_gpu_ids() else None  # Ray sets CUDA_VISIBLE_DEVICES per replica
        metrics = RayMetrics(config.model, config.scheme).start()
        self.pipeline = ServingPipeline.load(config, model_path, gpu_id, metrics)
        # JSON bodies carry the image in base64: 4/3 of the byte limit, plus the wrapper.
        self._body_limit = config.max_body_bytes * 4 // 3 + 64
        self._node = ray.get_runtime_context().get_node_id() if identify_node else None
        self._batch.set_max_batch_size(max_batch_size)
        self._batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    async def __call__(self, http: HttpRequest) -> HttpResponse:
        try:
            self.pipeline.authenticate(http.headers)  # credentials before reading the body
            body = await _read_body(http, self._body_limit)
            request = Request(http.headers, _payload(body, http.headers.get("content-type", "")))
        except RequestError as exc:  # 401/403, then 413 or malformed JSON
            response = self.pipeline.reject(exc)
        else:
            try:
                response = await self._batch(request)
            except Exception as exc:  # never Ray's own 500 page: it carries the traceback
                log.exception("featurelock: a batch failed")
                response = self.pipeline.reject(exc)
        headers = {NODE_HEADER: self._node} if self._node else None
        return HttpResponse(bytes(response.body) if not isinstance(response.body, str)
                            else response.body, status_code=response.status,
                            media_type=response.content_type, headers=headers)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _batch(self, requests: list[Request]) -> list[Response]:
        # In a thread: the replica's event loop keeps reading the next batch meanwhile.
        return await asyncio.to_thread(self.pipeline.serve, requests)


def featurelock_app(model: RayModel, options: RayOptions = RayOptions()) -> serve.Application:
    """The Serve application of one model (bind it under route /predictions/<model>)."""
    deployment = serve.deployment(FeaturelockDeployment, name=model.config.model,
                                  **options.deployment_options())
    return deployment.bind(model.config.to_yaml_section(), model.model_path,
                           options.max_batch_size, options.batch_wait_timeout_s,
                           options.identify_node)


def build_app(args: dict[str, Any]) -> serve.Application:
    """Ray Serve's application builder (`import_path: featurelock.handlers.ray_serve:build_app`).

    args: model_dir, scheme, name, version (default "1"), backend (default: the export's),
          profile (required for a bare model file), serving (extra featurelock keys), and any
          RayOptions field.
    """
    args = dict(args)
    model = RayModel.from_export(args.pop("model_dir"), args.pop("scheme"), args.pop("name"),
                                 str(args.pop("version", "1")), args.pop("backend", None),
                                 args.pop("profile", None), **(args.pop("serving", None) or {}))
    known = set(RayOptions.__dataclass_fields__)
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"unknown featurelock Ray options: {', '.join(sorted(unknown))}")
    return featurelock_app(model, RayOptions(**args))
