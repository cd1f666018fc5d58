"""The one error tree of featurelock.

    FeaturelockError
     ├── DecryptionError   an envelope could not be opened: bad format, wrong key, tampering,
     │                     wrong tenant or associated data. Deliberately opaque: one message,
     │                     no detail, whatever went wrong.
     ├── EncryptionError   features could not be protected; nothing is returned (fail closed).
     ├── KeysetError       misuse of a keyset: unknown key id, no usable primary, forbidden
     │                     status change, malformed keyset document, a new key of a leaky
     │                     scheme without allow_leaky.
     ├── KeyStoreError     a keyset could not be stored or loaded: key-encryption key missing or
     │   │                 wrong, unreadable file, cleartext refused without the insecure flag.
     │   └── RegistryBusy  the key registry's lock was not free in time; nothing was changed.
     ├── TenantError       the key registry has no keys for the tenant named.
     ├── DisguiseError     images that do not fit a disguise spec, or a disguised-input
     │                     model trained under another disguise key than the client's.
     │
     │   defined beside the code that raises them (packages with heavy dependencies):
     ├── ModelError            featurelock.models.errors: a model cannot be found/built/loaded
     │   ├── UnsafeModelFileError   a file that would need arbitrary unpickling: refused
     │   └── ImageDecodeError       bytes that are not a decodable image (or too large)
     └── ExportError           featurelock.export.errors: export failed or is invalid
         └── ParityError            exported outputs disagree with torch beyond tolerance

Messages never contain key bytes. Third-party exceptions are translated at the boundary.
"""

from __future__ import annotations

__all__ = [
    "FeaturelockError",
    "DecryptionError",
    "EncryptionError",
    "KeysetError",
    "KeyStoreError",
    "RegistryBusy",
    "TenantError",
    "DisguiseError",
]


class FeaturelockError(Exception):
    """Base class of every error featurelock raises on purpose."""


class DecryptionError(FeaturelockError):
    """The envelope could not be decrypted. Carries no detail on purpose."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class EncryptionError(FeaturelockError):
    """Encryption failed; no output was produced."""


class KeysetError(FeaturelockError):
    """A keyset operation was invalid."""


class KeyStoreError(FeaturelockError):
    """A keyset could not be loaded or saved."""


class RegistryBusy(KeyStoreError):
    """Another command held the key registry's lock past the timeout; nothing was changed."""


class TenantError(FeaturelockError):
    """No keyset is registered for the tenant."""


class DisguiseError(FeaturelockError):
    """Images do not fit the disguise, or the disguise key is not the model's."""
