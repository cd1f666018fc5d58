"""hpke-x25519 and hpke-mlkem768-x25519: responses sealed to the consumer's public key.

Security: HPKE (RFC 9180) base mode, single shot: a fresh KEM encapsulation per message to the
consumer's public key, HKDF-SHA256, AES-256-GCM. The server is given only public keys, so it
holds nothing that opens a response it has sent: a server compromise exposes the features it
computes from then on, never past ones. The envelope header and the caller's context (model,
version, tenant) are HPKE's `info`, so they are bound exactly as associated data is for the
symmetric schemes. `hpke-mlkem768-x25519` is the hybrid ML-KEM-768 + X25519 KEM: a response
stays confidential unless both X25519 and ML-KEM-768 fall (harvest-now-decrypt-later).

Key material is one byte string, tagged by its half:

    b"S" || private key     the consumer's keyset (X25519: 32 bytes; hybrid: ML-KEM seed 64
                            || X25519 32); can seal and open
    b"P" || public key      what the server's registry holds (X25519: 32; hybrid: ML-KEM
                            1184 || X25519 32); can only seal

Envelope layout (version 3): nonce empty, payload = ciphertext of the features (same size),
tag = KEM encapsulation || AEAD tag (48 bytes, or 1136 for the hybrid).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from ._scheme import DTYPES, Scheme, host_array
from .errors import DecryptionError

__all__ = ["HpkeX25519", "HpkeMlkem768X25519", "PUBLIC", "PRIVATE"]

PUBLIC, PRIVATE = b"P", b"S"
_AEAD_TAG = 16
_X25519 = 32


class _HpkeScheme(Scheme):
    """One suite: subclasses name the KEM and how its keys are (de)serialised."""

    kem: ClassVar[hpke.KEM]
    enc_size: ClassVar[int]
    private_size: ClassVar[int]
    public_size: ClassVar[int]
    nonce_size = 0
    dtypes = frozenset(DTYPES.values())
    leaks = ""
    sealed = True
    envelope_version = 3
    envelope_versions = (3,)

    __slots__ = ("_suite", "_public", "_private")

    def __init__(self, material: bytes) -> None:
        if not isinstance(material, (bytes, bytearray)):
            raise TypeError("key material must be bytes")
        if not self.valid_material(material):
            raise ValueError(f"{self.name} key material is malformed")
        kind, raw = bytes(material[:1]), bytes(material[1:])
        self._suite = hpke.Suite(self.kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
        self._private = self._load_private(raw) if kind == PRIVATE else None
        self._public = self._private.public_key() if self._private else self._load_public(raw)

    # -- key material ----------------------------------------------------------------------
    @classmethod
    def valid_material(cls, material: bytes) -> bool:
        kind = bytes(material[:1])
        size = {PRIVATE: cls.private_size, PUBLIC: cls.public_size}.get(kind)
        return size is not None and len(material) == 1 + size

    @classmethod
    def is_public(cls, material: bytes) -> bool:
        return bytes(material[:1]) == PUBLIC

    @classmethod
    def public_material(cls, material: bytes) -> bytes:
        """The public half of `material` (unchanged if it already is public)."""
        if cls.is_public(material):
            return bytes(material)
        return PUBLIC + cls._public_of(bytes(material[1:]))

    # -- sealing ---------------------------------------------------------------------------
    @classmethod
    def sizes(cls, version: int) -> tuple[int, int]:
        return 0, cls.enc_size + _AEAD_TAG

    def seal_into(self, features: Any, nonce: bytes, associated_data: bytes, out: memoryview) -> None:
        self.check_features(features)
        data = host_array(features).reshape(-1).view(np.uint8)
        sealed = self._suite.encrypt(data, self._public, info=associated_data)
        n, enc = data.nbytes, self.enc_size
        out[:n] = sealed[enc: enc + n]          # ciphertext into the payload
        out[n: n + enc] = sealed[:enc]          # tag = encapsulation || AEAD tag
        out[n + enc:] = sealed[enc + n:]

    def open(self, nonce: bytes, sealed: memoryview, associated_data: bytes,
             dtype: np.dtype, shape: tuple[int, ...], version: int = 3) -> np.ndarray:
        if self._private is None or version != 3:
            raise DecryptionError()
        n = len(sealed) - self.enc_size - _AEAD_TAG
        message = b"".join((sealed[n: n + self.enc_size], sealed[:n], sealed[n + self.enc_size:]))
        try:
            plain = self._suite.decrypt(message, self._private, info=associated_data)
        except (InvalidTag, ValueError):
            raise DecryptionError() from None
        return np.frombuffer(bytearray(plain), dtype=dtype).reshape(shape)

    # -- per suite -------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def generate_key(cls) -> bytes: ...

    @staticmethod
    @abstractmethod
    def _load_private(raw: bytes) -> Any: ...

    @staticmethod
    @abstractmethod
    def _load_public(raw: bytes) -> Any: ...

    @staticmethod
    @abstractmethod
    def _public_of(raw_private: bytes) -> bytes:
        """The raw public key of a raw private key (the suite's key objects don't all
        serialise, so each suite does it from its parts)."""


class HpkeX25519(_HpkeScheme):
    """DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM."""

    name = "hpke-x25519"
    scheme_id = 5
    kem = hpke.KEM.X25519
    enc_size = _X25519
    private_size = public_size = _X25519
    key_size = 1 + _X25519
    tag_size = _X25519 + _AEAD_TAG

    @classmethod
    def generate_key(cls) -> bytes:
        return PRIVATE + x25519.X25519PrivateKey.generate().private_bytes_raw()

    @staticmethod
    def _load_private(raw: bytes) -> x25519.X25519PrivateKey:
        return x25519.X25519PrivateKey.from_private_bytes(raw)

    @staticmethod
    def _load_public(raw: bytes) -> x25519.X25519PublicKey:
        return x25519.X25519PublicKey.from_public_bytes(raw)

    @staticmethod
    def _public_of(raw_private: bytes) -> bytes:
        return x25519.X25519PrivateKey.from_private_bytes(raw_private).public_key().public_bytes_raw()


_MLKEM_SEED, _MLKEM_PUBLIC, _MLKEM_CIPHERTEXT = 64, 1184, 1088


class HpkeMlkem768X25519(_HpkeScheme):
    """The hybrid KEM ML-KEM-768 + X25519, HKDF-SHA256, AES-256-GCM."""

    name = "hpke-mlkem768-x25519"
    scheme_id = 6
    kem = hpke.KEM.MLKEM768_X25519
    enc_size = _MLKEM_CIPHERTEXT + _X25519
    private_size = _MLKEM_SEED + _X25519
    public_size = _MLKEM_PUBLIC + _X25519
    key_size = 1 + private_size
    tag_size = enc_size + _AEAD_TAG

    @classmethod
    def generate_key(cls) -> bytes:
        return (PRIVATE + mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
                + x25519.X25519PrivateKey.generate().private_bytes_raw())

    @staticmethod
    def _load_private(raw: bytes) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(
            mlkem.MLKEM768PrivateKey.from_seed_bytes(raw[:_MLKEM_SEED]),
            x25519.X25519PrivateKey.from_private_bytes(raw[_MLKEM_SEED:]))

    @staticmethod
    def _load_public(raw: bytes) -> hpke.MLKEM768X25519PublicKey:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM_PUBLIC]),
            x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM_PUBLIC:]))

    @staticmethod
    def _public_of(raw_private: bytes) -> bytes:
        ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(raw_private[:_MLKEM_SEED]).public_key()
        return ml.public_bytes_raw() + HpkeX25519._public_of(raw_private[_MLKEM_SEED:])
