"""Serving errors, and the ONE place they become HTTP statuses.

    FeaturelockError                    (featurelock.middleware.errors)
     └── ServingError                   a serving-side failure
          ├── RequestError              the client's request is at fault (4xx)
          │    ├── MissingCredentials   401: no tenant or no token header
          │    ├── Forbidden            403: unknown tenant or wrong token
          │    ├── BadInput             400: empty body, malformed JSON, not an image
          │    │    └── MalformedRequest  400: a KServe v2 binary-tensor request that does
          │    │                          not follow the binary extension's layout
          │    ├── PayloadTooLarge      413: body or image over the configured limits
          │    ├── UnsupportedMedia     415: a content type we do not take
          │    └── NotServed            405: an explanation or describe request (never served)
          ├── CraftingError             500: the crafting network failed (no features sent)
          └── ServerConfigError         the model refuses to load (keys, config)

`public_error(exc)` maps ANY exception to (status, reason phrase, fixed public message). Only
the fixed messages in `_PUBLIC` ever reach a client: exception text (paths, key ids, library
errors) stays in the server log.
"""

from __future__ import annotations

import json

from featurelock.middleware.errors import EncryptionError, FeaturelockError

__all__ = [
    "ServingError", "RequestError", "MissingCredentials", "Forbidden", "BadInput",
    "MalformedRequest",
    "PayloadTooLarge", "UnsupportedMedia", "NotServed", "ServerConfigError", "CraftingError",
    "public_error",
    "error_body",
]


class ServingError(FeaturelockError):
    """Base of the serving-side errors."""


class RequestError(ServingError):
    """The request is at fault; the worker keeps serving."""


class MissingCredentials(RequestError):
    """No X-Featurelock-Tenant or X-Featurelock-Token header."""


class Forbidden(RequestError):
    """The tenant is unknown or the token does not match."""


class BadInput(RequestError):
    """The body is empty, malformed or not a decodable image."""


class MalformedRequest(BadInput):
    """A KServe v2 binary-tensor request whose header or tensor layout is broken."""


class PayloadTooLarge(RequestError):
    """The body or the image exceeds the configured limits."""


class UnsupportedMedia(RequestError):
    """The request's content type is not accepted."""


class NotServed(RequestError):
    """An explanation (/explanations, KServe :explain) or a customized describe request."""


class CraftingError(ServingError):
    """A `scheme: crafter` model could not craft a batch: its plaintext features stay in the
    worker and every request of the batch gets a 500."""


class ServerConfigError(ServingError):
    """The model cannot be served as configured (missing keys, bad featurelock section)."""


# exception class -> (HTTP status, reason phrase, public message). Most specific first.
_PUBLIC: list[tuple[type[BaseException], int, str, str]] = [
    (MissingCredentials, 401, "Unauthorized", "tenant credentials required"),
    (Forbidden, 403, "Forbidden", "tenant not authorized"),
    (PayloadTooLarge, 413, "Payload Too Large", "request too large"),
    (UnsupportedMedia, 415, "Unsupported Media Type", "send image bytes or JSON {\"image\": base64}"),
    (MalformedRequest, 400, "Bad Request",
     "malformed v2 binary request: one BYTES input \"image\", each element a 4-byte "
     "little-endian length and the image file"),
    (BadInput, 400, "Bad Request", "input is not a valid image"),
    (NotServed, 405, "Method Not Allowed", "only predictions are served"),
    (EncryptionError, 500, "Internal Server Error", "features could not be protected"),
    (CraftingError, 500, "Internal Server Error", "features could not be protected"),
]
_INTERNAL = (500, "Internal Server Error", "internal error")


def public_error(exc: BaseException) -> tuple[int, str, str]:
    """(status, reason phrase, public message) for an exception. Never the exception's text."""
    from featurelock.models.errors import ImageDecodeError, ImageTooLarge  # torch-free, lazy

    if isinstance(exc, ImageDecodeError):  # the model layer's error, in the request's terms
        exc = PayloadTooLarge() if isinstance(exc, ImageTooLarge) else BadInput()
    for cls, status, phrase, message in _PUBLIC:
        if isinstance(exc, cls):
            return status, phrase, message
    return _INTERNAL


def error_body(status: int, message: str) -> str:
    """The JSON body of an error response."""
    return json.dumps({"error": message, "status": status})
