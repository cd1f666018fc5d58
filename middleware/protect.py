"""The recipe layer: protect a batch of features for a tenant; read a response back.

    protector = FeatureProtector(keyset)
    envelope = protector.protect(features, Context(model="reid", model_version="1", tenant="acme"))
    features = FeatureReader(keyset).read(envelope, same_context)

The context is bound as associated data: an envelope produced for one model, version or tenant
does not decrypt under another. Every failure to read is the same DecryptionError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .envelope import MAX_ENVELOPE_BYTES, Envelope, seal_envelope
from .errors import DecryptionError, EncryptionError, FeaturelockError
from .keyset import Keyset

__all__ = ["Context", "FeatureProtector", "FeatureReader", "rewrap", "EnvelopeLike"]

EnvelopeLike = bytes | bytearray | memoryview | str | dict | Envelope


@dataclass(frozen=True)
class Context:
    """What a protected response is bound to. All fields are public (not secret)."""

    model: str
    model_version: str = ""
    tenant: str = ""

    def associated_data(self) -> bytes:
        return self._associated_data

    @cached_property
    def _associated_data(self) -> bytes:
        parts = [b"featurelock/context/v1"] + [
            s.encode() for s in (self.model, self.model_version, self.tenant)]
        return b"".join(struct.pack(">H", len(p)) + p for p in parts)


class FeatureProtector:
    """Server side: encrypts features under the keyset's primary key. Fails closed."""

    def __init__(self, keyset: Keyset) -> None:
        if not isinstance(keyset, Keyset):
            raise TypeError("keyset must be a Keyset")
        self._keyset = keyset

    def protect(self, features: Any, context: Context) -> bytearray:
        """The binary envelope of `features` (numpy array, or torch tensor on any device)."""
        try:
            key_id, cipher = self._keyset.encryption_key()
            return seal_envelope(cipher, key_id, features, context.associated_data())
        except FeaturelockError:
            raise
        except (TypeError, ValueError) as exc:
            raise EncryptionError(f"cannot encrypt these features: {exc}") from None
        except Exception:  # fail closed: a caller must never fall back to plaintext
            raise EncryptionError("encryption failed") from None

    def protect_json(self, features: Any, context: Context) -> str:
        """The JSON form of the envelope (base64 fields)."""
        return Envelope.from_bytes(self.protect(features, context)).to_json()


def parse_envelope(envelope: EnvelopeLike, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
    """An Envelope from its binary form, JSON text or decoded JSON dict."""
    if isinstance(envelope, Envelope):
        return envelope
    if isinstance(envelope, dict):
        return Envelope.from_json(envelope, max_bytes)
    if isinstance(envelope, str) or (isinstance(envelope, (bytes, bytearray))
                                     and envelope[:1] == b"{"):
        return Envelope.from_json(envelope, max_bytes)
    if isinstance(envelope, (bytes, bytearray, memoryview)):
        return Envelope.from_bytes(envelope, max_bytes)
    raise DecryptionError()


class FeatureReader:
    """Client SDK: turns an envelope back into the original array (shape and dtype)."""

    def __init__(self, keyset: Keyset, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> None:
        if not isinstance(keyset, Keyset):
            raise TypeError("keyset must be a Keyset")
        self._keyset = keyset
        self._max_bytes = max_bytes

    def read(self, envelope: EnvelopeLike, context: Context) -> np.ndarray:
        parsed = parse_envelope(envelope, self._max_bytes)
        cipher = self._keyset.decryption_key(parsed.key_id, parsed.scheme)
        return cipher.open(parsed.nonce, parsed.sealed, parsed.associated_data(context.associated_data()),
                           parsed.dtype, parsed.shape, parsed.version)


def rewrap(keyset: Keyset, envelope: EnvelopeLike, context: Context) -> bytearray:
    """Re-encrypt an envelope under the keyset's current primary key.

    The plaintext exists only inside this call; the caller gets a new envelope, never features.
    """
    features = FeatureReader(keyset).read(envelope, context)
    try:
        return FeatureProtector(keyset).protect(features, context)
    finally:
        features.fill(0)
