"""kserve 0.21's ModelServer, held to featurelock's rules (see `kserve_server`'s docstring).

    FeaturelockModelServer(host=..., http_port=..., max_request_bytes=...).start([models])

Private: imported by `kserve_server` when it serves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from ._kserve_import import kserve  # noqa: F401  first: shields sys.argv from kserve's parse
from kserve import ModelServer  # noqa: E402
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import InferenceError, InvalidInput
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer
from starlette.responses import Response

from .errors import BadInput, NotServed, PayloadTooLarge
from .kserve_model import RefusedRequest

__all__ = ["FeaturelockModelServer"]

log = logging.getLogger("featurelock.handlers.kserve_server")

def _answer(refused: RefusedRequest) -> Response:
    return Response(refused.body, status_code=refused.status_code, media_type="application/json")


async def _refused(_: Any, exc: RefusedRequest) -> Response:
    return _answer(exc)


async def _bad_request(_: Any, exc: Exception) -> Response:
    # kserve's InvalidInput text and FastAPI's 422 details echo parser output: fixed text instead.
    log.info("request rejected (400): %s", type(exc).__name__)
    return _answer(RefusedRequest.of(BadInput()))


async def _internal(_: Any, exc: Exception) -> Response:
    log.error("unexpected %s while serving a request", type(exc).__name__, exc_info=exc)
    return _answer(RefusedRequest.of(exc))  # 500 "internal error", whatever exc says


class _BodyLimit:
    """413 for a body over `max_bytes`: on Content-Length before reading, and while reading
    (chunked bodies have no length)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await _answer(RefusedRequest.of(PayloadTooLarge()))(scope, receive, send)
                return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # raised inside the route: ExceptionMiddleware answers
                    raise RefusedRequest.of(PayloadTooLarge())
            return message

        await self.app(scope, limited, send)


class _NoRepositoryChanges(ModelRepositoryExtension):
    """The v2 model repository API takes no credentials: any client could unload a model."""

    async def load(self, model_name: str) -> None:
        raise RefusedRequest.of(NotServed("repository load"))

    async def unload(self, model_name: str) -> None:
        raise RefusedRequest.of(NotServed("repository unload"))


class _RESTServer(RESTServer):
    def __init__(self, *args: Any, host: str, max_request_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.host = host  # kserve passes "0.0.0.0"; uvicorn reads it when serving starts
        self.max_request_bytes = max_request_bytes

    def create_application(self) -> None:
        super().create_application()
        from uvicorn.importer import import_from_string

        app: FastAPI = import_from_string(FASTAPI_APP_IMPORT_STRING)
        # After kserve's own handlers, so these replace its text-echoing ones.
        app.add_exception_handler(RefusedRequest, _refused)
        for exc_class in (InvalidInput, RequestValidationError):
            app.add_exception_handler(exc_class, _bad_request)
        for exc_class in (InferenceError, Exception):
            app.add_exception_handler(exc_class, _internal)
        app.add_middleware(_BodyLimit, max_bytes=self.max_request_bytes)


class FeaturelockModelServer(ModelServer):
    """One HTTP server (no gRPC, no worker processes) on `host`."""

    def __init__(self, *, host: str, http_port: int, max_request_bytes: int,
                 grace_period: int = 5) -> None:
        super().__init__(http_port=http_port, enable_grpc=False, workers=1,
                         enable_docs_url=False, grace_period=grace_period)
        self.host = host
        self.max_request_bytes = max_request_bytes
        self.model_repository_extension = _NoRepositoryChanges(self.registered_models)

    def start(self, models: list) -> None:
        # ModelServer.start, less gRPC and multiprocessing, with our RESTServer.
        self._register_and_check_atleast_one_model_is_ready(models)
        self._rest_server = _RESTServer(
            FASTAPI_APP_IMPORT_STRING, self.dataplane, self.model_repository_extension,
            self.http_port, host=self.host, max_request_bytes=self.max_request_bytes,
            access_log_format=self.access_log_format, workers=1, grace_period=self.grace_period,
            event_loop=self.event_loop, timeout_keep_alive=self.timeout_keep_alive,
            ssl_certfile=self.ssl_certfile, ssl_keyfile=self.ssl_keyfile)
        self.servers.append(self._rest_server.start())
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())
