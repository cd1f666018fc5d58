"""An independent, deliberately naive ShuffleBits, following the authors' reference algorithm
(a loop over each float32's bit string, most significant bit first). Used to generate and
check test vectors; far too slow for anything else."""

from __future__ import annotations

import numpy as np


def seed_permutation(seed: int) -> list[int]:
    perm = np.arange(32)
    np.random.default_rng(seed).shuffle(perm)
    return [int(p) for p in perm]


def permute_word(word: int, perm: list[int]) -> int:
    bits = format(word, "032b")
    return int("".join(bits[p] for p in perm), 2)


def encrypt_words(words: np.ndarray, perm: list[int]) -> np.ndarray:
    return np.array([permute_word(int(w), perm) for w in words.ravel()],
                    dtype=np.uint32).reshape(words.shape)
