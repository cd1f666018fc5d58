"""The versioned, self-describing envelope every protected response travels in.

Binary layout (big-endian). Symmetric schemes write version 2 and still read 1; the sealed
(HPKE) schemes write and read only version 3, whose tag length is 16 bits (it carries a KEM
encapsulation). A scheme accepts only its own versions, so each message has one layout:

    "FLK" | version u8 | scheme u8 | key id u32 | dtype u8 | ndim u8 | shape u32 * ndim
          | nonce length u8 | payload length u32 | tag length u8 (v3: u16)   <- header
    nonce | payload | tag

The whole header, plus the caller's context, is the associated data every scheme
authenticates, so scheme, key id, dtype and shape cannot be altered. The JSON form carries the
same fields with base64 bytes; ciphertext is never written as JSON floats (ShuffleBits output
holds NaN payloads that JSON cannot carry). Parsing anything malformed, truncated, oversized or
unknown raises DecryptionError and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._scheme import DTYPES, ENVELOPE_VERSION, ENVELOPE_VERSIONS, Scheme
from .errors import DecryptionError
from .schemes import SCHEMES, SCHEMES_BY_ID

__all__ = ["Envelope", "seal_envelope", "MAX_ENVELOPE_BYTES"]

MAGIC = b"FLK"
VERSION = ENVELOPE_VERSION
MAX_ENVELOPE_BYTES = 256 * 1024 * 1024
_MAX_NDIM = 8
_FIXED = struct.Struct(">3sBBIBB")  # magic, version, scheme, key id, dtype, ndim
_LENGTHS = {1: struct.Struct(">BIB"), 2: struct.Struct(">BIB"),  # nonce, payload, tag lengths
            3: struct.Struct(">BIH")}
_DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}
_JSON_FIELDS = {"featurelock", "scheme", "key_id", "dtype", "shape", "nonce", "payload", "tag"}


def _header(scheme: type[Scheme], key_id: int, dtype: np.dtype, shape: tuple[int, ...],
            payload_len: int, version: int) -> bytes:
    nonce_size, tag_size = scheme.sizes(version)
    return (_FIXED.pack(MAGIC, version, scheme.scheme_id, key_id, _DTYPE_CODES[dtype], len(shape))
            + struct.pack(f">{len(shape)}I", *shape)
            + _LENGTHS[version].pack(nonce_size, payload_len, tag_size))


def seal_envelope(scheme: Scheme, key_id: int, features: Any, context: bytes) -> bytearray:
    """Encrypt `features` (numpy array or torch tensor) into a binary envelope.

    One allocation: the scheme writes its payload and tag straight into the envelope.
    """
    return _seal_envelope_with_nonce(scheme, key_id, features, context,
                                     os.urandom(scheme.nonce_size))


def _seal_envelope_with_nonce(scheme: Scheme, key_id: int, features: Any, context: bytes,
                              nonce: bytes) -> bytearray:
    """seal_envelope with a pinned nonce: for test vectors only, never for real messages."""
    if len(nonce) != scheme.nonce_size:
        raise ValueError(f"nonce must be {scheme.nonce_size} bytes, got {len(nonce)}")
    dtype = scheme.check_features(features)
    shape = tuple(features.shape)
    if len(shape) > _MAX_NDIM:
        raise ValueError(f"features may have at most {_MAX_NDIM} dimensions, got {len(shape)}")
    payload_len = math.prod(shape) * dtype.itemsize
    header = _header(type(scheme), key_id, dtype, shape, payload_len, scheme.envelope_version)
    body = len(header) + len(nonce)
    buf = bytearray(body + payload_len + scheme.tag_size)
    buf[:body] = header + nonce
    scheme.seal_into(features, nonce, header + context, memoryview(buf)[body:])
    return buf


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope. `sealed` is payload || tag, a view into the parsed buffer."""

    scheme: str
    key_id: int
    dtype: np.dtype
    shape: tuple[int, ...]
    nonce: bytes
    sealed: memoryview
    header: bytes
    version: int = VERSION

    @property
    def _tag_size(self) -> int:
        return SCHEMES[self.scheme].sizes(self.version)[1]

    @property
    def payload(self) -> memoryview:
        return self.sealed[: len(self.sealed) - self._tag_size]

    @property
    def tag(self) -> memoryview:
        return self.sealed[len(self.sealed) - self._tag_size:]

    def associated_data(self, context: bytes) -> bytes:
        return self.header + context

    # -- binary form -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview,
                   max_bytes: int = MAX_ENVELOPE_BYTES) -> "Envelope":
        try:
            return cls._parse(memoryview(data).cast("B"), max_bytes)
        except DecryptionError:
            raise
        except (struct.error, ValueError, TypeError, KeyError, OverflowError):
            raise DecryptionError() from None

    @classmethod
    def _parse(cls, view: memoryview, max_bytes: int) -> "Envelope":
        if len(view) > max_bytes or len(view) < _FIXED.size:
            raise DecryptionError()
        magic, version, scheme_id, key_id, dtype_code, ndim = _FIXED.unpack_from(view)
        if magic != MAGIC or version not in ENVELOPE_VERSIONS or ndim > _MAX_NDIM:
            raise DecryptionError()
        scheme = SCHEMES_BY_ID[scheme_id]
        if version not in scheme.envelope_versions:
            raise DecryptionError()
        dtype = DTYPES[dtype_code]
        shape = struct.unpack_from(f">{ndim}I", view, _FIXED.size)
        offset = _FIXED.size + 4 * ndim
        lengths = _LENGTHS[version]
        nonce_len, payload_len, tag_len = lengths.unpack_from(view, offset)
        header_len = offset + lengths.size
        expected_payload = math.prod(shape) * dtype.itemsize
        nonce_size, tag_size = scheme.sizes(version)
        if (nonce_len != nonce_size or tag_len != tag_size
                or payload_len != expected_payload
                or len(view) != header_len + nonce_len + payload_len + tag_len):
            raise DecryptionError()
        body = header_len + nonce_len
        return cls(scheme=scheme.name, key_id=key_id, dtype=dtype, shape=tuple(shape),
                   nonce=bytes(view[header_len:body]), sealed=view[body:],
                   header=bytes(view[:header_len]), version=version)

    def to_bytes(self) -> bytes:
        return b"".join((self.header, self.nonce, self.sealed))

    # -- JSON form ---------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
        return {"featurelock": self.version, "scheme": self.scheme, "key_id": self.key_id,
                "dtype": self.dtype.name, "shape": list(self.shape), "nonce": b64(self.nonce),
                "payload": b64(self.payload), "tag": b64(self.tag)}

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, document: str | bytes | dict[str, Any],
                  max_bytes: int = MAX_ENVELOPE_BYTES) -> "Envelope":
        """Parse the JSON form (text or an already-decoded dict)."""
        try:
            if isinstance(document, (str, bytes)):
                if len(document) > 2 * max_bytes:  # base64 inflates by 4/3; bound the parse
                    raise DecryptionError()
                document = json.loads(document)
            return cls._from_json_dict(document, max_bytes)
        except DecryptionError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error,
                OverflowError, struct.error, RecursionError):
            raise DecryptionError() from None

    @classmethod
    def _from_json_dict(cls, doc: dict[str, Any], max_bytes: int) -> "Envelope":
        if not isinstance(doc, dict) or set(doc) != _JSON_FIELDS:
            raise DecryptionError()
        version = doc["featurelock"]
        if type(version) is not int or version not in ENVELOPE_VERSIONS:
            raise DecryptionError()
        scheme = SCHEMES[doc["scheme"]]
        dtype = np.dtype(doc["dtype"]).newbyteorder("<")
        shape = doc["shape"]
        key_id = doc["key_id"]
        if (dtype not in _DTYPE_CODES or not isinstance(shape, list) or len(shape) > _MAX_NDIM
                or not all(type(d) is int and 0 <= d < 2**32 for d in shape)
                or type(key_id) is not int or not 0 <= key_id < 2**32):
            raise DecryptionError()
        raw = {k: base64.b64decode(doc[k], validate=True) for k in ("nonce", "payload", "tag")}
        header = _header(scheme, key_id, dtype, tuple(shape), len(raw["payload"]), version)
        return cls.from_bytes(header + raw["nonce"] + raw["payload"] + raw["tag"], max_bytes)
