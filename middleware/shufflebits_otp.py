"""shufflebits-otp: the paper's "one-time pad" deployment of ShuffleBits.

Each message gets a fresh, uniformly distributed bit permutation derived from the key and a
random 128-bit nonce carried in the envelope (AES-256-CTR as a PRF under an HKDF subkey), so
equal features no longer give equal ciphertexts. Authenticated by HMAC-SHA256 in the envelope.

Security: randomised, but still a pure bit permutation: each element's Hamming weight survives,
and that alone leaks attributes (measured: shared/research/shufflebits.md). NOT semantically
secure. Size-preserving: the ciphertext is a float32 array of the same shape.
"""

from __future__ import annotations

import numpy as np

from ._bitperm import WordPermutation
from ._permutation_scheme import PermutationScheme, derive_key, keystream_words

__all__ = ["ShuffleBitsOtp", "message_permutation", "message_word_permutation", "PERMUTATION_WORDS"]


PERMUTATION_WORDS = 64  # 32 sort keys of 64 bits


def message_permutation(stream: np.ndarray) -> np.ndarray:
    """A uniform permutation of 0..31: the order of 32 pseudo-random 64-bit sort keys taken
    from the first PERMUTATION_WORDS words of a message's keystream."""
    return np.argsort(stream[:PERMUTATION_WORDS].view(np.uint64), kind="stable")


def message_word_permutation(perm: np.ndarray, decrypt: bool) -> WordPermutation:
    return WordPermutation(np.argsort(perm) if decrypt else perm, _trusted=True)


class ShuffleBitsOtp(PermutationScheme):
    """Fresh ShuffleBits permutation per message; HMAC-authenticated. Leaks Hamming weights."""

    name = "shufflebits-otp"
    scheme_id = 3
    key_size = 32
    nonce_size = 16
    leaks = ("a fresh bit permutation per message keeps each word's Hamming weight and every "
             "bit column of the message, so an attacker that reads whole messages links people "
             "across cameras (featurelock scan: rank-1 0.83 vs 0.009 chance)")

    __slots__ = ("_perm_key",)

    def __init__(self, key: bytes) -> None:
        self._check_key(key, self.key_size)
        super().__init__(derive_key(bytes(key), f"{self.name}/mac"))
        self._perm_key = derive_key(bytes(key), f"{self.name}/perm")

    def _message_keys(self, nonce: bytes, n_words: int, decrypt: bool):
        perm = message_permutation(keystream_words(self._perm_key, nonce, PERMUTATION_WORDS))
        return message_word_permutation(perm, decrypt), None
