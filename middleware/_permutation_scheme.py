"""Shared machinery of the ShuffleBits family (envelope version 2): a bit permutation of every
32-bit word through a Beneš network (`_kernels.py`), authenticated with AES-256-GCM.

Subclasses say which network a message uses (`_network`). The default seal is a pure
permutation plus a tag from AES-GCM used as a MAC: the associated data goes in as the
(discarded) plaintext and the payload as GCM's associated data, so the 16-byte tag covers both
without copying the payload. Each message has a fresh random 96-bit nonce, as for aes-256-gcm.
Version-1 envelopes (HMAC-SHA256) still open, through `_legacy_v1.py`.
"""

from __future__ import annotations

import hmac
import math
from abc import abstractmethod
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._benes import MASK_BYTES, inverse_masks_from_stream, masks_from_stream
from ._kernels import Network
from ._legacy_v1 import V1_TAG_SIZE, LegacyV1Reader
from ._scheme import ENVELOPE_VERSION, Scheme, host_array
from .errors import DecryptionError

__all__ = ["PermutationScheme", "MessageNetworks", "FLOAT32", "derive_key"]

FLOAT32 = np.dtype("<f4")
_TAG = 16


def derive_key(master: bytes, label: str) -> bytes:
    """A 32-byte subkey of `master` for one purpose (HKDF-SHA256, purpose in `info`)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"featurelock/{label}".encode()).derive(master)


class MessageNetworks:
    """A fresh random network per message: its 144 switch bits are the AES-256-CTR keystream
    under (subkey, nonce) (GCM's counter mode; its tag is dropped). No sorting and no routing,
    so deriving one costs one AES call and touches no memory by secret index."""

    __slots__ = ("_prf",)
    _ZEROS = bytes(MASK_BYTES)

    def __init__(self, key: bytes) -> None:
        self._prf = AESGCM(key)

    def forward(self, nonce: bytes) -> Network:
        return Network.trusted(masks_from_stream(self._prf.encrypt(nonce, self._ZEROS, None)))

    def inverse(self, nonce: bytes) -> Network:
        return Network.trusted(inverse_masks_from_stream(self._prf.encrypt(nonce, self._ZEROS, None)))

    def __repr__(self) -> str:
        return "MessageNetworks(<secret>)"

    def __reduce__(self):
        raise TypeError("key material cannot be pickled")


class PermutationScheme(Scheme):
    """Base of the ShuffleBits variants; see each subclass for its security properties."""

    nonce_size = 12
    tag_size = _TAG
    legacy_nonce_size: int  # version 1
    dtypes = frozenset({FLOAT32})

    __slots__ = ("_mac", "_legacy")

    def __init__(self, mac_key: bytes | None, legacy: LegacyV1Reader) -> None:
        # mac_key None: the subclass authenticates by other means (shufflebits-masked: GCM).
        self._mac = AESGCM(mac_key) if mac_key is not None else None
        self._legacy = legacy

    @classmethod
    def sizes(cls, version: int) -> tuple[int, int]:
        return (cls.legacy_nonce_size, V1_TAG_SIZE) if version == 1 else (cls.nonce_size, cls.tag_size)

    @abstractmethod
    def _network(self, nonce: bytes) -> Network:
        """The forward network of the message with this nonce."""

    def _inverse_network(self, nonce: bytes) -> Network:
        return self._network(nonce).inverse()

    def _tag(self, nonce: bytes, associated_data: bytes, payload: memoryview) -> bytes:
        return self._mac.encrypt(nonce, associated_data, payload)[-_TAG:]

    def seal_into(self, features: Any, nonce: bytes, associated_data: bytes, out: memoryview) -> None:
        self.check_features(features)
        n_words = math.prod(features.shape)
        network = self._network(nonce)
        payload = out[: 4 * n_words]
        target = np.frombuffer(payload, dtype=np.uint32)
        if type(features).__module__.startswith("torch") and features.device.type != "cpu":
            # Plaintext stays on its accelerator; only ciphertext is copied to host memory.
            from ._bitperm_torch import float32_words, permute_words

            target.view(np.int32)[:] = permute_words(float32_words(features).reshape(-1),
                                                     network).cpu().numpy()
        else:
            network.apply(host_array(features).reshape(-1).view(np.uint32), target)
        out[4 * n_words:] = self._tag(nonce, associated_data, payload)

    def open(self, nonce: bytes, sealed: memoryview, associated_data: bytes,
             dtype: np.dtype, shape: tuple[int, ...],
             version: int = ENVELOPE_VERSION) -> np.ndarray:
        if dtype != FLOAT32:
            raise DecryptionError()
        if version == 1:
            return self._legacy.open(nonce, sealed, associated_data, shape)
        if len(sealed) < _TAG or len(nonce) != self.nonce_size:
            raise DecryptionError()
        return self._open(nonce, sealed, associated_data, shape)

    def _open(self, nonce: bytes, sealed: memoryview, associated_data: bytes,
              shape: tuple[int, ...]) -> np.ndarray:
        """Verify and decrypt a version-2 `payload || tag` (dtype and sizes already checked)."""
        payload, tag = sealed[:-_TAG], sealed[-_TAG:]
        if not hmac.compare_digest(self._tag(nonce, associated_data, payload), tag):
            raise DecryptionError()
        words = np.frombuffer(payload, dtype=np.uint32)
        return self._inverse_network(nonce).apply(words).view(np.float32).reshape(shape)
