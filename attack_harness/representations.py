"""How an attacker may read a response: each representation is a separate attacker.

A response is what any client receives: a plaintext feature array, or envelope bytes. The
envelope format is public, so the attacker can find the payload (but never open it).

    float    the payload's 32-bit words read as float32 (ShuffleBits ciphertext is a float32
             array); NaN -> 0 and +-inf -> +-float32 max, so a model can be fitted on it
    bits     the 32 bits of every word as separate 0/1 inputs, most-significant first (index 0
             is the sign bit, 1..8 the exponent), matching shared/research/shufflebits.md
    hamming  the popcount (0..32) of every word: any pure bit permutation preserves it
    bytes    the raw bytes of the whole response (header, nonce, payload, tag) as 0..255
    structure the ciphertext-only structure attack (`bitstructure`): the sign and exponent
             positions of a fixed bit permutation inferred from everything the attacker holds
             (unit norm, bits correlated across messages), and the values decoded with them
    columns  a whole-message reader: the 32 bit columns of a message (bit position k of
             every element), each centred and unit-normalised. A bit permutation drawn
             afresh per message (shufflebits-otp) reorders the columns but keeps each one,
             so messages are compared column against column in any order (`column_similarity`)
    recovered the ciphertext-only attack on a bit permutation drawn afresh per message
             (`realign`): each message's sign, exponent and top mantissa columns found from
             its own statistics and the other messages', and the values decoded with them;
             every ordered attack then runs on the recovered features

For plaintext responses the payload is the little-endian float32 feature bytes. `columns` has
no fixed coordinate order (ORDERED lists the readings that do): learned attacks that fit one
weight per input skip it; similarity-based ones use `column_similarity`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from featurelock.middleware import Envelope
from featurelock.middleware.errors import DecryptionError

__all__ = ["REPRESENTATIONS", "ORDERED", "DECODED", "Response", "payload_words", "raw_bytes", "float_view",
           "bits_view", "hamming_view", "bytes_view", "columns_view", "column_similarity",
           "represent", "words_from_bits"]

REPRESENTATIONS = ("float", "bits", "hamming", "bytes", "structure", "columns", "recovered")
ORDERED = ("float", "bits", "hamming", "bytes", "structure", "recovered")
DECODED = ("structure", "recovered")  # readings that decode feature values from ciphertext
Response = np.ndarray | bytes | bytearray

_F32_MAX = float(np.finfo(np.float32).max)
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _payload_bytes(response: Response) -> bytes:
    if isinstance(response, np.ndarray):
        return np.ascontiguousarray(response, dtype="<f4").tobytes()
    try:
        return bytes(Envelope.from_bytes(response).payload)
    except DecryptionError:  # not an envelope: the attacker reads the bytes as they come
        return bytes(response)


def raw_bytes(response: Response) -> bytes:
    """The response as bytes on the wire (plaintext: its float32 bytes)."""
    if isinstance(response, np.ndarray):
        return np.ascontiguousarray(response, dtype="<f4").tobytes()
    return bytes(response)


def _stack(chunks: Sequence[bytes]) -> np.ndarray:
    """(N, L) uint8, zero-padded to the longest (equal lengths in practice)."""
    length = max((len(c) for c in chunks), default=0)
    out = np.zeros((len(chunks), length), dtype=np.uint8)
    for i, c in enumerate(chunks):
        out[i, :len(c)] = np.frombuffer(c, dtype=np.uint8)
    return out


def payload_words(responses: Sequence[Response]) -> np.ndarray:
    """(N, D) uint32: each response's payload as little-endian 32-bit words."""
    data = _stack([_payload_bytes(r) for r in responses])
    pad = (-data.shape[1]) % 4
    if pad:
        data = np.pad(data, ((0, 0), (0, pad)))
    return np.ascontiguousarray(data).view("<u4").astype(np.uint32)


def float_view(words: np.ndarray) -> np.ndarray:
    """(N, D) float32 with NaN -> 0 and +-inf -> +-float32 max."""
    values = np.ascontiguousarray(words, dtype=np.uint32).view(np.float32)
    return np.nan_to_num(values, nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)


def bits_view(words: np.ndarray) -> np.ndarray:
    """(N, D * 32) uint8 of 0/1: bit 31 (the sign) of word 0 first, then down to bit 0."""
    words = np.ascontiguousarray(words, dtype=np.uint32)
    big_endian = words.astype(">u4").view(np.uint8).reshape(words.shape[0], -1)
    return np.unpackbits(big_endian, axis=1)


def words_from_bits(bits: np.ndarray) -> np.ndarray:
    """The inverse of bits_view."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8), axis=1)
    return np.ascontiguousarray(packed).view(">u4").astype(np.uint32)


def hamming_view(words: np.ndarray) -> np.ndarray:
    """(N, D) uint8 popcount of every 32-bit word."""
    words = np.ascontiguousarray(words, dtype=np.uint32)
    return _POPCOUNT8[words.view(np.uint8)].reshape(*words.shape, 4).sum(axis=-1, dtype=np.uint8)


def columns_view(words: np.ndarray) -> np.ndarray:
    """(N, 32, D) float32: per message, each bit position's column over the D elements,
    centred and scaled to unit norm (constant columns are all zero: they carry nothing)."""
    cols = bits_view(words).reshape(words.shape[0], words.shape[1], 32).astype(np.float32)
    cols = np.ascontiguousarray(cols.transpose(0, 2, 1))
    cols -= cols.mean(axis=2, keepdims=True)
    norm = np.linalg.norm(cols, axis=2, keepdims=True)
    return np.divide(cols, norm, out=np.zeros_like(cols), where=norm > 1e-6)


def column_similarity(a: np.ndarray, b: np.ndarray, block: int = 64) -> np.ndarray:
    """(Na, Nb): for two sets of column views, the best correlation between any column of
    one message and any column of the other. Invariant to a separate bit permutation per
    message; the sign column of one person's features matches across their images."""
    a = a.reshape(a.shape[0], 32, -1)
    b = b.reshape(b.shape[0], 32, -1)
    flat_b = b.reshape(-1, b.shape[2])
    out = np.empty((a.shape[0], b.shape[0]), np.float32)
    for s in range(0, a.shape[0], block):
        part = a[s:s + block].reshape(-1, a.shape[2]) @ flat_b.T  # (k*32, Nb*32)
        out[s:s + block] = part.reshape(-1, 32, b.shape[0], 32).max(axis=(1, 3))
    return out


def bytes_view(responses: Sequence[Response]) -> np.ndarray:
    """(N, L) uint8 raw response bytes."""
    return _stack([raw_bytes(r) for r in responses])


def represent(responses: Sequence[Response], name: str) -> np.ndarray:
    """The (N, d) float32 design matrix of one representation."""
    if name == "bytes":
        return bytes_view(responses).astype(np.float32)
    words = payload_words(responses)
    if name == "float":
        return float_view(words)
    if name == "bits":
        return bits_view(words).astype(np.float32)
    if name == "hamming":
        return hamming_view(words).astype(np.float32)
    if name == "structure":
        from .bitstructure import decode, infer_layout

        return decode(words, infer_layout(words)).astype(np.float32)
    if name == "columns":
        return columns_view(words).reshape(len(words), -1)
    if name == "recovered":
        from .realign import recover

        return recover(words)
    raise ValueError(f"unknown representation {name!r}; choose one of {', '.join(REPRESENTATIONS)}")
