"""The TorchServe adapter: image in, tenant-encrypted embedding out.

The stages themselves are `featurelock.handlers.pipeline.ServingPipeline` (shared with the Ray
Serve and KServe adapters); this class maps TorchServe's context onto them:

    initialize   read the `featurelock:` section of model-config.yaml, load the pipeline (every
                 tenant's keyset and token verifier, kept live; the model on cuda:<gpu_id> or
                 the CPU) and the TorchServe metrics bridge
    preprocess   TorchServe's requests and headers -> pipeline.decode
    inference    pipeline.infer
    postprocess  pipeline.respond -> each request's status, content type and body

Requests carry `X-Featurelock-Tenant` and `X-Featurelock-Token` (plus TorchServe's own
`Authorization: Bearer <inference key>`). Missing -> 401, unknown tenant or wrong token -> 403.

BaseHandler.handle picks explain or describe for the WHOLE batch from request 0's headers
(`_is_explain`, `_is_describe`); one /explanations call would send every batch-mate down that
path (503s). Both are pinned to False here, and the pipeline refuses such requests one by one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ts.torch_handler.base_handler import BaseHandler

from .metrics_bridge import NullRecorder, handler_metrics
from .pipeline import Batch, Request, ServingPipeline
from .serving_config import ServingConfig
from .serving_state import load_protectors

__all__ = ["EmbeddingHandler", "load_protectors"]  # load_protectors: moved to serving_state

log = logging.getLogger(__name__)


class EmbeddingHandler(BaseHandler):
    """See the module docstring. One response per request, always."""

    metrics = NullRecorder()  # featurelock.handlers.metrics_bridge; set in initialize
    pipeline: ServingPipeline

    def initialize(self, context: Any) -> None:
        props = context.system_properties
        config = ServingConfig.from_model_yaml(getattr(context, "model_yaml_config", None))
        self.metrics = handler_metrics(context, config.model, config.scheme)
        self.pipeline = ServingPipeline.load(config, Path(props["model_dir"]) / config.model_file,
                                             props.get("gpu_id"), self.metrics)
        self.device = self.pipeline.device
        self.initialized = True

    # -- BaseHandler's per-batch switches: never taken ------------------------------------
    def _is_explain(self) -> bool:
        return False  # decided per request in the pipeline (NotServed), never per batch

    def _is_describe(self) -> bool:
        return False  # same: request 0's `describe: True` must not answer for its batch

    # -- stages ------------------------------------------------------------------------
    def preprocess(self, data: list) -> Batch:
        return self.pipeline.decode([Request(self.context.get_all_request_header(idx), request)
                                     for idx, request in enumerate(data)])

    def inference(self, batch: Batch, *args: Any, **kwargs: Any) -> Batch:
        return self.pipeline.infer(batch)

    def postprocess(self, batch: Batch) -> list:
        out = []
        for idx, response in enumerate(self.pipeline.respond(batch)):
            self.context.set_response_status(response.status, response.reason, idx)
            self.context.set_response_content_type(idx, response.content_type)
            out.append(response.body)
        return out
