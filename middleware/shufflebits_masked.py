"""shufflebits-masked: ShuffleBits that does not leak through Hamming weights.

Each 32-bit word is first XOR-ed with a per-message AES-256-CTR keystream, then bit-permuted
with a fresh per-message permutation (as in shufflebits-otp); both are derived from the key and
a random 128-bit nonce carried in the envelope. Authenticated by HMAC-SHA256 in the envelope.

Security: randomised; the masking makes every ciphertext word uniformly distributed whatever
the feature, so popcount and bit-position statistics carry nothing (the permutation adds no
strength over the mask; it keeps the scheme a ShuffleBits variant). Keeps ShuffleBits'
practical virtue: the ciphertext is a float32 array of the same shape (its values are arbitrary
bit patterns, NaNs included, so never send them as JSON floats).
"""

from __future__ import annotations

from ._permutation_scheme import PermutationScheme, derive_key, keystream_words
from .shufflebits_otp import PERMUTATION_WORDS, message_permutation, message_word_permutation

__all__ = ["ShuffleBitsMasked"]


class ShuffleBitsMasked(PermutationScheme):
    """Keystream mask + fresh permutation per message; HMAC-authenticated."""

    name = "shufflebits-masked"
    scheme_id = 4
    key_size = 32
    nonce_size = 16
    leaks = ""

    __slots__ = ("_stream_key",)

    def __init__(self, key: bytes) -> None:
        self._check_key(key, self.key_size)
        super().__init__(derive_key(bytes(key), f"{self.name}/mac"))
        self._stream_key = derive_key(bytes(key), f"{self.name}/stream")

    def _message_keys(self, nonce: bytes, n_words: int, decrypt: bool):
        # One keystream per message: its first words order the permutation, the rest mask.
        stream = keystream_words(self._stream_key, nonce, PERMUTATION_WORDS + n_words)
        perm = message_permutation(stream)
        return message_word_permutation(perm, decrypt), stream[PERMUTATION_WORDS:]
