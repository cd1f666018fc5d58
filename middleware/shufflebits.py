"""shufflebits: the paper's bit permutation (Ni et al. 2021), bit-compatible with the reference.

Security: DETERMINISTIC and NOT randomised — equal features give equal ciphertexts, and one
permutation is shared by every element of every message. A pure bit permutation also keeps each
word's Hamming weight, and an attacker who reads the 32 bits of each element as separate inputs
sees only a fixed reordering of them: measured, that recovers attributes as well as plaintext
does (shared/research/shufflebits.md). Size-preserving: the ciphertext is a float32 array of the
same shape. In an envelope it is authenticated by an AES-GCM tag under a random nonce (the
payload stays deterministic); `ShuffleBits` itself is NOT authenticated. Use it for
compatibility with the paper; prefer aes-256-gcm.

The permutation runs as a Beneš network (`_benes.py`), routed once per key: no lookup tables,
so no key-dependent memory access while encrypting.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Sequence

import numpy as np

from ._benes import route, src_from_msb_perm, validate_permutation
from ._kernels import Network
from ._legacy_v1 import LegacyV1Reader
from ._permutation_scheme import PermutationScheme, derive_key

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
        self._forward = Network(route(src_from_msb_perm(perm)), long_lived=True)
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

    def encrypt_array(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The ciphertext of float32 array x, into `out` (a float32 array like x) if given."""
        return self._forward.apply(_float32_words(x), _words_out(out)).view(np.float32)

    def decrypt_array(self, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self._inverse.apply(_float32_words(c), _words_out(out)).view(np.float32)

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
    """shufflebits in an envelope: ShuffleBits + AES-GCM tag. Deterministic payload (see module)."""

    name = "shufflebits"
    scheme_id = 2
    key_size = _PERM_BYTES + _MAC_KEY_BYTES
    legacy_nonce_size = 0
    leaks = ("it is deterministic (equal features give equal ciphertexts), one known "
             "(feature, ciphertext) pair recovers the key, and from ciphertext alone an "
             "attacker decodes the values and links people across cameras as well as from "
             "plaintext")

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        self._check_key(key, self.key_size)
        cipher = ShuffleBits(np.frombuffer(bytes(key[:_PERM_BYTES]), dtype=np.uint8))
        mac_key = bytes(key[_PERM_BYTES:])
        super().__init__(derive_key(mac_key, f"{self.name}/v2/mac"),
                         LegacyV1Reader(mac_key, fixed_inverse=cipher._inverse))
        self._cipher = cipher

    @classmethod
    def generate_key(cls) -> bytes:
        return bytes(int(p) for p in _random_permutation()) + os.urandom(_MAC_KEY_BYTES)

    @classmethod
    def key_from_seed(cls, seed: int) -> bytes:
        """Key material whose permutation is the reference's `from_seed(seed)`; random MAC key."""
        perm = np.arange(32)
        np.random.default_rng(seed).shuffle(perm)
        return bytes(int(p) for p in perm) + os.urandom(_MAC_KEY_BYTES)

    def _network(self, nonce: bytes) -> Network:
        return self._cipher._forward

    def _inverse_network(self, nonce: bytes) -> Network:
        return self._cipher._inverse


def _random_permutation() -> np.ndarray:
    return np.argsort([secrets.randbits(64) for _ in range(32)], kind="stable")


def _float32_words(x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(x).__name__}")
    if x.dtype.newbyteorder("<") != np.dtype("<f4"):
        raise TypeError(f"ShuffleBits encrypts float32 arrays, got {x.dtype}")
    return np.ascontiguousarray(x, dtype="<f4").view(np.uint32)


def _words_out(out: np.ndarray | None) -> np.ndarray | None:
    if out is None:
        return None
    if not isinstance(out, np.ndarray) or out.dtype != np.dtype("<f4"):
        raise TypeError("out must be a float32 numpy array")
    return out.view(np.uint32)


def _permute_tensor(x: Any, network: Network) -> Any:
    import torch

    from ._bitperm_torch import float32_words, permute_words

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch tensor, got {type(x).__name__}")
    return permute_words(float32_words(x), network).view(torch.float32)
