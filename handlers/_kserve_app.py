"""kserve 0.21's ModelServer, held to featurelock's rules (see `kserve_server`'s docstring).

    FeaturelockModelServer(host=..., http_port=..., max_request_bytes=...).start([models])

Private: imported by `kserve_server` when it serves.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Callable

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from ._kserve_import import kserve  # noqa: F401  first: shields sys.argv from kserve's parse
from kserve import ModelServer  # noqa: E402
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import InferenceError, InvalidInput
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer
from starlette.responses import Response

from .errors import BadInput, NotServed, PayloadTooLarge, RequestError
from .kserve_model import FeaturelockKServeModel, RefusedRequest
from .kserve_protocol import BINARY_HEADER, v2_binary_as_json, v2_binary_images
from .metrics_bridge import outcome_of

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


# The routes that carry a request body to a model: v1 predict/explain, v2 infer.
_MODEL_ROUTE = re.compile(r"/v1/models/(?P<v1>[^/:]+):(?:predict|explain)"
                          r"|/v2/models/(?P<v2>[^/]+)(?:/versions/[^/]+)?/infer")


class _AuthenticateFirst:
    """Credentials before the body: for a POST to one of our models, the tenant's token is
    checked on the headers alone (401/403 before kserve reads or parses a byte). Then a v2
    binary-tensor request (Inference-Header-Content-Length) is parsed here, within
    `max_bytes`, and handed on in the JSON form: kserve 0.21 would decode image bytes as UTF-8
    text and answer 500 with a traceback. A malformed one is a 400 with the layout expected."""

    def __init__(self, app: Any, model: Callable[[str], Any], max_bytes: int) -> None:
        self.app, self.model, self.max_bytes = app, model, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        route = (_MODEL_ROUTE.fullmatch(scope["path"])
                 if scope["type"] == "http" and scope["method"] == "POST" else None)
        model = self.model(route["v1"] or route["v2"]) if route else None
        if not isinstance(model, FeaturelockKServeModel) or model.pipeline is None:
            await self.app(scope, receive, send)  # not ours: kserve answers (404, 405, ...)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        try:
            model.authenticate(headers)
            if route["v2"] and BINARY_HEADER in headers:
                body = await _read_body(receive, self.max_bytes)
                try:
                    images, request_id = v2_binary_images(body, headers[BINARY_HEADER])
                except RequestError as exc:
                    model.recorder.count(outcome_of(exc))
                    raise RefusedRequest.of(exc) from None
                scope, receive = _as_json(scope, v2_binary_as_json(images, request_id), receive)
        except RefusedRequest as refused:
            log.info("request rejected (%d) before its body was parsed", refused.status_code)
            await _answer(refused)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Any, max_bytes: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise RefusedRequest.of(BadInput("client went away"))
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise RefusedRequest.of(PayloadTooLarge())
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _as_json(scope: dict, body: bytes, receive: Any) -> tuple[dict, Any]:
    dropped = {b"content-length", b"content-type", BINARY_HEADER.encode()}
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in dropped]
    headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:  # after the body: the client's own messages (a disconnect, when it comes)
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return dict(scope, headers=headers), replay


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
        # Added last, so outermost: credentials are checked before anything reads the body.
        app.add_middleware(_AuthenticateFirst, model=self.dataplane.model_registry.get_model,
                           max_bytes=self.max_request_bytes)


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
