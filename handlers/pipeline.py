"""The one serving pipeline every engine runs: authenticate → decode → preprocess → model → protect.

    pipeline = ServingPipeline.load(config, model_path, gpu_id, metrics)
    responses = pipeline.serve([Request(headers, {"body": image_bytes}), ...])

An engine adapter (the TorchServe handler, the Ray Serve deployment, the KServe model) only
turns its requests into `Request`s and writes the `Response`s back in its own terms; the
stages, the errors, the metrics and the fail-closed rule live here once. A request that fails
gets its own 4xx/5xx `Response` and is left out of the model batch: one response per request,
always, in order.

    decode    per request: refuse explain/describe requests (405), authenticate the tenant
              (401/403), take the body (raw bytes or {"image": base64}), decode JPEG/PNG only
              (PNG at the profile's size only for a model trained on disguised images);
              then one preprocess over the valid images
    infer     one forward pass (TorchScript or ONNX, `runners`), then the profile's output
              rule (L2 rows for `output: l2`), the same on every backend
    craft     `scheme: crafter` only, the last step of `infer` (so every engine adapter gets it
              unchanged): the crafting network over the batch's features. Any failure drops
              the batch's features and answers 500: plaintext never leaves the worker.
    respond   per request: the tenant's protector -> binary envelope, or the JSON envelope for
              `Accept: application/json`; `scheme: plaintext` answers JSON floats (baselines
              only), `scheme: crafter` JSON floats marked {"scheme": "crafter", "beta": B}.
              An encryption failure answers 500 with no features.

The registry state (tokens and protectors) is read once per batch, so a batch that straddles a
key change is served entirely by one state.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Mapping, Protocol

import numpy as np
import torch

from featurelock.middleware import Context, Envelope, warm_kernels
from featurelock.middleware.errors import FeaturelockError
from featurelock.middleware.metrics import NullRecorder, Recorder
from featurelock.models.errors import ImageDecodeError, ModelError
from featurelock.models.imaging import decode_image, preprocess

from .errors import (CraftingError, NotServed, RequestError, ServerConfigError, error_body,
                     public_error)
from .metrics_bridge import outcome_of
from .request_parsing import (TENANT_HEADER, TOKEN_HEADER, header, image_bytes,
                              is_control_request, wants_json)
from .runners import load_runner, probe
from .serving_config import CRAFTER, ServingConfig
from .serving_state import ServingState, watch_serving_state

__all__ = ["BINARY", "JSON", "Request", "Response", "Batch", "ServingPipeline"]

log = logging.getLogger(__name__)

BINARY = "application/octet-stream"
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """One client request. `payload` has TorchServe's shape: {"body": bytes} for image bytes,
    or {"body": {"image": "<base64>"}} for a decoded JSON document."""

    headers: Mapping[str, Any] | None
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    content_type: str
    body: bytes | bytearray | str
    outcome: str  # featurelock_requests_total's label: ok, bad_input, unauthenticated, ...

    @property
    def ok(self) -> bool:
        return self.status == 200


class StateSource(Protocol):
    """A RegistryWatcher[ServingState], or anything else that hands out the current state."""

    def current(self) -> ServingState: ...


@dataclass
class _Item:
    tenant: str | None = None
    json: bool = False
    error: BaseException | None = None


@dataclass
class Batch:
    """One batch between the stages."""

    state: ServingState
    items: list[_Item]
    started: float
    valid: list[int] = field(default_factory=list)  # request indices in the model batch
    inputs: torch.Tensor | None = None
    features: torch.Tensor | None = None

    def refuse_whole(self) -> bool:
        """For engines whose request is one client's atomic unit (KServe): if any request of
        the batch failed, give its error to every request and empty the model batch, so
        nothing runs through the model and each is counted with that outcome. True if so."""
        first = next((item.error for item in self.items if item.error is not None), None)
        if first is None:
            return False
        for item in self.items:
            if item.error is None:
                item.error = first
        self.valid.clear()
        self.inputs = None
        return True


def _detached(exc: BaseException) -> BaseException:
    """`exc` without traceback or chain, to keep on an item. A kept traceback holds the stage's
    frame, so the whole batch (bodies, images, tensors) sat in a reference cycle that only
    Python's rare full collections free: a soak saw the worker's RSS climb for minutes."""
    exc.__traceback__ = exc.__cause__ = exc.__context__ = None
    return exc


class ServingPipeline:
    """See the module docstring. `registry`: the live ServingState; `runner`: features of a
    preprocessed batch; `metrics`: any featurelock Recorder; `crafter`: features -> crafted
    features, required by (and only for) `scheme: crafter`."""

    def __init__(self, config: ServingConfig, registry: StateSource, runner: Any,
                 metrics: Recorder | None = None, crafter: Any = None) -> None:
        if (config.scheme == CRAFTER) != (crafter is not None):
            raise ServerConfigError("a crafting network is required by scheme crafter and "
                                    "only by it")
        self.crafter = crafter
        self.config = config
        self.profile = config.input_profile()
        self.registry = registry
        self.runner = runner
        self.metrics = metrics or NullRecorder()
        self._contexts: dict[str | None, Context] = {}  # per tenant: associated data built once

    @classmethod
    def load(cls, config: ServingConfig, model_path: str | Path, gpu_id: int | str | None = None,
             metrics: Recorder | None = None) -> "ServingPipeline":
        """Keys from the registry named by the environment (refuse to start on any problem,
        then follow its changes), the model file on cuda:<gpu_id> or the CPU."""
        registry_dir = os.environ.get(config.key_registry_env)
        if not registry_dir:
            raise ServerConfigError(f"no key registry: ${config.key_registry_env} is not set")
        registry = watch_serving_state(config, registry_dir, recorder=metrics)
        crafter = None
        if config.plaintext:
            log.warning("featurelock: model %s serves PLAINTEXT features (scheme: plaintext); "
                        "use only for baselines and attack comparisons", config.model)
        elif config.scheme == CRAFTER:
            crafter = load_crafter(config, Path(model_path).parent)
        else:
            # Compile (or load from cache) the bit-permutation kernel now, not on a request;
            # featurelock.kernels logs the one it chose.
            warm_kernels()
        profile = config.input_profile()
        runner = load_runner(model_path, config.backend, gpu_id, profile)
        try:  # a model that does not fit its profile never reports ready
            dim = probe(runner, profile, f"model {config.model}", config.output_dim)
        except ModelError as exc:
            raise ServerConfigError(str(exc)) from None
        log.info("featurelock: serving %s v%s (%s on %s, profile %s, %d-d, output %s, "
                 "scheme %s, %d tenants)", config.model, config.version, config.backend,
                 runner.device, profile.name, dim, profile.output, config.scheme,
                 len(registry.current().tokens.tenants()))
        return cls(config, registry, runner, metrics, crafter)

    @property
    def device(self) -> torch.device:
        return getattr(self.runner, "device", torch.device("cpu"))

    def authenticate(self, headers: Mapping[str, Any] | None) -> str:
        """The tenant whose token `headers` hold (MissingCredentials / Forbidden otherwise).
        Adapters that read the body themselves call this first: credentials before the body.
        `decode` checks again, against the state its batch is served with."""
        return self.registry.current().tokens.authenticate(
            header(headers, TENANT_HEADER), header(headers, TOKEN_HEADER))

    # -- stages ------------------------------------------------------------------------
    def serve(self, requests: list[Request]) -> list[Response]:
        return self.respond(self.infer(self.decode(requests)))

    def decode(self, requests: list[Request]) -> Batch:
        started = perf_counter()
        # One registry state per batch, even mid-reload.
        batch = Batch(self.registry.current(), [_Item() for _ in requests], started)
        images = []
        for idx, request in enumerate(requests):
            item = batch.items[idx]
            item.json = wants_json(request.headers)
            try:
                if is_control_request(request.headers):
                    raise NotServed("explain/describe request")
                item.tenant = batch.state.tokens.authenticate(
                    header(request.headers, TENANT_HEADER), header(request.headers, TOKEN_HEADER))
                t = perf_counter()
                raw = image_bytes(request.payload, self.config.max_body_bytes)
                images.append(decode_image(raw, self.profile, self.config.max_pixels,
                                           exact_png=self.config.disguise is not None))
                self.metrics.observe("decode", perf_counter() - t)
                batch.valid.append(idx)
            except (RequestError, ImageDecodeError) as exc:
                item.error = _detached(exc)
            except Exception as exc:  # this request fails alone (500); the batch goes on
                log.exception("request %d: unexpected error while decoding", idx)
                item.error = _detached(exc)
        log.info("featurelock batch: %d requests, %d valid", len(requests), len(images))
        if images:
            t = perf_counter()
            batch.inputs = preprocess(np.stack(images), self.profile)
            self.metrics.observe("preprocess", perf_counter() - t)
        return batch

    def infer(self, batch: Batch) -> Batch:
        if batch.inputs is not None:
            t = perf_counter()
            batch.features = self.runner(batch.inputs)
            self.metrics.observe("inference", perf_counter() - t)
        return self.craft(batch)

    def craft(self, batch: Batch) -> Batch:
        """Crafter models: replace the batch's features by crafted ones, or by none at all."""
        if self.crafter is None or batch.features is None:
            return batch
        t = perf_counter()
        try:
            with torch.inference_mode():
                crafted = self.crafter(batch.features.float())
            if crafted.shape != batch.features.shape or not torch.isfinite(crafted).all():
                raise CraftingError("crafted features have the wrong shape or are not finite")
        except Exception as exc:  # fail closed: whatever went wrong, plaintext is dropped
            log.error("crafting failed for a batch of %d (%s)", len(batch.valid),
                      type(exc).__name__)
            batch.features = None
            for idx in batch.valid:
                batch.items[idx].error = _detached(CraftingError("crafting failed"))
            batch.valid.clear()
            return batch
        batch.features = crafted
        self.metrics.observe("craft", perf_counter() - t)
        return batch

    def respond(self, batch: Batch) -> list[Response]:
        rows = {idx: row for row, idx in enumerate(batch.valid)}
        features = batch.features
        if features is not None and features.device.type == "cpu":
            # One zero-copy view for the batch: numpy rows encrypt faster than tensor rows.
            # On a GPU the rows stay tensors, so ShuffleBits permutes them before the copy.
            features = features.detach().numpy()
        out: list[Response] = []
        for idx, item in enumerate(batch.items):
            if item.error is None and features is not None:
                try:
                    row = features[rows[idx]: rows[idx] + 1]
                    out.append(self._features(batch.state, item, row))
                    continue
                except FeaturelockError as exc:  # EncryptionError: fail closed, no features
                    log.error("request %d: %s", idx, exc)
                    item.error = _detached(exc)
            out.append(self._error(item.error or RuntimeError("no features"), idx))
        for response in out:
            self.metrics.count(response.outcome)
            if response.ok:
                self.metrics.add_bytes(len(response.body))
        self.metrics.observe("handler", perf_counter() - batch.started)
        return out

    # -- responses ---------------------------------------------------------------------
    def _features(self, state: ServingState, item: _Item,
                  row: torch.Tensor | np.ndarray) -> Response:
        t = perf_counter()
        if self.config.keyless:
            host = row.detach().cpu().numpy() if isinstance(row, torch.Tensor) else row
            doc: dict[str, Any] = {"features": host.tolist(), "shape": list(row.shape)}
            if self.config.scheme == CRAFTER:  # readable, but say what was done to them
                doc |= {"scheme": CRAFTER, "beta": self.config.beta}
            body = json.dumps(doc)
            self.metrics.observe("serialise", perf_counter() - t)
            return Response(200, "OK", JSON, body, "ok")
        context = self._contexts.get(item.tenant)
        if context is None:
            context = Context(self.config.model, self.config.version, item.tenant or "")
            self._contexts[item.tenant] = context
        envelope = state.protectors[item.tenant].protect(row, context)
        self.metrics.observe("encrypt", perf_counter() - t)
        if not item.json:
            return Response(200, "OK", BINARY, envelope, "ok")
        t = perf_counter()
        body = Envelope.from_bytes(envelope).to_json()
        self.metrics.observe("serialise", perf_counter() - t)
        return Response(200, "OK", JSON, body, "ok")

    def reject(self, exc: BaseException) -> Response:
        """The response to a request an adapter refuses before the pipeline (e.g. a body over
        the limit while it streams in), counted like any other."""
        response = self._error(exc)
        self.metrics.count(response.outcome)
        return response

    def _error(self, exc: BaseException, idx: int = 0) -> Response:
        status, phrase, message = public_error(exc)
        if status < 500:
            log.info("request %d rejected (%d): %s", idx, status, type(exc).__name__)
        return Response(status, phrase, JSON, error_body(status, message), outcome_of(exc))


def load_crafter(config: ServingConfig, model_dir: Path) -> Any:
    """The CraftNet named by the config, from beside the model file; its beta must be the
    configured one (a file distilled for another trade-off is refused)."""
    from featurelock.models.crafter.files import load_craftnet
    from featurelock.models.errors import ModelError

    name = Path(config.crafter_file).name  # no paths out of the model directory
    try:
        net = load_craftnet(model_dir / name)
    except ModelError as exc:
        raise ServerConfigError(f"crafter_file: {exc}") from None
    if abs(float(net.beta) - float(config.beta or 0.0)) > 1e-6:
        raise ServerConfigError(f"crafter_file {name} was distilled for beta {float(net.beta):g}, "
                                f"the config says {config.beta:g}")
    return net
