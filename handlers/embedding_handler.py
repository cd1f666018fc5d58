"""The TorchServe handler: image in, tenant-encrypted embedding out.

Stages (never `handle`, which BaseHandler keeps; its per-batch switches are pinned off):

    initialize   read the `featurelock:` section, load EVERY tenant's keyset and token
                 verifier (refuse to load on any problem; warn per tenant whose primary key
                 uses a leaky scheme) and keep them live (`serving_state`: registry changes
                 apply within about a second), load the model on cuda:<gpu_id> or CPU
    preprocess   per request: refuse explain/describe requests (405), authenticate the
                 tenant, parse the body, decode the image (JPEG/PNG only); a failing
                 request gets its own 4xx and is left out of the batch
    inference    one forward pass over the valid requests
    postprocess  per request: FeatureProtector(tenant keyset).protect(row on its device) ->
                 binary envelope (application/octet-stream) or, with `Accept:
                 application/json`, the JSON envelope. Encryption failure -> 500, no features.

Requests carry `X-Featurelock-Tenant` and `X-Featurelock-Token` (plus TorchServe's own
`Authorization: Bearer <inference key>`). Missing -> 401, unknown tenant or wrong token -> 403.
`scheme: plaintext` serves raw features as JSON; only for baselines and attack comparisons.

BaseHandler.handle picks explain or describe for the WHOLE batch from request 0's headers
(`_is_explain`, `_is_describe`); one /explanations call would send every batch-mate down that
path (503s). Both are pinned to False here, and preprocess refuses such requests one by one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import torch
from ts.torch_handler.base_handler import BaseHandler

from featurelock.middleware import Context, Envelope, warm_kernels
from featurelock.middleware.errors import FeaturelockError
from featurelock.models.errors import ImageDecodeError
from featurelock.models.imaging import decode_image, preprocess

from .errors import NotServed, RequestError, ServerConfigError, error_body, public_error
from .metrics_bridge import NullRecorder, handler_metrics, outcome_of
from .request_parsing import (TENANT_HEADER, TOKEN_HEADER, header, image_bytes,
                              is_control_request, wants_json)
from .runners import load_runner
from .serving_config import ServingConfig
from .serving_state import load_protectors, watch_serving_state

__all__ = ["EmbeddingHandler", "load_protectors"]  # load_protectors: moved to serving_state

log = logging.getLogger(__name__)

BINARY = "application/octet-stream"
JSON = "application/json"


@dataclass
class _Item:
    tenant: str | None = None
    json: bool = False
    error: BaseException | None = None


@dataclass
class _Batch:
    items: list[_Item]
    valid: list[int] = field(default_factory=list)  # request indices in the model batch
    inputs: torch.Tensor | None = None
    features: torch.Tensor | None = None


def _detached(exc: BaseException) -> BaseException:
    """`exc` without traceback or chain, to keep on an item. A kept traceback holds the stage's
    frame, so the whole batch (bodies, images, tensors) sat in a reference cycle that only
    Python's rare full collections free: a soak saw the worker's RSS climb for minutes."""
    exc.__traceback__ = exc.__cause__ = exc.__context__ = None
    return exc


class EmbeddingHandler(BaseHandler):
    """See the module docstring. One response per request, always."""

    metrics = NullRecorder()  # featurelock.handlers.metrics_bridge; set in initialize

    def __init__(self) -> None:
        super().__init__()
        self._contexts: dict[str | None, Context] = {}  # per tenant: associated data built once

    def initialize(self, context: Any) -> None:
        props = context.system_properties
        self.config = ServingConfig.from_model_yaml(getattr(context, "model_yaml_config", None))
        self.profile = self.config.input_profile()
        registry_dir = os.environ.get(self.config.key_registry_env)
        if not registry_dir:
            raise ServerConfigError(f"no key registry: ${self.config.key_registry_env} is not set")
        self.metrics = handler_metrics(context, self.config.model, self.config.scheme)
        # Tokens and protectors, reloaded when the registry changes (no restart needed).
        self.registry = watch_serving_state(self.config, registry_dir, recorder=self.metrics)
        if self.config.plaintext:
            log.warning("featurelock: model %s serves PLAINTEXT features (scheme: plaintext); "
                        "use only for baselines and attack comparisons", self.config.model)
        else:
            # Compile (or load from cache) the bit-permutation kernel now, not on a request;
            # featurelock.kernels logs the one it chose.
            warm_kernels()
        model_path = Path(props["model_dir"]) / self.config.model_file
        self.runner = load_runner(model_path, self.config.backend, props.get("gpu_id"),
                                  self.profile, self.config.normalize)
        self.device = self.runner.device
        log.info("featurelock: serving %s v%s (%s on %s, scheme %s, %d tenants)",
                 self.config.model, self.config.version, self.config.backend, self.device,
                 self.config.scheme, len(self.registry.current().tokens.tenants()))
        self.initialized = True

    # -- BaseHandler's per-batch switches: never taken ------------------------------------
    def _is_explain(self) -> bool:
        return False  # decided per request in preprocess (NotServed), never per batch

    def _is_describe(self) -> bool:
        return False  # same: request 0's `describe: True` must not answer for its batch

    # -- stages ------------------------------------------------------------------------
    def preprocess(self, data: list) -> _Batch:
        self._batch_started = perf_counter()
        self.state = self.registry.current()  # one registry state per batch, even mid-reload
        batch = _Batch(items=[_Item() for _ in data])
        images = []
        for idx, request in enumerate(data):
            item = batch.items[idx]
            headers = self.context.get_all_request_header(idx)
            item.json = wants_json(headers)
            try:
                if is_control_request(headers):
                    raise NotServed("explain/describe request")
                item.tenant = self.state.tokens.authenticate(header(headers, TENANT_HEADER),
                                                             header(headers, TOKEN_HEADER))
                t = perf_counter()
                raw = image_bytes(request, self.config.max_body_bytes)
                images.append(decode_image(raw, self.profile, self.config.max_pixels))
                self.metrics.observe("decode", perf_counter() - t)
                batch.valid.append(idx)
            except (RequestError, ImageDecodeError) as exc:
                item.error = _detached(exc)
            except Exception as exc:  # this request fails alone (500); the batch goes on
                log.exception("request %d: unexpected error while decoding", idx)
                item.error = _detached(exc)
        log.info("featurelock batch: %d requests, %d valid", len(data), len(images))
        if images:
            t = perf_counter()
            batch.inputs = preprocess(np.stack(images), self.profile)
            self.metrics.observe("preprocess", perf_counter() - t)
        return batch

    def inference(self, batch: _Batch, *args: Any, **kwargs: Any) -> _Batch:
        if batch.inputs is not None:
            t = perf_counter()
            batch.features = self.runner(batch.inputs)
            self.metrics.observe("inference", perf_counter() - t)
        return batch

    def postprocess(self, batch: _Batch) -> list:
        rows = {idx: row for row, idx in enumerate(batch.valid)}
        features = batch.features
        if features is not None and features.device.type == "cpu":
            # One zero-copy view for the batch: numpy rows encrypt faster than tensor rows.
            # On a GPU the rows stay tensors, so ShuffleBits permutes them before the copy.
            features = features.detach().numpy()
        out: list = []
        for idx, item in enumerate(batch.items):
            if item.error is None and features is not None:
                try:
                    row = features[rows[idx]: rows[idx] + 1]
                    out.append(self._respond(idx, item, row))
                    continue
                except FeaturelockError as exc:  # EncryptionError: fail closed, no features
                    log.error("request %d: %s", idx, exc)
                    item.error = _detached(exc)
            out.append(self._error(idx, item.error or RuntimeError("no features")))
        for item, body in zip(batch.items, out):
            self.metrics.count(outcome_of(item.error))
            if item.error is None:
                self.metrics.add_bytes(len(body))
        self.metrics.observe("handler", perf_counter() - self._batch_started)
        return out

    # -- responses ---------------------------------------------------------------------
    def _respond(self, idx: int, item: _Item,
                 row: torch.Tensor | np.ndarray) -> bytes | bytearray | str:
        if self.config.plaintext:
            self.context.set_response_content_type(idx, JSON)
            t = perf_counter()
            host = row.detach().cpu().numpy() if isinstance(row, torch.Tensor) else row
            body = json.dumps({"features": host.tolist(), "shape": list(row.shape)})
            self.metrics.observe("serialise", perf_counter() - t)
            return body
        t = perf_counter()
        context = self._contexts.get(item.tenant)
        if context is None:
            context = Context(self.config.model, self.config.version, item.tenant or "")
            self._contexts[item.tenant] = context
        envelope = self.state.protectors[item.tenant].protect(row, context)
        self.metrics.observe("encrypt", perf_counter() - t)
        self.context.set_response_status(200, "OK", idx)
        if item.json:
            self.context.set_response_content_type(idx, JSON)
            t = perf_counter()
            body = Envelope.from_bytes(envelope).to_json()
            self.metrics.observe("serialise", perf_counter() - t)
            return body
        self.context.set_response_content_type(idx, BINARY)
        return envelope

    def _error(self, idx: int, exc: BaseException) -> str:
        status, phrase, message = public_error(exc)
        if status < 500:
            log.info("request %d rejected (%d): %s", idx, status, type(exc).__name__)
        self.context.set_response_status(status, phrase, idx)
        self.context.set_response_content_type(idx, JSON)
        return error_body(status, message)
