"""The interface every scheme implements: the raw layer, for experts.

A scheme holds one key's material and seals a feature array into `payload || tag` given a
nonce and associated data. The envelope (`envelope.py`) chooses the nonce, lays out the header
and passes it in the associated data, so every scheme authenticates the header too.

Most callers want the recipe layer instead (`protect.py`): it picks keys, builds associated
data from a context and writes versioned envelopes.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

__all__ = ["Scheme", "DTYPES", "ENVELOPE_VERSION", "ENVELOPE_VERSIONS", "features_dtype", "host_array"]

# The envelope version symmetric schemes write, and every version that still reads.
# Version 2 changed only the ShuffleBits family (Beneš network, AES-GCM based tags).
# Version 3 widened the tag length to 16 bits for the sealed (HPKE) schemes, whose tag carries
# a KEM encapsulation; only they write or read it.
ENVELOPE_VERSION = 2
ENVELOPE_VERSIONS = (1, 2, 3)

# dtypes an envelope can carry, by wire code.
DTYPES: dict[int, np.dtype] = {1: np.dtype("<f4"), 2: np.dtype("<f2"), 3: np.dtype("<f8")}


_TORCH_DTYPES = {f"torch.{d.name}": d for d in DTYPES.values()}


def features_dtype(features: Any) -> np.dtype:
    """The little-endian numpy dtype of a numpy array or torch tensor (cheap: hot path)."""
    dtype = features.dtype
    if isinstance(dtype, np.dtype):
        return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype
    try:
        return _TORCH_DTYPES[str(dtype)]
    except KeyError:
        raise TypeError(f"unsupported feature dtype {dtype}") from None


def host_array(features: Any) -> np.ndarray:
    """A C-contiguous little-endian numpy view/copy of a numpy array or torch tensor."""
    if type(features).__module__.startswith("torch"):
        features = features.detach().cpu().numpy()
    arr = np.ascontiguousarray(features)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


class Scheme(ABC):
    """One key of one scheme. Subclasses state their security properties in their docstring."""

    name: ClassVar[str]
    scheme_id: ClassVar[int]
    key_size: ClassVar[int]
    nonce_size: ClassVar[int]
    tag_size: ClassVar[int]
    dtypes: ClassVar[frozenset[np.dtype]]
    # One plain sentence on what a measured attack recovers through this scheme; "" if none.
    # Non-empty refuses new keys without allow_leaky (keyset.py) and warns at serving start.
    leaks: ClassVar[str]
    # The envelope version this scheme writes, and the versions it reads (one layout each).
    envelope_version: ClassVar[int] = ENVELOPE_VERSION
    envelope_versions: ClassVar[tuple[int, ...]] = (1, 2)
    # True for public-key schemes: whoever holds only the public half can seal, not open.
    sealed: ClassVar[bool] = False
    # What a keyset may use the key for; the disguise key type (disguise.py) says "disguise".
    purpose: ClassVar[str] = "features"

    @classmethod
    def valid_material(cls, material: bytes) -> bool:
        """Whether `material` is well-formed key material of this scheme (keysets check it)."""
        return len(material) == cls.key_size

    @classmethod
    def sizes(cls, version: int) -> tuple[int, int]:
        """(nonce size, tag size) of this scheme's envelopes of `version`."""
        return cls.nonce_size, cls.tag_size

    @classmethod
    def generate_key(cls) -> bytes:
        """Fresh key material for this scheme."""
        return os.urandom(cls.key_size)

    @staticmethod
    def _check_key(key: bytes, size: int) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise TypeError("key must be bytes")
        if len(key) != size:
            raise ValueError(f"key must be {size} bytes, got {len(key)}")

    def check_features(self, features: Any) -> np.dtype:
        """The features' dtype; TypeError if this scheme cannot carry it."""
        dtype = features_dtype(features)
        if dtype not in self.dtypes:
            allowed = ", ".join(sorted(d.name for d in self.dtypes))
            raise TypeError(f"{self.name} encrypts {allowed} features, got {dtype.name}")
        return dtype

    @abstractmethod
    def seal_into(self, features: Any, nonce: bytes, associated_data: bytes, out: memoryview) -> None:
        """Write `payload || tag` for `features` into `out` (exactly nbytes + tag_size long),
        as envelope version ENVELOPE_VERSION."""

    @abstractmethod
    def open(self, nonce: bytes, sealed: memoryview, associated_data: bytes,
             dtype: np.dtype, shape: tuple[int, ...],
             version: int = ENVELOPE_VERSION) -> np.ndarray:
        """Verify `payload || tag` of an envelope of `version` and decrypt it; raise
        DecryptionError on any failure."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret>)"

    def __reduce__(self):
        raise TypeError("scheme objects hold key material and cannot be pickled")
