"""The interface every template scheme implements, and how its key material is derived.

A template scheme is a keyed, per-application transform of an embedding into a *protected
template* that can be compared with other templates of the same key, but is meant not to be
invertible without the key, nor linkable across keys (ISO/IEC 24745). Unlike `Scheme`
(`_scheme.py`), nothing here is encryption with a round trip: templates are compared, never
opened.

Keying: one 32-byte application secret (`generate_secret()`: `os.urandom(32)`; the keyset layer
does not hold template secrets yet). Each scheme derives its random parameters from it with
HKDF-SHA256, `info = b"featurelock template v1 " + name + dim + parameters`, whose 32-byte output
seeds numpy's PCG64. So one secret gives independent parameters per scheme and per parameter set,
and re-issuing a template (renewability) is issuing a new secret.

All schemes: `scheme = cls(secret, dim, **params)`; `scheme.protect(features (N, dim))` -> (N, m)
templates; `scheme.scores(a, b)` -> (Na, Nb) similarities, higher = more alike.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["TemplateScheme", "SECRET_SIZE", "generate_secret"]

SECRET_SIZE = 32


def generate_secret() -> bytes:
    """A fresh 32-byte application secret."""
    return os.urandom(SECRET_SIZE)


class TemplateScheme(ABC):
    """One application's key of one template scheme. Subclasses state their matching function,
    parameters, and what they are claimed to protect (and not) in their docstring."""

    name: ClassVar[str]
    # "binary" (0/1 uint8), "index" (integer indices) or "real" (float32): how templates are
    # stored and how an attacker featurises them.
    kind: ClassVar[str]
    # One plain sentence on what a measured attack recovers through this scheme; "" if none
    # measured. The deliberately weak control says what it leaks here.
    leaks: ClassVar[str] = ""

    def __init__(self, secret: bytes, dim: int) -> None:
        if not isinstance(secret, (bytes, bytearray)):
            raise TypeError("secret must be bytes")
        if len(secret) != SECRET_SIZE:
            raise ValueError(f"secret must be {SECRET_SIZE} bytes, got {len(secret)}")
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError("dim must be an int")
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        self.dim = int(dim)
        self._secret = bytes(secret)

    # -- parameters -----------------------------------------------------------------------

    @abstractmethod
    def params(self) -> dict[str, int | float | bool]:
        """The public parameters (everything but the secret): go into the KDF and a gallery."""

    def _rng(self) -> np.random.Generator:
        """The generator this key's random parameters are drawn from (HKDF-SHA256 seed)."""
        desc = ",".join(f"{k}={v}" for k, v in sorted(self.params().items()))
        info = f"featurelock template v1 {self.name} dim={self.dim} {desc}".encode()
        seed = HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(self._secret)
        return np.random.default_rng(int.from_bytes(seed, "little"))

    def key_id(self) -> str:
        """A 16-hex-digit fingerprint of the secret (HKDF, separate info: reveals nothing of
        the parameters), so a gallery can refuse a scheme keyed by another secret."""
        kid = HKDF(hashes.SHA256(), 8, salt=None, info=b"featurelock template key id").derive(
            self._secret)
        return kid.hex()

    # -- the contract ---------------------------------------------------------------------

    def protect(self, features: np.ndarray) -> np.ndarray:
        """(N, dim) embeddings -> (N, m) protected templates. Rows are L2-normalised first."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features must be (N, {self.dim}), got {np.shape(features)}")
        if not np.all(np.isfinite(x)):
            raise ValueError("features must be finite")
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
        return self._protect(x)

    @abstractmethod
    def _protect(self, x: np.ndarray) -> np.ndarray:
        """Unit-norm float64 rows -> templates."""

    @abstractmethod
    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(Na, m), (Nb, m) templates -> (Na, Nb) similarity, higher = more alike."""

    # -- what a stolen key gives ----------------------------------------------------------

    def estimate_from_key(self, templates: np.ndarray,
                          init: np.ndarray | None = None) -> np.ndarray | None:
        """The scheme-specific inversion with the key (stolen token): (N, m) -> (N, dim)
        embedding estimates, or None when the scheme has no closed form (the harness then
        relies on the generic attacks: the key lets an attacker make unlimited known pairs).
        `init`: a starting guess, used by iterative solvers and ignored by closed forms."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret>, dim={self.dim}, {self.params()})"

    def __reduce__(self):
        raise TypeError("template schemes hold a secret and cannot be pickled")


def hamming_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - normalised Hamming distance between 0/1 rows (a matrix product: fast)."""
    a = np.asarray(a, np.float32) * 2 - 1
    b = np.asarray(b, np.float32) * 2 - 1
    return (1.0 + (a @ b.T) / a.shape[1]) / 2.0


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T
