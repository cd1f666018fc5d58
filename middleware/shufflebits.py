"""shufflebits: the paper's bit permutation (Ni et al. 2021), bit-compatible with the reference.

Security: DETERMINISTIC and NOT randomised — equal features give equal ciphertexts, and one
permutation is shared by every element of every message. A pure bit permutation also keeps each
word's Hamming weight, and an attacker who reads the 32 bits of each element as separate inputs
sees only a fixed reordering of them: measured, that recovers attributes as well as plaintext
does (shared/research/shufflebits.md). Size-preserving: the ciphertext is a float32 array of the
same shape. In an envelope it is authenticated by an HMAC-SHA256 tag; `ShuffleBits` itself is
NOT authenticated. Use it for compatibility with the paper; prefer aes-256-gcm.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Sequence

import numpy as np

from ._bitperm import WordPermutation, validate_permutation
from ._permutation_scheme import PermutationScheme

__all__ = ["ShuffleBits", "ShuffleBitsScheme"]

_PERM_BYTES = 32
_MAC_KEY_BYTES = 32


class ShuffleBits:
    """The raw, unauthenticated cipher: output bit i of each float32 = input bit perm[i].

    Bits are indexed most-significant first (0 is the sign bit), as in the reference code.
    Bit-exact for every 32-bit pattern: NaN payloads, infinities, signed zeros, subnormals.
    """

    __slots__ = ("_perm", "_forward", "_inverse")

    def __init__(self, perm: Sequence[int] | np.ndarray) -> None:
        perm = validate_permutation(perm)
        self._perm = perm
        self._forward = WordPermutation(perm, long_lived=True)
        self._inverse = self._forward.inverse()

    @classmethod
    def from_seed(cls, seed: int = 0) -> "ShuffleBits":
        """The reference's seed-derived key: default_rng(seed).shuffle(arange(32))."""
        perm = np.arange(32)
        np.random.default_rng(seed).shuffle(perm)
        return cls(perm)

    @classmethod
    def generate(cls) -> "ShuffleBits":
        """A uniformly random key from the OS's CSPRNG."""
        return cls(_random_permutation())

    def encrypt_array(self, x: np.ndarray) -> np.ndarray:
        return self._forward.apply(_float32_words(x)).view(np.float32)

    def decrypt_array(self, c: np.ndarray) -> np.ndarray:
        return self._inverse.apply(_float32_words(c)).view(np.float32)

    def encrypt_tensor(self, x: Any) -> Any:
        """Encrypt a float32 torch tensor on its own device (CPU or CUDA)."""
        return _permute_tensor(x, self._forward)

    def decrypt_tensor(self, c: Any) -> Any:
        return _permute_tensor(c, self._inverse)

    def permutation_bytes(self) -> bytes:
        """The key as 32 bytes (perm[i] for i in 0..31). Secret: store it only wrapped."""
        return bytes(int(p) for p in self._perm)

    def __repr__(self) -> str:
        return "ShuffleBits(<secret>)"

    def __reduce__(self):
        raise TypeError("ShuffleBits keys cannot be pickled")


class ShuffleBitsScheme(PermutationScheme):
    """shufflebits in an envelope: ShuffleBits + HMAC-SHA256 tag. Deterministic (see module)."""

    name = "shufflebits"
    scheme_id = 2
    key_size = _PERM_BYTES + _MAC_KEY_BYTES
    nonce_size = 0
    leaks = ("it is deterministic (equal features give equal ciphertexts), one known "
             "(feature, ciphertext) pair recovers the key, and from ciphertext alone an "
             "attacker decodes the values and links people across cameras as well as from "
             "plaintext")

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        self._check_key(key, self.key_size)
        super().__init__(bytes(key[_PERM_BYTES:]))
        self._cipher = ShuffleBits(np.frombuffer(bytes(key[:_PERM_BYTES]), dtype=np.uint8))

    @classmethod
    def generate_key(cls) -> bytes:
        return bytes(int(p) for p in _random_permutation()) + os.urandom(_MAC_KEY_BYTES)

    @classmethod
    def key_from_seed(cls, seed: int) -> bytes:
        """Key material whose permutation is the reference's `from_seed(seed)`; random MAC key."""
        perm = np.arange(32)
        np.random.default_rng(seed).shuffle(perm)
        return bytes(int(p) for p in perm) + os.urandom(_MAC_KEY_BYTES)

    def _message_keys(self, nonce: bytes, n_words: int, decrypt: bool):
        return (self._cipher._inverse if decrypt else self._cipher._forward), None


def _random_permutation() -> np.ndarray:
    return np.argsort([secrets.randbits(64) for _ in range(32)], kind="stable")


def _float32_words(x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(x).__name__}")
    if x.dtype.newbyteorder("<") != np.dtype("<f4"):
        raise TypeError(f"ShuffleBits encrypts float32 arrays, got {x.dtype}")
    return np.ascontiguousarray(x, dtype="<f4").view(np.uint32)


def _permute_tensor(x: Any, perm: WordPermutation) -> Any:
    import torch

    from ._bitperm_torch import float32_words, permute_words

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch tensor, got {type(x).__name__}")
    return permute_words(float32_words(x), perm).view(torch.float32)
