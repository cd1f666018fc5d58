"""Keysets at rest: wrapped under a key-encryption key, or cleartext only when asked for.

File format (JSON): {"featurelock_keyset": 1, "name": ..., "kek": <KEK uri>, "wrapped": <b64>}
The wrap binds the keyset's name (the tenant), so one tenant's file cannot be swapped in for
another's. Files are written atomically with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

from ._files import write_private_atomic
from .errors import KeysetError, KeyStoreError
from .kek import KeyEncryptionKey
from .keyset import Keyset

__all__ = ["save_keyset", "load_keyset", "wrap_keyset", "unwrap_keyset", "save_public_keyset",
           "load_public_keyset", "public_fingerprint"]

_FORMAT = 1


def _wrap_ad(name: str) -> bytes:
    return f"featurelock/keyset/v{_FORMAT}/{name}".encode()


def wrap_keyset(keyset: Keyset, kek: KeyEncryptionKey | None, name: str, *,
                insecure_cleartext: bool = False) -> bytes:
    """The keyset as a JSON document, wrapped under `kek` (or cleartext if explicitly allowed)."""
    plain = json.dumps(keyset._to_document()).encode()
    doc: dict = {"featurelock_keyset": _FORMAT, "name": name}
    if kek is not None:
        doc["kek"] = kek.uri
        doc["wrapped"] = base64.b64encode(kek.wrap(plain, _wrap_ad(name))).decode()
    elif insecure_cleartext:
        doc["cleartext"] = json.loads(plain)
    else:
        raise KeyStoreError("refusing to store a keyset in cleartext without insecure_cleartext=True")
    return json.dumps(doc, indent=1).encode()


def unwrap_keyset(data: bytes, kek: KeyEncryptionKey | None, name: str, *,
                  allow_cleartext: bool = False) -> Keyset:
    try:
        doc = json.loads(data)
        fmt, stored_name = doc["featurelock_keyset"], doc["name"]
    except (ValueError, TypeError, KeyError):
        raise KeyStoreError("not a featurelock keyset file") from None
    if fmt != _FORMAT or stored_name != name:
        raise KeyStoreError(f"keyset file is not the keyset of {name!r}")
    if "cleartext" in doc:
        if not allow_cleartext:
            raise KeyStoreError("keyset is stored in cleartext; pass the insecure flag to load it")
        return Keyset._from_document(doc["cleartext"])
    if kek is None:
        raise KeyStoreError("keyset is wrapped; a key-encryption key is required")
    try:
        wrapped = base64.b64decode(doc["wrapped"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise KeyStoreError("keyset file is malformed") from None
    plain = kek.unwrap(wrapped, _wrap_ad(name))
    try:
        return Keyset._from_document(json.loads(plain))
    except (ValueError, KeysetError):
        raise KeyStoreError("keyset file is malformed") from None


def save_keyset(path: str | os.PathLike, keyset: Keyset, kek: KeyEncryptionKey | None,
                name: str, *, insecure_cleartext: bool = False) -> None:
    write_private_atomic(path, wrap_keyset(keyset, kek, name,
                                           insecure_cleartext=insecure_cleartext))


def load_keyset(path: str | os.PathLike, kek: KeyEncryptionKey | None, name: str, *,
                allow_cleartext: bool = False) -> Keyset:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read keyset file {path}: {exc.strerror}") from None
    return unwrap_keyset(data, kek, name, allow_cleartext=allow_cleartext)


# -- public keysets (sealed schemes): what a consumer hands the server -------------------------
_PUBLIC_FORMAT = 1


def _public_document(keyset: Keyset) -> dict:
    return {"featurelock_public_keyset": _PUBLIC_FORMAT, "keyset": keyset._to_document()}


def public_fingerprint(keyset: Keyset) -> str:
    """A short digest of a public keyset, for consumer and operator to compare out of band
    (a swapped public key would seal responses to someone else)."""
    canonical = json.dumps(_public_document(keyset), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def save_public_keyset(path: str | os.PathLike, keyset: Keyset) -> None:
    """Write the public halves of a sealed-scheme keyset (KeysetError for any other)."""
    public = keyset.public()
    data = json.dumps(_public_document(public), indent=1).encode()
    write_private_atomic(path, data)  # public, but written atomically like every key file


def load_public_keyset(path: str | os.PathLike) -> Keyset:
    """A public keyset file; KeyStoreError unless it holds only public halves."""
    try:
        doc = json.loads(Path(path).read_bytes())
        if doc.get("featurelock_public_keyset") != _PUBLIC_FORMAT:
            raise ValueError
        keyset = Keyset._from_document(doc["keyset"])
    except OSError as exc:
        raise KeyStoreError(f"cannot read public keyset file {path}: {exc.strerror}") from None
    except (ValueError, TypeError, KeyError, AttributeError, KeysetError):
        raise KeyStoreError(f"{path} is not a featurelock public keyset file") from None
    if not keyset.is_public():
        raise KeyStoreError(f"{path} holds private key material; send the server only the "
                            "output of `featurelock keys export-public`")
    return keyset
