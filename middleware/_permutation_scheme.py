"""Shared machinery of the ShuffleBits family: bit permutation (+ optional mask) + HMAC tag.

Each variant decides, per message, which permutation to use and whether to XOR a keystream
first. This base class does the rest identically for all of them: float32 checks, the numpy or
torch path, and the HMAC-SHA256 tag (under its own derived key) that makes tampering evident.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from abc import abstractmethod
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._bitperm import WordPermutation
from ._scheme import Scheme, host_array
from .errors import DecryptionError

__all__ = ["PermutationScheme", "derive_key", "keystream_words"]

_FLOAT32 = np.dtype("<f4")


def derive_key(master: bytes, label: str) -> bytes:
    """A 32-byte subkey of `master` for one purpose (HKDF-SHA256, purpose in `info`)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"featurelock/{label}".encode()).derive(master)


def keystream_words(key: bytes, nonce: bytes, n_words: int) -> np.ndarray:
    """n_words uint32 words of AES-256-CTR keystream under (key, 16-byte nonce)."""
    zeros = bytes(4 * n_words)
    out = np.empty(n_words + 4, dtype=np.uint32)  # update_into wants 15 spare bytes
    encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    encryptor.update_into(zeros, memoryview(out).cast("B"))
    return out[:n_words]


class PermutationScheme(Scheme):
    """Base of the ShuffleBits variants; see each subclass for its security properties."""

    tag_size = 32
    dtypes = frozenset({_FLOAT32})

    __slots__ = ("_mac",)

    def __init__(self, mac_key: bytes) -> None:
        self._mac = hmac.new(mac_key, digestmod=hashlib.sha256)

    @abstractmethod
    def _message_keys(self, nonce: bytes, n_words: int,
                      decrypt: bool) -> tuple[WordPermutation, np.ndarray | None]:
        """The permutation to apply for this message (the inverse one when decrypting) and,
        for masked variants, the uint32 keystream XOR-ed into the words before permuting."""

    def _tag(self, nonce: bytes, associated_data: bytes, payload: memoryview) -> bytes:
        mac = self._mac.copy()
        mac.update(struct.pack(">Q", len(associated_data)) + associated_data + nonce)
        mac.update(payload)
        return mac.digest()

    def seal_into(self, features: Any, nonce: bytes, associated_data: bytes, out: memoryview) -> None:
        self.check_features(features)
        n_words = math.prod(features.shape)
        perm, mask = self._message_keys(nonce, n_words, decrypt=False)
        payload = out[: 4 * n_words]
        target = np.frombuffer(payload, dtype=np.uint32)
        if type(features).__module__.startswith("torch") and features.device.type != "cpu":
            self._permute_on_device(features, perm, mask, target)
        else:
            words = host_array(features).reshape(-1).view(np.uint32)
            if mask is not None:
                words = words ^ mask
            perm.apply(words, out=target)
        out[4 * n_words:] = self._tag(nonce, associated_data, payload)

    @staticmethod
    def _permute_on_device(features: Any, perm: WordPermutation, mask: np.ndarray | None,
                           target: np.ndarray) -> None:
        # Plaintext stays on its accelerator; only ciphertext is copied to host memory.
        # (CPU tensors take the faster numpy path: .numpy() shares their memory.)
        from ._bitperm_torch import float32_words, permute_words, xor_words

        words = float32_words(features).reshape(-1)
        if mask is not None:
            words = xor_words(words, mask)
        target.view(np.int32)[:] = permute_words(words, perm).cpu().numpy()

    def open(self, nonce: bytes, sealed: memoryview, associated_data: bytes,
             dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        if dtype != _FLOAT32 or len(sealed) < self.tag_size:
            raise DecryptionError()
        payload, tag = sealed[: -self.tag_size], sealed[-self.tag_size:]
        if not hmac.compare_digest(self._tag(nonce, associated_data, payload), tag):
            raise DecryptionError()
        words = np.frombuffer(payload, dtype=np.uint32)
        inverse, mask = self._message_keys(nonce, words.size, decrypt=True)
        plain = inverse.apply(words)
        if mask is not None:
            plain ^= mask
        return plain.view(np.float32).reshape(shape)
