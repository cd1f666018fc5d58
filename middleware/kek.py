"""Key-encryption keys (KEKs): what a keyset is encrypted under at rest.

A KEK is named by a URI, so the same configuration string works in the CLI, the serving
environment and tests:

    env:VARIABLE           32 random bytes, base64, in an environment variable (development)
    file:/path/to/kek      32 random bytes, base64, in a file readable only by its owner
    pkcs11:...             an AES key that never leaves a PKCS#11 token (see `_pkcs11`)

Every KEK wraps with AES-256-GCM and binds caller-supplied associated data, so a wrapped keyset
cannot be swapped for another tenant's. `unwrap` failures raise KeyStoreError without detail.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import KeyStoreError

__all__ = ["KeyEncryptionKey", "LocalKek", "kek_from_uri", "generate_kek_material",
           "create_kek_file"]

_KEK_BYTES = 32
_NONCE_BYTES = 12


@runtime_checkable
class KeyEncryptionKey(Protocol):
    """Wraps and unwraps keyset bytes. `uri` is a non-secret description, safe to log."""

    uri: str

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes: ...


class LocalKek:
    """AES-256-GCM KEK whose bytes live in this process (from an env variable or a file)."""

    __slots__ = ("uri", "_aead")

    def __init__(self, key: bytes, uri: str) -> None:
        if not isinstance(key, bytes):
            raise TypeError("key must be bytes")
        if len(key) != _KEK_BYTES:
            raise ValueError(f"key must be {_KEK_BYTES} bytes, got {len(key)}")
        self.uri = uri
        self._aead = AESGCM(key)

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        if len(wrapped) < _NONCE_BYTES + 16:
            raise KeyStoreError(f"keyset cannot be unwrapped with {self.uri}")
        try:
            return self._aead.decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], associated_data)
        except InvalidTag:
            raise KeyStoreError(f"keyset cannot be unwrapped with {self.uri}") from None

    def __repr__(self) -> str:
        return f"LocalKek(uri={self.uri!r})"

    def __reduce__(self):
        raise TypeError("key-encryption keys cannot be pickled")


def generate_kek_material() -> str:
    """A fresh KEK as the base64 text that `env:` and `file:` KEKs read."""
    return base64.b64encode(secrets.token_bytes(_KEK_BYTES)).decode("ascii")


def create_kek_file(path: str | os.PathLike) -> str:
    """Write fresh KEK material to a NEW file, mode 0600; returns its `file:` URI."""
    target = Path(path).resolve()
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyStoreError(f"{target} exists; refusing to overwrite a KEK") from None
    except OSError as exc:
        raise KeyStoreError(f"cannot create {target}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(generate_kek_material() + "\n")
    return f"file:{target}"


def _decode_kek_text(text: str, uri: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyStoreError(f"{uri} does not hold base64 key material") from None
    if len(key) != _KEK_BYTES:
        raise KeyStoreError(f"{uri} must hold {_KEK_BYTES} bytes of key material")
    return key


def _env_kek(name: str, uri: str) -> LocalKek:
    text = os.environ.get(name)
    if not text:
        raise KeyStoreError(f"{uri}: environment variable {name} is not set")
    return LocalKek(_decode_kek_text(text, uri), uri)


def _file_kek(path: str, uri: str) -> LocalKek:
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise KeyStoreError(f"{uri}: cannot read the key file") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(f"{uri}: key file must not be readable by group or others (chmod 600)")
    return LocalKek(_decode_kek_text(text, uri), uri)


def kek_from_uri(uri: str) -> KeyEncryptionKey:
    """Open the KEK a URI names (see the module docstring)."""
    if not isinstance(uri, str):
        raise TypeError("uri must be a str")
    scheme, sep, rest = uri.partition(":")
    if not sep or not rest:
        raise ValueError("KEK uri must look like env:NAME, file:PATH or pkcs11:...")
    if scheme == "env":
        return _env_kek(rest, uri)
    if scheme == "file":
        return _file_kek(rest, uri)
    if scheme == "pkcs11":
        try:
            from ._pkcs11 import Pkcs11Kek  # optional dependency: python-pkcs11
        except ImportError:
            raise KeyStoreError("pkcs11: KEKs need python-pkcs11: pip install 'featurelock[hsm]'") from None
        return Pkcs11Kek.from_uri(uri)
    raise ValueError(f"unknown KEK scheme {scheme!r}; use env:, file: or pkcs11:")
