"""featurelock.middleware — encrypt feature vectors so only the keyed API consumer reads them.

Two layers, named by risk:

* the input disguise (Disguised-Nets, data owners): `DisguiseSpec`, `Disguiser`, keys of
  type "disguise" in a `Keyset`;
* the recipe (most users): `FeatureProtector`, `FeatureReader`, `Context`, `Keyset`,
  `KeyRegistry`, `rewrap`, keysets at rest under a KEK (`kek_from_uri`, `save_keyset`, ...);
* the raw schemes (experts): `ShuffleBits` (the paper's cipher, bit-compatible with the
  reference), and the envelope schemes `AesGcm`, `ShuffleBitsScheme`, `ShuffleBitsOtp`,
  `ShuffleBitsMasked`.

Imports neither torch, TorchServe nor onnxruntime (nor numba, until the first ShuffleBits
permutation or `warm_kernels()`); torch tensors are accepted when torch is installed.
"""

from ._kernels import kernel_name
from ._kernels import warm as warm_kernels
from .aes_gcm import AesGcm
from .disguise import Disguiser, DisguiseSpec
from .envelope import Envelope
from .errors import (
    DecryptionError,
    DisguiseError,
    EncryptionError,
    FeaturelockError,
    KeysetError,
    KeyStoreError,
    TenantError,
)
from .kek import KeyEncryptionKey, LocalKek, create_kek_file, generate_kek_material, kek_from_uri
from .keyset import KeyInfo, Keyset, KeyStatus
from .protect import Context, FeatureProtector, FeatureReader, parse_envelope, rewrap
from .registry import KeyRegistry
from .schemes import DEFAULT_SCHEME, SCHEMES
from .shufflebits import ShuffleBits, ShuffleBitsScheme
from .shufflebits_masked import ShuffleBitsMasked
from .shufflebits_otp import ShuffleBitsOtp
from .storage import load_keyset, save_keyset

__all__ = [
    "AesGcm", "Context", "DEFAULT_SCHEME", "DecryptionError", "DisguiseError", "DisguiseSpec",
    "Disguiser", "EncryptionError", "Envelope",
    "FeatureProtector", "FeatureReader", "FeaturelockError", "KeyEncryptionKey", "KeyInfo",
    "KeyRegistry", "KeyStatus", "KeyStoreError", "Keyset", "KeysetError", "LocalKek", "SCHEMES",
    "ShuffleBits", "ShuffleBitsMasked", "ShuffleBitsOtp", "ShuffleBitsScheme", "TenantError",
    "create_kek_file", "generate_kek_material", "kek_from_uri", "kernel_name", "load_keyset",
    "parse_envelope", "rewrap", "save_keyset", "warm_kernels",
]
