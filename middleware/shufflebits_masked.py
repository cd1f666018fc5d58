"""shufflebits-masked: ShuffleBits that does not leak through Hamming weights.

Each message is first encrypted with AES-256-GCM (a keystream XOR-ed into every 32-bit word,
plus the tag), then the ciphertext words are bit-permuted by a fresh per-message Beneš network
(as in shufflebits-otp); subkeys come from the key by HKDF, and the random 96-bit nonce is
carried in the envelope.

Security: that of AES-256-GCM (randomised, authenticated); the masking makes every ciphertext
word uniformly distributed whatever the feature, so popcount and bit-position statistics carry
nothing (the permutation adds no strength over the mask; it keeps the scheme a ShuffleBits
variant). Keeps ShuffleBits' practical virtue: the ciphertext is a float32 array of the same
shape (its values are arbitrary bit patterns, NaNs included, so never send them as JSON
floats). A CUDA tensor is copied to host memory before encryption, as for aes-256-gcm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._kernels import Network
from ._legacy_v1 import LegacyV1Reader
from ._permutation_scheme import FLOAT32, MessageNetworks, PermutationScheme, derive_key
from ._scheme import host_array
from .errors import DecryptionError

__all__ = ["ShuffleBitsMasked"]


class ShuffleBitsMasked(PermutationScheme):
    """AES-256-GCM, then a fresh bit permutation of the ciphertext per message."""

    name = "shufflebits-masked"
    scheme_id = 4
    key_size = 32
    legacy_nonce_size = 16
    leaks = ""

    __slots__ = ("_gcm", "_networks")

    def __init__(self, key: bytes) -> None:
        self._check_key(key, self.key_size)
        key = bytes(key)
        # No separate MAC: GCM's own tag authenticates the message.
        legacy = LegacyV1Reader(derive_key(key, f"{self.name}/mac"),
                                stream_key=derive_key(key, f"{self.name}/stream"))
        super().__init__(None, legacy)
        self._gcm = AESGCM(derive_key(key, f"{self.name}/v2/gcm"))
        self._networks = MessageNetworks(derive_key(key, f"{self.name}/v2/perm"))

    def _network(self, nonce: bytes) -> Network:
        return self._networks.forward(nonce)

    def _inverse_network(self, nonce: bytes) -> Network:
        return self._networks.inverse(nonce)

    def seal_into(self, features: Any, nonce: bytes, associated_data: bytes, out: memoryview) -> None:
        self.check_features(features)
        data = host_array(features).reshape(-1).view(np.uint8)
        self._gcm.encrypt_into(nonce, data, associated_data, out)  # GCM ciphertext || tag
        ciphertext = np.frombuffer(out[: data.size], dtype=np.uint32)
        self._network(nonce).apply(ciphertext, ciphertext)  # in place

    def _open(self, nonce: bytes, sealed: memoryview, associated_data: bytes,
              shape: tuple[int, ...]) -> np.ndarray:
        n_bytes = len(sealed) - self.tag_size
        ciphertext = np.empty(len(sealed), dtype=np.uint8)  # GCM ciphertext || tag
        self._inverse_network(nonce).apply(np.frombuffer(sealed[:n_bytes], dtype=np.uint32),
                                           ciphertext[:n_bytes].view(np.uint32))
        ciphertext[n_bytes:] = sealed[n_bytes:]
        out = np.empty(shape, dtype=FLOAT32)
        try:
            self._gcm.decrypt_into(nonce, ciphertext, associated_data, out.reshape(-1).view(np.uint8))
        except (InvalidTag, ValueError):
            raise DecryptionError() from None
        return out
