"""Known-plaintext key recovery: learn a fixed bit permutation from (feature, response) pairs.

Threat model: an insider who holds the model file (or a leaked set of plaintext features)
and can query the endpoint: for its own images it knows both the plaintext feature and the
response. A scheme that applies one fixed permutation to the bits of every element
(`shufflebits`) gives every pair D = 256 equations per bit position: for each response bit
position the attacker keeps the plaintext position that agrees with it on every element, and
completes a permutation by assignment. It then decrypts the victims' leaked outputs.

Reported per number of known pairs k: positions pinned down (a unique perfect candidate),
and the share of victims' words decrypted bit-exactly and to 1e-3 relative (the gated score;
robust to a server whose floats differ from the insider's copy in the last bits). A
randomised scheme gives nothing: what is learned from one message does not carry to another.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..attack import Attack, Finding, Outcome, TargetView, register
from ..metrics import mean_interval
from ..representations import bits_view, payload_words, words_from_bits

PAIRS = (1, 2, 4, 8, 16)


def agreement(plain_words: np.ndarray, cipher_words: np.ndarray) -> np.ndarray:
    """(32, 32): share of elements where response bit j equals plaintext bit i."""
    p = bits_view(plain_words.reshape(1, -1)).reshape(-1, 32).astype(np.float32)
    c = bits_view(cipher_words.reshape(1, -1)).reshape(-1, 32).astype(np.float32)
    return (c.T @ p + (1 - c).T @ (1 - p)) / p.shape[0]


def recover_permutation(plain_words: np.ndarray, cipher_words: np.ndarray) -> tuple[np.ndarray, int]:
    """(perm, pinned): response bit j carries plaintext bit perm[j]; `pinned` counts response
    positions with exactly one plaintext position that agrees on every element."""
    agree = agreement(plain_words, cipher_words)
    _, perm = linear_sum_assignment(-agree)
    pinned = int(((agree >= 1.0).sum(axis=1) == 1).sum())
    return perm, pinned


def decrypt(cipher_words: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Undo `perm` on (N, D) words."""
    bits = bits_view(cipher_words).reshape(cipher_words.shape[0], -1, 32)
    plain = np.empty_like(bits)
    plain[:, :, perm] = bits
    return words_from_bits(plain.reshape(cipher_words.shape[0], -1))


@register
class KeyRecovery(Attack):
    name = "key-recovery"
    holds = ("the model file (plaintext features of its own queries) and the endpoint's "
             "responses to them: known (feature, ciphertext) pairs")
    columns = ("key recovery",)
    cost = 1.2

    def run(self, view: TargetView) -> Outcome:
        plain = np.ascontiguousarray(view.aux_plain, np.float32).view(np.uint32)
        cipher = payload_words(view.responses)
        victims = payload_words(view.leaked)
        truth = np.ascontiguousarray(view.victim_plain, np.float32)
        if cipher.shape != plain.shape or victims.shape != truth.shape:
            return Outcome(not_applicable=(
                "the payload is not one 32-bit word per element of the model file's "
                f"{truth.shape[1]}-d features"))
        rows = []
        for k in [k for k in PAIRS if k <= len(plain)]:
            perm, pinned = recover_permutation(plain[:k], cipher[:k])
            words = decrypt(victims, perm)
            exact = (words == truth.view(np.uint32)).mean(axis=1)
            with np.errstate(invalid="ignore", over="ignore"):
                close = (np.abs(words.view(np.float32) - truth)
                         <= 1e-3 * np.abs(truth) + 1e-6).mean(axis=1)
            rows.append({"pairs": k, "positions_pinned": pinned,
                         "exact_share": float(exact.mean()), "close_share": float(close.mean()),
                         "_close": close})
        best = rows[-1]
        needed = next((r["pairs"] for r in rows if r["close_share"] >= 0.99), None)
        close = best.pop("_close")
        cfg = self.config
        score = mean_interval(close, view.data.victim_ids, cfg.confidence, cfg.n_boot, cfg.seed)
        for r in rows:
            r.pop("_close", None)
        return Outcome([Finding("key recovery", f"victim words decrypted ({best['pairs']} pairs)",
                                score, 0.0, int(close.size), summary=True)],
                       {"status": "ran", "pairs_needed_for_99pct": needed, "by_pairs": rows})
