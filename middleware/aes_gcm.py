"""aes-256-gcm: the recommended default scheme.

Security: authenticated encryption (AEAD). Confidential and tamper-evident; randomised by a
fresh 96-bit nonce per message, so equal features give unrelated ciphertexts. Associated data
(envelope header and context) is authenticated, not encrypted. Rotate a key before about 2**32
messages (random-nonce collision bound). Ciphertext is opaque bytes, not a feature vector.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._scheme import DTYPES, ENVELOPE_VERSION, Scheme, host_array
from .errors import DecryptionError

__all__ = ["AesGcm"]


class AesGcm(Scheme):
    """AES-256-GCM over the raw bytes of a float16/32/64 array."""

    name = "aes-256-gcm"
    scheme_id = 1
    key_size = 32
    nonce_size = 12
    tag_size = 16
    dtypes = frozenset(DTYPES.values())
    leaks = ""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._check_key(key, self.key_size)
        self._aead = AESGCM(bytes(key))

    def seal_into(self, features: Any, nonce: bytes, associated_data: bytes, out: memoryview) -> None:
        self.check_features(features)
        data = host_array(features)
        # GCM writes ciphertext || tag, exactly the envelope's payload || tag layout: no copy.
        self._aead.encrypt_into(nonce, data.reshape(-1).view(np.uint8), associated_data, out)

    def open(self, nonce: bytes, sealed: memoryview, associated_data: bytes,
             dtype: np.dtype, shape: tuple[int, ...],
             version: int = ENVELOPE_VERSION) -> np.ndarray:
        # Versions 1 and 2 are the same for this scheme.
        out = np.empty(shape, dtype=dtype)
        try:
            self._aead.decrypt_into(nonce, sealed, associated_data, out.reshape(-1).view(np.uint8))
        except (InvalidTag, ValueError):
            raise DecryptionError() from None
        return out
