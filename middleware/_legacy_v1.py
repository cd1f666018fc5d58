"""Reading version-1 envelopes of the ShuffleBits family (written by featurelock 0.1).

Version 1 authenticated with HMAC-SHA256 over (len(ad) | ad | nonce | payload) and derived a
per-message permutation as the order of 32 pseudo-random 64-bit sort keys from AES-256-CTR.
New envelopes are version 2; this module only decrypts old ones, so data sealed before an
upgrade stays readable. The v1 permutation is routed into a Beneš network per message
(~40 µs), then applied by the same kernels as version 2.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._benes import route, src_from_msb_perm
from ._kernels import Network
from .errors import DecryptionError

__all__ = ["LegacyV1Reader", "V1_TAG_SIZE"]

V1_TAG_SIZE = 32
_SORT_KEY_WORDS = 64  # 32 sort keys of 64 bits


def _keystream_words(key: bytes, nonce: bytes, n_words: int) -> np.ndarray:
    out = np.empty(n_words + 4, dtype=np.uint32)  # update_into wants 15 spare bytes
    encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    encryptor.update_into(bytes(4 * n_words), memoryview(out).cast("B"))
    return out[:n_words]


def _sorted_permutation(stream: np.ndarray) -> np.ndarray:
    return np.argsort(stream[:_SORT_KEY_WORDS].view(np.uint64), kind="stable")


class LegacyV1Reader:
    """Opens v1 envelopes: a fixed permutation (shufflebits; pass its inverse), a per-message
    one derived from `perm_key` (shufflebits-otp), or a per-message one plus a mask from
    `stream_key` (shufflebits-masked). Key material: no repr, no pickling."""

    __slots__ = ("_mac", "_fixed_inverse", "_perm_key", "_stream_key")

    def __init__(self, mac_key: bytes, *, fixed_inverse: Network | None = None,
                 perm_key: bytes | None = None, stream_key: bytes | None = None) -> None:
        self._mac = hmac.new(mac_key, digestmod=hashlib.sha256)
        self._fixed_inverse, self._perm_key, self._stream_key = fixed_inverse, perm_key, stream_key

    def open(self, nonce: bytes, sealed: memoryview, associated_data: bytes,
             shape: tuple[int, ...]) -> np.ndarray:
        """Verify and decrypt a v1 float32 `payload || tag` (the caller checked the dtype)."""
        if len(sealed) < V1_TAG_SIZE:
            raise DecryptionError()
        payload, tag = sealed[:-V1_TAG_SIZE], sealed[-V1_TAG_SIZE:]
        mac = self._mac.copy()
        mac.update(struct.pack(">Q", len(associated_data)) + associated_data + nonce)
        mac.update(payload)
        if not hmac.compare_digest(mac.digest(), tag):
            raise DecryptionError()
        words = np.frombuffer(payload, dtype=np.uint32)
        mask = None
        if self._fixed_inverse is not None:
            inverse = self._fixed_inverse
        else:
            key = self._perm_key if self._perm_key is not None else self._stream_key
            stream = _keystream_words(key, nonce, _SORT_KEY_WORDS + (
                words.size if self._stream_key is not None else 0))
            inverse = Network(route(src_from_msb_perm(_sorted_permutation(stream)))).inverse()
            if self._stream_key is not None:
                mask = stream[_SORT_KEY_WORDS:]
        plain = inverse.apply(words)
        if mask is not None:
            plain ^= mask
        return plain.view(np.float32).reshape(shape)

    def __repr__(self) -> str:
        return "LegacyV1Reader(<secret>)"

    def __reduce__(self):
        raise TypeError("key material cannot be pickled")
