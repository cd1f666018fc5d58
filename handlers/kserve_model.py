"""The KServe adapter: a custom predictor that runs the model AND encrypts, in one process.

The stages are `featurelock.handlers.pipeline.ServingPipeline` (shared with the TorchServe and
Ray Serve adapters); this class maps KServe's protocols onto them, so plaintext features never
cross a network hop (a KServe transformer in front of a third-party predictor would receive
them over the wire: see `kserve_transformer`).

    load         the pipeline: every tenant's keyset and token verifier, kept live; the model on
                 cuda:0 when asked for and available, else the CPU; featurelock's metrics on
                 the registry kserve's /metrics serves
    preprocess   v1 {"instances": [...]} or a v2 InferRequest -> one pipeline Request per image
                 (`kserve_protocol`), each with the HTTP headers (X-Featurelock-Tenant/-Token)
    predict      pipeline.decode -> infer -> respond, on a worker thread (never on the event loop)
    postprocess  the envelopes (or plaintext rows) in the request's protocol
    explain      never served: 405

Credentials come first: kserve_server's gate (`_kserve_app`) calls `authenticate` on the headers
before kserve reads the body, so a request without a valid token is a 401/403 whatever its
body holds. A KServe request is one client's atomic unit: if any image fails (401/403 from the tenant's
headers, 400/413/415 from an image) the whole request gets that status and no image is run
through the model; an encryption failure is a 500 with no features (fail closed). Statuses and
messages come from `errors.public_error` through the pipeline; `RefusedRequest` carries them to
kserve_server's exception handler (or, on a plain kserve ModelServer, to FastAPI's HTTPException
handler: same status, {"detail": message}).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from fastapi import HTTPException

from ._kserve_import import kserve  # first: shields sys.argv from kserve's import-time parse

Model = kserve.Model

from featurelock.middleware.metrics import PrometheusMetrics

from .errors import NotServed, RequestError, error_body, public_error
from .kserve_protocol import (ENVELOPE_OUTPUT, FEATURES_OUTPUT, IMAGE_INPUT, v1_body, v1_payloads,
                              v2_body, v2_payloads)
from .metrics_bridge import outcome_of
from .pipeline import Request, Response, ServingPipeline
from .serving_config import ServingConfig

__all__ = ["FeaturelockKServeModel", "RefusedRequest", "shared_metrics"]

log = logging.getLogger(__name__)

_metrics_lock = threading.Lock()
_metrics: PrometheusMetrics | None = None


def shared_metrics() -> PrometheusMetrics:
    """featurelock's series on prometheus_client's default registry, the one kserve's /metrics
    exposes; created once per process (a second registration of the names would fail)."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            _metrics = PrometheusMetrics()
        return _metrics


class RefusedRequest(HTTPException):
    """A refused request: HTTP status + the fixed public message, nothing else."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status_code=status, detail=message)
        self.message = message

    @property
    def body(self) -> str:
        return error_body(self.status_code, self.message)

    @classmethod
    def of(cls, exc: BaseException) -> "RefusedRequest":
        status, _, message = public_error(exc)
        return cls(status, message)

    @classmethod
    def from_response(cls, response: Response) -> "RefusedRequest":
        # The pipeline's error body is error_body(status, public message).
        return cls(response.status, json.loads(response.body)["error"])


@dataclass(frozen=True)
class _Call:
    """One KServe request as the pipeline sees it."""

    v2: bool
    requests: list[Request]
    request_id: str | None = None


class FeaturelockKServeModel(Model):
    """See the module docstring. `metrics`: where featurelock's series go (default:
    `shared_metrics()`); `use_gpu`: run on cuda:0 when CUDA is available."""

    def __init__(self, config: ServingConfig, model_path: str | Path, *, use_gpu: bool = False,
                 metrics: PrometheusMetrics | None = None) -> None:
        if not isinstance(config, ServingConfig):
            raise TypeError(f"config must be a ServingConfig, got {type(config).__name__}")
        super().__init__(config.model)
        self.config = config
        self.model_path = Path(model_path)
        self.use_gpu = use_gpu
        self.recorder = (metrics or shared_metrics()).recorder(config.model, config.scheme)
        self.pipeline: ServingPipeline | None = None

    def load(self) -> bool:
        import torch

        gpu_id = 0 if self.use_gpu and torch.cuda.is_available() else None
        self.pipeline = ServingPipeline.load(self.config, self.model_path, gpu_id, self.recorder)
        self.ready = True
        return self.ready

    def authenticate(self, headers: Mapping[str, str]) -> None:
        """Credentials before the body (kserve_server's gate calls this before a byte of it is
        read): RefusedRequest 401/403, counted, unless the headers hold a tenant's token.
        The pipeline checks again per image, against the state its batch is served with."""
        if self.pipeline is None:
            raise RuntimeError("model not loaded")
        try:
            self.pipeline.authenticate(headers)
        except RequestError as exc:
            self.recorder.count(outcome_of(exc))
            raise RefusedRequest.of(exc) from None

    # -- v2 metadata -------------------------------------------------------------------
    def get_input_types(self) -> list[dict]:
        return [{"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        if self.config.plaintext:
            return [{"name": FEATURES_OUTPUT, "datatype": "FP32", "shape": [-1, -1]}]
        return [{"name": ENVELOPE_OUTPUT, "datatype": "BYTES", "shape": [-1]}]

    # -- stages ------------------------------------------------------------------------
    def validate(self, payload: Any) -> Any:
        return payload  # preprocess checked the request's shape; kserve's checks expect dicts

    async def preprocess(self, payload: Any, headers: Mapping[str, str] | None = None) -> _Call:
        try:
            if hasattr(payload, "inputs"):  # an InferRequest: the v2 route
                payloads, v2, request_id = v2_payloads(payload), True, payload.id
            else:
                payloads, v2, request_id = v1_payloads(payload), False, None
        except RequestError as exc:
            self.recorder.count(outcome_of(exc))  # never reached the pipeline, still counted
            raise RefusedRequest.of(exc) from None
        # Binary envelopes always: the protocol carries them base64-encoded.
        kept = {k: v for k, v in (headers or {}).items() if k.lower() != "accept"}
        return _Call(v2, [Request(kept, p) for p in payloads], request_id)

    async def predict(self, payload: _Call, headers: Mapping[str, str] | None = None,
                      response_headers: dict | None = None) -> tuple[_Call, list[Response]]:
        if self.pipeline is None:
            raise RuntimeError("model not loaded")
        loop = asyncio.get_running_loop()
        responses = await loop.run_in_executor(None, self._serve, payload.requests)
        refused = next((r for r in responses if not r.ok), None)
        if refused is not None:
            raise RefusedRequest.from_response(refused)
        return payload, responses

    async def postprocess(self, result: tuple[_Call, list[Response]],
                          headers: Mapping[str, str] | None = None,
                          response_headers: dict | None = None) -> dict:
        call, responses = result
        plaintext = self.config.plaintext
        rows = [json.loads(r.body)["features"][0] if plaintext else r.body for r in responses]
        if call.v2:
            return v2_body(rows, plaintext, model=self.config.model, version=self.config.version,
                           request_id=call.request_id)
        return v1_body(rows, plaintext)

    async def explain(self, payload: Any, headers: Mapping[str, str] | None = None) -> dict:
        raise RefusedRequest.of(NotServed("explain"))

    # -- the pipeline, on a worker thread ----------------------------------------------
    def _serve(self, requests: list[Request]) -> list[Response]:
        pipeline = self.pipeline
        assert pipeline is not None
        batch = pipeline.decode(requests)
        if not batch.refuse_whole():
            pipeline.infer(batch)
        return pipeline.respond(batch)

