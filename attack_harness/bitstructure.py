"""Ciphertext-only structure attack on bit-permutation ciphers of float32 features.

Threat model. The attacker holds only ciphertext words: (N, D) uint32 payloads encrypted under
ONE unknown permutation of the 32 bits of each float32 (the `shufflebits` scheme, or
`shufflebits-otp` messages once another step has aligned them to a common column order). No
key, no queries, no known (plaintext, ciphertext) pairs. It assumes the service sends vectors
of a known L2 norm (1: re-ID and face embeddings are L2-normalised).

What it recovers. Which ciphertext position carries the sign, the 8 exponent bits in order and
the top mantissa bits (`infer_layout`), hence every value to about 2^-9 relative (`decode`):
the features themselves, and with them who is who.

How. A float32 is sign * 2^(e - 127) * (1 + mantissa).
  1. The norm fixes the magnitude bits: a candidate layout decodes every message, and the
     right one gives ||x|| = 1 for each (RMS error of ln ||x|| ~1e-4 with 8 mantissa bits);
     one wrong exponent bit misses by ~1 % or more. The exponent starts as one constant-0
     position, then the constant-1 ones (unit vectors' exponents share the prefix 0111...),
     then the most nearly constant others. Its varying positions are swapped with each other
     and with the positions that fit best as mantissa, each candidate scored after choosing
     its best 3 mantissa bits (with none, a wrong exponent LSB fits better than the right
     one), then reordered with 8. The mantissa is then filled greedily.
  2. The norm ignores the sign. Of the positions left, the sign is the one whose bits are
     correlated ACROSS messages (similar images have similar signed features): low mantissa
     bits are noise. A constant left-over position is a constant sign (non-negative
     features). (A position's bias per feature dimension is a weaker signal for this model:
     3.3x the null for the sign, 1.1-1.7x for exponent bits; it is not used.)
  3. Constant exponent positions cannot be ordered, and need not be: every order decodes the
     same values.

The attack sees positions only through their statistics, so every key is alike to it; what
matters is how many messages the attacker holds. Measured over 20 keys
(default_rng(k).permutation(32)), default re-ID model on synthetic pedestrians (256-d), layout
inferred from N random victim ciphertexts, then all 240 victims decoded:

    N messages held                   4      8     16    >= 32 (32, 64, 240)
    sign position right             14     17     20     20
    exponent exact on every word     7     11     18*    20
    top 8 mantissa in order          1     10     19     20
    confident                        0     15     20     20
    Pearson r decoded/true, min   -0.01  -0.00  1.0000  1.0000
    victims' rank-1, mean          0.61   0.74   0.861  0.861  (plaintext 0.861, chance 0.009)

    * the other 2: 0.04 % of words, values below 2^-15.
Every confident layout decoded with r > 0.9999. Also exact: PixelEmbedder features, the
features' absolute values (a constant sign), iid Gaussian unit vectors of 128 to 2048 dims
(magnitudes only: without shared structure the sign is not found, nor is anything linkable).
Not confident, never NaN or inf: random words, aes-256-gcm and shufflebits-masked payloads
(norm_error ~89), unaligned shufflebits-otp (~83), vectors of another norm than `norm`.
Time, one core of a shared 2-core VM: 0.1-0.35 s per layout at 256-d (the search reads at most
16384 words), 0.6-1 s at 2048-d; 0.5-1.3 s on random words (the search wanders longer).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

__all__ = ["BitLayout", "infer_layout", "decode", "true_layout"]

_EXPONENT_BITS = 8
_SHIFTS = (31 - np.arange(32)).astype(np.uint32)  # MSB-first position i is bit 31 - i
_F32_MAX = float(np.finfo(np.float32).max)
# Confidence: enough messages that the norm fit cannot be an overfit (measured: 4 messages
# fit wrong exponents to 1e-4), and a sign that stands out by more than 8 null standard
# deviations (the largest of 20 left-over positions in random words: < 7 from 3 messages on).
_MIN_MESSAGES = 8
_MIN_MESSAGES_SIGN = 4
_MIN_SIGN_EVIDENCE = 8.0
_CONSTANT = 1e-3  # a position whose bit changes in fewer than 0.1 % of words is constant
_OUTSIDERS = 6  # positions outside the exponent tried in its place: the best-fitting mantissa
_MAX_EXPONENT_ROUNDS = 8


@dataclass(frozen=True)
class BitLayout:
    """Ciphertext positions (MSB-first, 0..31) that play each plaintext role.

    norm_error: RMS over the messages read of ln(decoded norm / expected norm); ~1e-4 when
    right, ~1e-2 for one wrong exponent bit, ~90 for random words.
    sign_evidence: how far the sign position's cross-message coherence stands above the other
    left-over positions', in null standard deviations (< 7 without signal; inf for a constant
    sign; 0 from fewer than 4 messages).
    messages: how many messages the search read.
    """

    sign: int
    exponent: tuple[int, ...]  # 8 positions, most significant first
    mantissa: tuple[int, ...]  # the top mantissa positions, most significant first
    norm_error: float
    sign_evidence: float
    messages: int

    @property
    def confident(self) -> bool:
        # Right layouts miss the norm by less than the mantissa bits left unread (2^-9 for
        # 8 bits); one wrong exponent bit misses by about 1 %.
        return (self.messages >= _MIN_MESSAGES
                and self.norm_error < 2.0 ** -(len(self.mantissa) + 1)
                and self.sign_evidence > _MIN_SIGN_EVIDENCE)

    def to_dict(self) -> dict:
        """JSON-ready: an infinite sign_evidence (constant sign) becomes None."""
        out = {**asdict(self), "confident": self.confident}
        if not np.isfinite(out["sign_evidence"]):
            out["sign_evidence"] = None
        return out


def infer_layout(words: np.ndarray, *, n_mantissa: int = 8, norm: float = 1.0,
                 max_words: int = 16384) -> BitLayout:
    """The layout of ciphertext words (N, D) uint32 from one key, from statistics alone.

    norm: the plaintext vectors' L2 norm. max_words: the search reads at most this many words
    (whole messages, evenly spaced, at least 16 of them).
    """
    words = _check_words(words, 2)
    if not 0 <= n_mantissa <= 23:
        raise ValueError(f"n_mantissa must be in 0..23, got {n_mantissa}")
    if not norm > 0:
        raise ValueError(f"norm must be > 0, got {norm}")
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    n, d = words.shape
    keep = min(n, max(16, max_words // d))
    sample = words[np.linspace(0, n - 1, keep).astype(np.intp)]
    fit = _NormFit(_bit_planes(sample), keep, float(np.log(norm)))
    # Coarse: which positions form the exponent (3 mantissa bits tell a low exponent bit from
    # a top mantissa bit). Fine: their order, down to bits that move 0.1 % of the norm.
    exponent = _search_exponent(fit, _initial_exponent(fit.marginals), 3, _OUTSIDERS)
    exponent = _search_exponent(fit, exponent, max(n_mantissa, 3), 0)
    mantissa, score = _complete_mantissa(fit, exponent, n_mantissa)
    leftover = [p for p in range(32) if p not in exponent and p not in mantissa]
    sign, evidence = _find_sign(fit.planes.reshape(32, keep, d), leftover)
    return BitLayout(sign=sign, exponent=tuple(exponent), mantissa=tuple(mantissa),
                     norm_error=float(np.sqrt(score)), sign_evidence=evidence, messages=keep)


def decode(words: np.ndarray, layout: BitLayout) -> np.ndarray:
    """(N, D) float32 sign * 2^(e - 127) * (1 + top mantissa + half its last step); finite."""
    words = _check_words(words, 1)
    e = sum(_bit(words, p) * 2.0 ** (_EXPONENT_BITS - 1 - j)
            for j, p in enumerate(layout.exponent))
    m = sum((_bit(words, p) * 2.0 ** -(k + 1) for k, p in enumerate(layout.mantissa)),
            np.full(words.shape, 2.0 ** -(len(layout.mantissa) + 1)))
    values = (1.0 - 2.0 * _bit(words, layout.sign)) * np.exp2(e - 127.0) * (1.0 + m)
    return np.clip(values, -_F32_MAX, _F32_MAX).astype(np.float32)  # 2^128 only


def true_layout(perm: Sequence[int] | np.ndarray, n_mantissa: int = 8) -> BitLayout:
    """The layout a ShuffleBits key `perm` really has (output bit i = input bit perm[i]).
    For scoring the attack only: the attacker never holds it."""
    where = np.argsort(np.asarray(perm))  # where[b]: ciphertext position of plaintext bit b
    return BitLayout(sign=int(where[0]), exponent=tuple(int(p) for p in where[1:9]),
                     mantissa=tuple(int(p) for p in where[9:9 + n_mantissa]),
                     norm_error=0.0, sign_evidence=float("inf"), messages=0)


# ----------------------------------------------------------------------------- search

def _check_words(words: np.ndarray, min_messages: int) -> np.ndarray:
    if not isinstance(words, np.ndarray) or words.dtype != np.uint32:
        raise TypeError(f"words must be a uint32 numpy array, got "
                        f"{getattr(words, 'dtype', type(words).__name__)}")
    if words.ndim != 2 or words.shape[0] < min_messages or words.shape[1] < 1:
        raise ValueError(f"words must be (N, D) with N >= {min_messages} messages, "
                         f"got shape {words.shape}")
    return words


def _bit(words: np.ndarray, position: int) -> np.ndarray:
    return ((words >> _SHIFTS[position]) & 1).astype(np.float64)


def _constant(marginal: float) -> bool:
    return min(marginal, 1.0 - marginal) < _CONSTANT


def _bit_planes(words: np.ndarray) -> np.ndarray:
    """(32, N * D) float32 0/1: row i is MSB-first position i of every word."""
    return ((words.reshape(1, -1) >> _SHIFTS[:, None]) & 1).astype(np.float32)


class _NormFit:
    """How well candidate layouts decode messages to the expected norm:
    score = mean over messages of (ln ||x|| - ln norm)^2."""

    def __init__(self, planes: np.ndarray, n_messages: int, log_norm: float) -> None:
        self.planes, self.n_messages, self.log_norm = planes, n_messages, log_norm
        self.marginals = planes.mean(axis=1)

    def exponent_squares(self, exponent: Sequence[int]) -> np.ndarray:
        """4^(e - 127) for every word, e read from the exponent positions (MSB first)."""
        weights = 2.0 ** np.arange(_EXPONENT_BITS - 1, -1, -1, dtype=np.float32)
        e = weights @ self.planes[list(exponent)]  # exact: integers 0..255
        return np.exp2(2.0 * (e.astype(np.float64) - 127.0))  # finite: 2^-254 .. 2^256

    def score(self, squares: np.ndarray, mantissa: np.ndarray, n_bits: int) -> float:
        # The unread mantissa bits are a fraction u uniform in [0, step): E[(1 + m + u)^2] is
        # (1 + m)^2 + (1 + m) step + step^2 / 3. A biased fill would let small wrong exponents
        # "correct" it.
        step, one_m = 2.0 ** -n_bits, 1.0 + mantissa
        norms2 = (squares * (one_m * (one_m + step) + step * step / 3.0)).reshape(
            self.n_messages, -1).sum(axis=1)
        return float(np.mean((0.5 * np.log(norms2) - self.log_norm) ** 2))


def _initial_exponent(marginals: np.ndarray) -> list[int]:
    """A unit vector's exponents share the prefix 0, 1, 1, ... (values below 1, above 2^-64):
    one constant-0 position, the constant-1 positions, then the most nearly constant others.
    Further constant-0 positions are left out: one of them is a constant sign."""
    by_constancy = sorted(range(32), key=lambda p: -abs(marginals[p] - 0.5))  # stable
    zeros = [p for p in by_constancy if marginals[p] < _CONSTANT]
    ones = [p for p in by_constancy if marginals[p] > 1 - _CONSTANT]
    others = [p for p in by_constancy if p not in zeros and p not in ones]
    return (zeros[:1] + ones + others)[:_EXPONENT_BITS]


def _complete_mantissa(fit: _NormFit, exponent: Sequence[int],
                       n_bits: int) -> tuple[list[int], float]:
    """Given the exponent, fill the mantissa slots one by one with the best-fitting position."""
    squares = fit.exponent_squares(exponent)
    pool = [p for p in range(32) if p not in exponent]
    chosen, mantissa = [], np.zeros(fit.planes.shape[1], np.float32)
    score = fit.score(squares, mantissa, 0)
    for k in range(n_bits):
        step = np.float32(2.0 ** -(k + 1))
        score, best = min((fit.score(squares, mantissa + step * fit.planes[p], k + 1), p)
                          for p in pool)
        chosen.append(best)
        pool.remove(best)
        mantissa = mantissa + step * fit.planes[best]
    return chosen, score


def _search_exponent(fit: _NormFit, exponent: list[int], probe_bits: int,
                     n_outsiders: int) -> list[int]:
    """Swap exponent positions with each other or with likely outsiders while that helps.

    A candidate exponent is scored with its best `probe_bits` mantissa bits: with none, a
    wrong low exponent bit can fit the norms better than the right one."""
    def score(candidate: list[int]) -> float:
        return _complete_mantissa(fit, candidate, probe_bits)[1]

    best = score(exponent)
    for _ in range(_MAX_EXPONENT_ROUNDS):
        outsiders = _complete_mantissa(fit, exponent, n_outsiders)[0]
        for trial in _exponent_neighbours(exponent, outsiders, fit.marginals):
            s = score(trial)
            if s < best * (1 - 1e-3):  # less is sampling noise
                best, exponent = s, trial
                break
        else:
            break
    return exponent


def _exponent_neighbours(exponent: list[int], outsiders: Sequence[int],
                         marginals: np.ndarray):
    """Swaps of two varying exponent slots, or of one with an outsider. Constant positions
    stay on top: the bits above the highest one that varies are the values' common prefix."""
    varying = [i for i, p in enumerate(exponent) if not _constant(marginals[p])]
    for a, i in enumerate(varying):
        for j in varying[a + 1:]:
            trial = list(exponent)
            trial[i], trial[j] = trial[j], trial[i]
            yield trial
        for p in outsiders:
            trial = list(exponent)
            trial[i] = p
            yield trial


def _find_sign(planes: np.ndarray, leftover: Sequence[int]) -> tuple[int, float]:
    """The left-over position whose bits are most correlated across messages, and how far its
    coherence stands above the others' (see BitLayout). A constant one wins outright."""
    marginals = planes[list(leftover)].mean(axis=(1, 2))
    constant = [p for p, q in zip(leftover, marginals) if _constant(q)]
    if constant:
        return int(constant[0]), float("inf")
    coherence = np.array([_coherence(planes[p]) for p in leftover])
    best = int(np.argmax(coherence))
    rest = np.delete(coherence, best)
    if not rest.size:
        return int(leftover[best]), 0.0
    # Without signal, coherence * pairs is about chi-square with `pairs` degrees of freedom.
    n = planes.shape[1]
    if n < _MIN_MESSAGES_SIGN:  # a handful of pairs: the null's tail is too heavy to judge
        return int(leftover[best]), 0.0
    pairs = n * (n - 1) / 2
    null = max(float(np.median(rest)), 1e-12)
    return int(leftover[best]), float((coherence[best] / null - 1) / np.sqrt(2 / pairs))


def _coherence(bits: np.ndarray) -> float:
    """D * mean squared correlation between two messages' bit vectors: ~1 for bits that are
    independent across messages, more when messages share signed structure."""
    n, d = bits.shape
    z = bits - bits.mean()
    z /= max(float(z.std()), 1e-12)
    gram = (z @ z.T) / d
    off = gram[~np.eye(n, dtype=bool)]
    return float(d * np.mean(off ** 2))
