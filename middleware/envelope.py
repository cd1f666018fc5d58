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

Parsing is strict: each envelope has exactly one accepted encoding in each form, so nothing
but the bytes the writer produced can decrypt. Binary: exact lengths, no trailing bytes, a
dtype the scheme carries, 1..8 dimensions each >= 1. JSON text: exactly what `to_json()`
writes (compact, fixed key order, ASCII, no surrounding whitespace). JSON dict: exactly the
eight fields with exact types (int, not bool or float), exact dtype names and canonical
base64. Sizes are checked before any decoding or allocation.

docs/envelope-spec.md specifies all of this byte for byte for readers in other languages
(js/ is one); a change here is a change there, and tests/vectors/ must still pass in both.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _strict_json
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
_MAX_PAYLOAD = 2**32 - 1  # its length is a u32 on the wire
_DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}
# Client text never reaches np.dtype(): only the names to_json_dict writes map to a dtype.
_DTYPE_NAMES = {dtype.name: dtype for dtype in DTYPES.values()}
_JSON_FIELDS = {"featurelock", "scheme", "key_id", "dtype", "shape", "nonce", "payload", "tag"}
_B64_FIELDS = ("nonce", "payload", "tag")
# Longest canonical JSON outside the base64 strings is ~220 characters (8 dims of 10 digits).
_JSON_FIXED_ALLOWANCE = 256


def _payload_size(shape: tuple[int, ...], dtype: np.dtype, max_bytes: int) -> int:
    """Payload bytes of `shape`; ValueError unless 1..8 dims, each in 1..2**32-1, and the
    total within max_bytes. Checked before anything is allocated (zero-size shapes beside
    huge dims made numpy refuse the allocation with a ValueError of its own)."""
    if not 1 <= len(shape) <= _MAX_NDIM:
        raise ValueError(f"features must have 1 to {_MAX_NDIM} dimensions, got {len(shape)}")
    size = dtype.itemsize
    for dim in shape:
        if not 1 <= dim < 2**32:
            raise ValueError(f"every dimension must be 1 to 2**32-1, got {dim}")
        size *= dim
        if size > max_bytes:
            raise ValueError(f"features are larger than {max_bytes} bytes")
    return size


def _json_text_limit(max_bytes: int) -> int:
    """Longest canonical JSON text of an envelope of at most max_bytes (base64: 4/3)."""
    return 4 * (max_bytes // 3 + len(_B64_FIELDS)) + _JSON_FIXED_ALLOWANCE


def _b64decode_canonical(value: Any, size: int) -> bytes:
    """The `size` bytes `value` encodes; ValueError unless it is their one canonical base64
    (length checked before decoding; padding present, padding bits zero, no whitespace)."""
    if type(value) is not str or len(value) != 4 * ((size + 2) // 3):
        raise ValueError("not canonical base64")
    raw = base64.b64decode(value, validate=True)
    if len(raw) != size or base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("not canonical base64")
    return raw


def _header(scheme: type[Scheme], key_id: int, dtype: np.dtype, shape: tuple[int, ...],
            payload_len: int, version: int = VERSION) -> bytes:
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
    shape = tuple(int(d) for d in features.shape)
    # The reader refuses what it could never be sent: empty, scalar or over-long shapes.
    payload_len = _payload_size(shape, dtype, _MAX_PAYLOAD)
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
        if magic != MAGIC or version not in ENVELOPE_VERSIONS:
            raise DecryptionError()
        scheme = SCHEMES_BY_ID[scheme_id]
        if version not in scheme.envelope_versions:
            raise DecryptionError()
        dtype = DTYPES[dtype_code]
        if dtype not in scheme.dtypes or not 1 <= ndim <= _MAX_NDIM:
            raise DecryptionError()
        shape = struct.unpack_from(f">{ndim}I", view, _FIXED.size)
        offset = _FIXED.size + 4 * ndim
        lengths = _LENGTHS[version]
        nonce_len, payload_len, tag_len = lengths.unpack_from(view, offset)
        header_len = offset + lengths.size
        expected_payload = _payload_size(shape, dtype, max_bytes)
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
    def from_json(cls, document: str | bytes | bytearray | dict[str, Any],
                  max_bytes: int = MAX_ENVELOPE_BYTES) -> "Envelope":
        """Parse the JSON form: text (str, or ASCII bytes) exactly as `to_json()` writes it,
        or an already-decoded dict with exactly the fields of `to_json_dict()`."""
        try:
            if isinstance(document, dict):
                return cls._from_json_dict(document, max_bytes)
            if isinstance(document, (bytes, bytearray, memoryview)):
                if len(document) > _json_text_limit(max_bytes):  # before decoding
                    raise DecryptionError()
                document = bytes(document).decode("ascii")
            if not isinstance(document, str):
                raise DecryptionError()
            return cls._from_json_text(document, max_bytes)
        except DecryptionError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error,
                OverflowError, struct.error, RecursionError):
            raise DecryptionError() from None

    @classmethod
    def _from_json_text(cls, text: str, max_bytes: int) -> "Envelope":
        if len(text) > _json_text_limit(max_bytes):  # before parsing: no giant whitespace
            raise DecryptionError()
        envelope = cls._from_json_dict(_strict_json.loads(text), max_bytes)
        if envelope.to_json() != text:  # one spelling: no whitespace, reordering, escapes
            raise DecryptionError()
        return envelope

    @classmethod
    def _from_json_dict(cls, doc: dict[str, Any], max_bytes: int) -> "Envelope":
        if not isinstance(doc, dict) or set(doc) != _JSON_FIELDS:
            raise DecryptionError()
        version, key_id, shape = doc["featurelock"], doc["key_id"], doc["shape"]
        # type() is, not isinstance: True is an int to Python but not to an envelope.
        if (type(version) is not int or version not in ENVELOPE_VERSIONS
                or type(key_id) is not int or not 0 <= key_id < 2**32
                or type(shape) is not list or len(shape) > _MAX_NDIM
                or not all(type(d) is int for d in shape)
                or type(doc["scheme"]) is not str or type(doc["dtype"]) is not str):
            raise DecryptionError()
        scheme = SCHEMES[doc["scheme"]]
        dtype = _DTYPE_NAMES[doc["dtype"]]
        payload_len = _payload_size(tuple(shape), dtype, max_bytes)
        header = _header(scheme, key_id, dtype, tuple(shape), payload_len, version)
        nonce_len, tag_len = scheme.sizes(version)
        sizes = (nonce_len, payload_len, tag_len)
        if len(header) + sum(sizes) > max_bytes:  # before decoding any base64
            raise DecryptionError()
        raw = [_b64decode_canonical(doc[k], n) for k, n in zip(_B64_FIELDS, sizes)]
        return cls.from_bytes(header + b"".join(raw), max_bytes)
