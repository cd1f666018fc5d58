"""Turning one TorchServe request into image bytes and response preferences.

TorchServe hands each request to the handler as a dict of named parameters: `body` (or
`data`) holds raw bytes, or the already-decoded JSON document when the client sent
`Content-Type: application/json` and TorchServe decodes JSON. featurelock's TorchServe config sets
`decode_input_request=false`, so JSON arrives as bytes and is parsed here, after the
pipeline has authenticated the tenant (TorchServe's own decode runs before any handler and logs
a traceback for every malformed body). Accepted:

    raw bytes       Content-Type image/jpeg, image/png or application/octet-stream
    JSON            {"image": "<base64 of the image file>"}     (one image per request)

Request headers are read case-insensitively. Nothing here decodes pixels.

TorchServe marks explanation requests (/explanations, KServe `:explain`, OIP `/explain`) with
an `explain: True` header and customized describe calls with `describe: True`; a client can
also send either header itself. `is_control_request` spots them so the handler refuses each
one alone (BaseHandler would switch the whole batch on request 0's header).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Mapping

from .errors import BadInput, PayloadTooLarge, UnsupportedMedia

__all__ = ["TENANT_HEADER", "TOKEN_HEADER", "header", "image_bytes", "is_control_request",
           "wants_json"]

TENANT_HEADER = "x-featurelock-tenant"
TOKEN_HEADER = "x-featurelock-token"
_BODY_KEYS = ("body", "data")
_CONTROL_HEADERS = frozenset({"explain", "describe"})
_JSON_OVERHEAD = 1024  # {"image": "..."} around the base64, with whitespace


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """The value of header `name` (case-insensitive), or None."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    return None


def wants_json(headers: Mapping[str, Any] | None) -> bool:
    accept = header(headers, "accept") or ""
    return any(part.split(";")[0].strip().lower() == "application/json"
               for part in accept.split(","))


def is_control_request(headers: Mapping[str, Any] | None) -> bool:
    """True if ANY `explain`/`describe` header (any case) says true: a client's own copy may
    sit beside the frontend's `explain: False`, so no single lookup is trusted."""
    return any(isinstance(key, str) and key.lower() in _CONTROL_HEADERS
               and isinstance(value, str) and value.strip().lower() == "true"
               for key, value in (headers or {}).items())


def _body(request: Mapping[str, Any]) -> Any:
    if not isinstance(request, Mapping):
        raise BadInput("request is not a mapping")
    for key in _BODY_KEYS:
        if key in request:
            return request[key]
    if len(request) == 1:  # a single multipart field, whatever its name
        return next(iter(request.values()))
    raise BadInput("no request body")


def image_bytes(request: Mapping[str, Any], max_body_bytes: int) -> bytes:
    """The encoded image of one request. BadInput / PayloadTooLarge / UnsupportedMedia."""
    value = _body(request)
    if isinstance(value, Mapping):
        return _from_json(value, max_body_bytes)
    if isinstance(value, list):
        raise BadInput("send one image per request")
    if isinstance(value, str):
        raise UnsupportedMedia("text bodies are not images")
    if not isinstance(value, (bytes, bytearray)):
        raise BadInput("unsupported body")
    if len(value) == 0:
        raise BadInput("empty body")
    if value[:1] in (b"{", b"["):  # JSON, undecoded (see the module docstring)
        if len(value) > (max_body_bytes * 4) // 3 + _JSON_OVERHEAD:  # base64 inside
            raise PayloadTooLarge("body too large")
        try:
            doc = json.loads(value)
        except (ValueError, UnicodeDecodeError):
            raise BadInput("malformed JSON body") from None
        if not isinstance(doc, Mapping):
            raise BadInput('JSON body must be {"image": "<base64>"}')
        return _from_json(doc, max_body_bytes)
    if len(value) > max_body_bytes:
        raise PayloadTooLarge("body too large")
    return bytes(value)


def _from_json(doc: Mapping[str, Any], max_body_bytes: int) -> bytes:
    if set(doc) != {"image"} or not isinstance(doc["image"], str):
        raise BadInput('JSON body must be {"image": "<base64>"}')
    text = doc["image"]
    if len(text) > (max_body_bytes * 4) // 3 + 4:
        raise PayloadTooLarge("body too large")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("image is not base64") from None
    if not data:
        raise BadInput("empty image")
    return data
