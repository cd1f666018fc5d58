"""Disguised-Nets (Sharma & Chen, arXiv 1902.01878): keyed image disguising on the client.

The client disguises every image with a secret key; the untrusted server trains and serves an
ordinary network on disguised images only. numpy + cryptography only, so clients run it.

    image (H, W, C) uint8 -> b x b blocks -> per-block transform -> secret block permutation
                                              ├ rmt:     y = R_p x + N(0, noise^2)   (x in [-.5, .5])
                                              ├ aes:     wide-block AES, deterministic per position
                                              └ shuffle: none (permutation only; attack baseline)

Security, per variant (measured figures: README "Disguised inputs"):

* rmt — NOT semantically secure and NOT authenticated. A linear map per block position
  (`shared=True`: one map for all positions). It holds only while the attacker sees disguised
  images alone; known (original, disguised) pairs give R by least squares (exactly without
  noise, once pairs >= block dimension). Noise is fresh per image (randomised); the
  permutation and projections are deterministic for the key.
* aes — deterministic per block position, like ECB at block granularity: equal blocks at the
  same position give equal ciphertext blocks (codebook attacks), but a block's ciphertext
  reveals nothing else about it, and known pairs teach nothing about other blocks. Each
  block is encrypted by two CBC passes in opposite chunk order, so every output byte depends
  on every input byte of its block. Not authenticated.
* shuffle — the permutation alone; for attack baselines (the jigsaw attack solves it).

All secrets (permutation, projections, AES keys) come from the 32-byte key by HKDF-SHA256
with the spec in the info string, expanded by AES-256-CTR as a DRBG: one key gives unrelated
secrets for different specs. Projections are random ORTHOGONAL matrices (Haar), a deviation
from the paper's unconstrained random matrices: same security against the attacks here, and
the round trip is exact within quantisation because R^-1 = R^T.

A disguised image is an ordinary uint8 image (send it as lossless PNG, never JPEG). RMT output
is mapped to bytes by the fixed affine scale `u = 127.5 + RMT_SCALE * y`, rounded and clipped
to 0..255 (|y| > 1.5 clips; rare, since E[y_i^2] = ||x||^2 / d <= 0.25).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import DisguiseError

__all__ = ["DisguiseSpec", "Disguiser", "DisguiseKey", "VARIANTS", "RMT_SCALE",
           "disguise_metadata_path", "check_disguise_metadata", "key_fingerprint"]

VARIANTS = ("rmt", "aes", "shuffle")
RMT_SCALE = 85.0  # bytes per unit of y: [-1.5, 1.5] -> [0, 255]
_AES_CHUNK = 16
_INFO = b"featurelock/disguise/v1/"


@dataclass(frozen=True)
class DisguiseSpec:
    """What a disguise does to images of one shape. Not secret: a model's config names it."""

    height: int
    width: int
    channels: int = 3
    block: int = 8
    variant: str = "rmt"
    noise: float = 0.0  # rmt only: std of the fresh Gaussian noise, in units of y
    shared: bool = False  # rmt only: one projection for every block position

    def __post_init__(self) -> None:
        for name in ("height", "width", "channels", "block"):
            value = getattr(self, name)
            if type(value) is not int:
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.height % self.block or self.width % self.block:
            raise ValueError(f"block must divide height and width, got {self.block} for "
                             f"{self.height}x{self.width}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if not isinstance(self.noise, (int, float)) or not 0 <= self.noise <= 10:
            raise ValueError(f"noise must be a number in [0, 10], got {self.noise!r}")
        if self.variant != "rmt" and (self.noise or self.shared):
            raise ValueError("noise and shared apply only to the rmt variant")
        if self.variant == "aes" and self.block_dim % _AES_CHUNK:
            raise ValueError(f"aes needs block*block*channels to be a multiple of 16, got "
                             f"{self.block_dim}")

    @property
    def n_blocks(self) -> int:
        return (self.height // self.block) * (self.width // self.block)

    @property
    def block_dim(self) -> int:
        return self.block * self.block * self.channels

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    @property
    def invertible(self) -> bool:
        """Whether undisguise restores images (rmt: within quantisation, absent clipping)."""
        return self.variant != "rmt" or self.noise == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DisguiseSpec":
        try:
            return cls(**{k: data[k] for k in ("height", "width", "channels", "block", "variant",
                                               "noise", "shared")})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed disguise spec: {exc}") from None

    def canonical(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    def with_(self, **changes: Any) -> "DisguiseSpec":
        return DisguiseSpec(**{**self.to_dict(), **changes})


class DisguiseKey:
    """The disguise key type of a Keyset: 32 random bytes, purpose "disguise". It lives with
    the data owner only: feature encryption and the server's registry refuse it."""

    name: ClassVar[str] = "disguise"
    purpose: ClassVar[str] = "disguise"
    key_size: ClassVar[int] = 32
    leaks: ClassVar[str] = ""
    sealed: ClassVar[bool] = False

    @classmethod
    def generate_key(cls) -> bytes:
        return os.urandom(cls.key_size)

    @classmethod
    def valid_material(cls, material: bytes) -> bool:
        return len(material) == cls.key_size


def _derive(material: bytes, label: str, spec: DisguiseSpec | None, length: int = 32) -> bytes:
    info = _INFO + label.encode() + b"/" + (spec.canonical() if spec else b"")
    return HKDF(hashes.SHA256(), length, salt=None, info=info).derive(material)


def _keystream(seed: bytes, nbytes: int) -> bytes:
    """AES-256-CTR of zeros under `seed`: the DRBG every secret is drawn from."""
    enc = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    return enc.update(bytes(nbytes)) + enc.finalize()


def _uniform(seed: bytes, n: int) -> np.ndarray:
    """n uniforms in (0, 1) from 53-bit integers of the keystream."""
    words = np.frombuffer(_keystream(seed, 8 * n), dtype="<u8") >> np.uint64(11)
    return (words.astype(np.float64) + 0.5) / float(1 << 53)


def _orthogonal(seed: bytes, count: int, d: int) -> np.ndarray:
    """`count` Haar-random d x d orthogonal matrices (QR of Gaussians, signs fixed)."""
    u = _uniform(seed, 2 * count * d * d).reshape(2, count, d, d)
    gauss = np.sqrt(-2 * np.log(u[0])) * np.cos(2 * np.pi * u[1])  # Box-Muller
    q, r = np.linalg.qr(gauss)
    return (q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]).astype(np.float64)


def to_blocks(images: np.ndarray, block: int) -> np.ndarray:
    """(N, H, W, C) -> (N, n_blocks, block*block*C), blocks in row-major order."""
    n, h, w, c = images.shape
    x = images.reshape(n, h // block, block, w // block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (h // block) * (w // block), block * block * c)


def from_blocks(blocks: np.ndarray, spec: DisguiseSpec) -> np.ndarray:
    b, (h, w, c) = spec.block, spec.shape
    x = blocks.reshape(len(blocks), h // b, w // b, b, b, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(len(blocks), h, w, c)


class Disguiser:
    """One key applied under one spec. Secrets are derived once, on first use; none appears in
    repr, str or errors. `fingerprint` (non-secret, one-way) names the key in model metadata."""

    __slots__ = ("spec", "fingerprint", "_material", "_secrets")

    def __init__(self, material: bytes, spec: DisguiseSpec) -> None:
        if not isinstance(material, (bytes, bytearray)):
            raise TypeError("key must be bytes")
        if len(material) != DisguiseKey.key_size:
            raise ValueError(f"key must be {DisguiseKey.key_size} bytes, got {len(material)}")
        if not isinstance(spec, DisguiseSpec):
            raise TypeError("spec must be a DisguiseSpec")
        self.spec = spec
        self._material = bytes(material)
        self.fingerprint = key_fingerprint(self._material)
        self._secrets: dict[str, Any] | None = None

    def _derived(self) -> dict[str, Any]:
        if self._secrets is None:
            s, m = self.spec, self._material
            perm = np.argsort(_uniform(_derive(m, "permutation", s), s.n_blocks), kind="stable")
            out: dict[str, Any] = {"perm": perm, "inv": np.argsort(perm)}
            if s.variant == "rmt":
                out["R"] = _orthogonal(_derive(m, "projection", s), 1 if s.shared else s.n_blocks,
                                       s.block_dim)
            elif s.variant == "aes":
                keys = _derive(m, "aes", s, 64)
                ivs = np.frombuffer(_keystream(_derive(m, "aes-iv", s), 32 * s.n_blocks),
                                    np.uint8).reshape(2, s.n_blocks, _AES_CHUNK)
                out["aes"] = (keys[:32], keys[32:], ivs)
            self._secrets = out
        return self._secrets

    # -- public API --------------------------------------------------------------------
    def disguise(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (H, W, C) or (N, H, W, C) of the spec's shape -> disguised, same shape.
        RMT draws fresh noise from the OS."""
        return self._disguise(images, np.random.default_rng(int.from_bytes(os.urandom(16), "big")))

    def undisguise(self, images: np.ndarray) -> np.ndarray:
        """The inverse (see `DisguiseSpec.invertible`); with a wrong key: unrelated pixels."""
        x, single = self._check(images)
        sec = self._derived()
        blocks = to_blocks(x, self.spec.block)[:, sec["perm"]]  # back to source positions
        if self.spec.variant == "rmt":
            y = (blocks.astype(np.float64) - 127.5) / RMT_SCALE
            plain = _per_position(y, sec["R"].transpose(0, 2, 1)) if not self.spec.shared else y @ sec["R"][0]
            blocks = np.clip(np.rint((plain + 0.5) * 255.0), 0, 255).astype(np.uint8)
        elif self.spec.variant == "aes":
            blocks = self._aes(blocks, decrypt=True)
        out = from_blocks(blocks, self.spec)
        return out[0] if single else out

    # -- private path: the noise generator is injectable, so tests can pin it ----------
    def _disguise(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x, single = self._check(images)
        sec, s = self._derived(), self.spec
        blocks = to_blocks(x, s.block)
        if s.variant == "rmt":
            v = blocks.astype(np.float64) / 255.0 - 0.5
            y = _per_position(v, sec["R"]) if not s.shared else v @ sec["R"][0].T
            if s.noise:
                y = y + rng.normal(0.0, s.noise, y.shape)
            blocks = np.clip(np.rint(127.5 + RMT_SCALE * y), 0, 255).astype(np.uint8)
        elif s.variant == "aes":
            blocks = self._aes(blocks, decrypt=False)
        out = from_blocks(blocks[:, sec["inv"]], s)  # output position perm[p] holds block p
        return out[0] if single else out

    def _check(self, images: np.ndarray) -> tuple[np.ndarray, bool]:
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            raise TypeError("images must be a uint8 numpy array")
        single = images.ndim == 3
        x = images[None] if single else images
        if x.ndim != 4 or x.shape[1:] != self.spec.shape:
            raise DisguiseError(f"images must be {self.spec.shape} (H, W, C) uint8, got "
                                f"{images.shape}")
        return np.ascontiguousarray(x), single

    def _aes(self, blocks: np.ndarray, decrypt: bool) -> np.ndarray:
        """Two CBC passes per block (forward, then over the chunks reversed), vectorised over
        every (image, block) row by running AES-ECB on one chunk column at a time."""
        k1, k2, ivs = self._derived()["aes"]
        n, p, d = blocks.shape
        chunks = blocks.reshape(n, p, d // _AES_CHUNK, _AES_CHUNK)
        iv = [np.broadcast_to(ivs[i], (n, p, _AES_CHUNK)) for i in (0, 1)]
        if not decrypt:
            return _cbc(_cbc(chunks, k1, iv[0], False)[:, :, ::-1], k2, iv[1], False).reshape(n, p, d)
        return _cbc(_cbc(chunks, k2, iv[1], True)[:, :, ::-1], k1, iv[0], True).reshape(n, p, d)

    def __repr__(self) -> str:
        return f"Disguiser({self.spec.variant}, block={self.spec.block}, key={self.fingerprint})"

    def __reduce__(self):
        raise TypeError("disguisers hold key material and cannot be pickled")


def _per_position(v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """y[n, p] = r[p] @ v[n, p] for (N, P, d) blocks, as one batched BLAS product."""
    return np.matmul(v.transpose(1, 0, 2), r.transpose(0, 2, 1)).transpose(1, 0, 2)


def _ecb(key: bytes, data: np.ndarray, decrypt: bool) -> np.ndarray:
    c = Cipher(algorithms.AES(key), modes.ECB())
    op = c.decryptor() if decrypt else c.encryptor()
    raw = op.update(np.ascontiguousarray(data).tobytes()) + op.finalize()
    return np.frombuffer(raw, np.uint8).reshape(data.shape)


def _cbc(chunks: np.ndarray, key: bytes, iv: np.ndarray, decrypt: bool) -> np.ndarray:
    """CBC over axis 2 of (N, P, m, 16), one IV per (N, P) row."""
    out = np.empty_like(chunks)
    prev = iv
    for j in range(chunks.shape[2]):
        if decrypt:
            out[:, :, j] = _ecb(key, chunks[:, :, j], True) ^ prev
            prev = chunks[:, :, j]
        else:
            out[:, :, j] = prev = _ecb(key, chunks[:, :, j] ^ prev, False)
    return out


def key_fingerprint(material: bytes) -> str:
    """A non-secret name for a disguise key (one-way): models record it, clients compare it."""
    return "dk:" + hashlib.sha256(_derive(material, "fingerprint", None)).hexdigest()[:16]


def disguise_metadata_path(weights: str | os.PathLike) -> Path:
    """Where `featurelock train --disguise` records spec, key id and key fingerprint."""
    return Path(f"{os.fspath(weights)}.disguise.json")


def check_disguise_metadata(weights: str | os.PathLike, disguiser: Disguiser | None) -> dict | None:
    """DisguiseError unless the client's disguiser is the one the model was trained under
    (same key fingerprint and spec), or both are plain. Returns the metadata. Clients call
    this before sending: a wrong key gives garbage outputs, never an error, at the server."""
    path = disguise_metadata_path(weights)
    try:
        meta = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        raise DisguiseError(f"cannot read {path.name}") from None
    if meta is None and disguiser is None:
        return None
    if meta is None or disguiser is None:
        raise DisguiseError("the model was trained on " + ("plain" if meta is None else "disguised")
                            + " images; the client sends the other kind")
    if meta.get("key_fingerprint") != disguiser.fingerprint or meta.get("spec") != disguiser.spec.to_dict():
        raise DisguiseError(f"the model was trained under disguise key {meta.get('key_fingerprint')}"
                            f" (spec {meta.get('spec')}); the client's is {disguiser.fingerprint}")
    return meta
