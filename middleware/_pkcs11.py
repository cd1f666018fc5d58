"""KEK held by a PKCS#11 token (an HSM, SoftHSM2): an AES-256 key that never leaves the token.

Named by an RFC 7512-style URI. The PIN is read from an environment variable or a file when a
session is opened; it is never accepted in the URI, because URIs get logged:

    pkcs11:token=featurelock;object=featurelock-kek?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:FEATURELOCK_PKCS11_PIN

    token        token label (required)          module-path  default $FEATURELOCK_PKCS11_MODULE,
    object       key label (required)                         else the Debian SoftHSM2 module
    type         optional, must be secret-key    pin-source   env:VARIABLE or file:PATH (required)

Security property: authenticated and randomised. wrap/unwrap run CKM_AES_GCM on the token with a
random 96-bit IV drawn here, a 128-bit tag and the caller's associated data bound; the output is
IV || ciphertext || tag (the layout of LocalKek). `generate` makes the key private, sensitive
and not extractable, usable for encrypt/decrypt only.

Sessions: PKCS#11 login state belongs to the process, not to a session, so every Pkcs11Kek on the
same (module, token) shares one lazily opened, logged-in session behind one lock. Calls on a
token are serialised; a session the token dropped is reopened once; after any PKCS#11 error the
session is closed and the next call opens a fresh one. Call `close_all()` at shutdown.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
from pathlib import Path
from urllib.parse import quote, unquote

import pkcs11
from pkcs11 import Attribute, GCMParams, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from .errors import KeyStoreError

__all__ = ["Pkcs11Kek", "close_all", "DEFAULT_MODULE", "MODULE_ENV"]

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
MODULE_ENV = "FEATURELOCK_PKCS11_MODULE"
_IV_BYTES = 12
_TAG_BITS = 128
_PATH_ATTRS = ("token", "object", "type")
_QUERY_ATTRS = ("module-path", "pin-source")
_NO_PIN_VALUE = ("pin-value is refused in a KEK uri (uris get logged); "
                 "use pin-source=env:VAR or pin-source=file:PATH")
_KEY_TEMPLATE = {
    Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False, Attribute.MODIFIABLE: False,
    Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
    Attribute.WRAP: False, Attribute.UNWRAP: False,
    Attribute.SIGN: False, Attribute.VERIFY: False, Attribute.DERIVE: False,
}
_PIN_ERRORS = (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinExpired, p11.PinLocked)
_STALE = (p11.SessionHandleInvalid, p11.SessionClosed, p11.UserNotLoggedIn, p11.DeviceRemoved,
          p11.TokenNotPresent)


class _Unwrap(Exception):
    """Internal: the token refused to open a blob (tag, IV, length); becomes the opaque error."""


class _TokenSession:
    """The one logged-in session this process holds on a (module, token). Guard with `lock`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.session = None
        self.rw = False
        self.pin_tag = b""

    def open(self, kek: Pkcs11Kek, pin: str, rw: bool):
        tag = hmac.new(_PIN_TAG_KEY, pin.encode("utf-8"), hashlib.sha256).digest()
        reusable = self.session is not None and (self.rw or not rw)
        if reusable and hmac.compare_digest(tag, self.pin_tag):
            return self.session
        self.close()  # a different PIN re-authenticates: each caller is checked with its own
        token = _load(kek).get_token(token_label=kek._token)
        self.session, self.rw, self.pin_tag = token.open(rw=rw, user_pin=pin), rw, tag
        return self.session

    def close(self) -> None:
        session, self.session, self.pin_tag = self.session, None, b""
        if session is not None:
            try:
                session.close()
            except p11.PKCS11Error:
                pass  # already gone with the token or the library; nothing left to release


_PIN_TAG_KEY = secrets.token_bytes(32)  # compares PINs without keeping them
_sessions: dict[tuple[str, str], _TokenSession] = {}
_registry_lock = threading.Lock()
_lib_lock = threading.Lock()  # pkcs11.lib() caches loaded modules without a lock


def _load(kek: Pkcs11Kek):
    if not os.path.isfile(kek._module_path):
        raise KeyStoreError(f"{kek.uri}: PKCS#11 module not found")
    with _lib_lock:
        try:
            return pkcs11.lib(kek._module_path)
        except p11.PKCS11Error:
            raise KeyStoreError(f"{kek.uri}: cannot load the PKCS#11 module") from None


def close_all() -> None:
    """Log out and close every session this process holds; the next call opens new ones."""
    with _registry_lock:
        entries = list(_sessions.values())
    for entry in entries:
        with entry.lock:
            entry.close()


def _bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    return value


class Pkcs11Kek:
    """AES-256-GCM KEK whose key stays on a PKCS#11 token. Holds no PIN and no key bytes."""

    __slots__ = ("uri", "_module_path", "_token", "_label", "_pin_source")

    def __init__(
        self, *, token: str, key_label: str, pin_source: str, module_path: str | None = None
    ) -> None:
        if module_path is None:
            module_path = os.environ.get(MODULE_ENV) or DEFAULT_MODULE
        for name, value in (("token", token), ("key_label", key_label), ("pin_source", pin_source),
                            ("module_path", module_path)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        size = len(token.encode("utf-8"))
        if not 1 <= size <= 32:
            raise ValueError(f"token must be a label of 1 to 32 bytes, got {size}")
        if not key_label:
            raise ValueError("key_label must not be empty")
        kind, _, where = pin_source.partition(":")
        if kind not in ("env", "file") or not where:
            raise ValueError("pin_source must be env:VARIABLE or file:PATH")  # value not echoed
        if not os.path.isabs(module_path):
            raise ValueError("module_path must be an absolute path")
        self._module_path, self._token, self._label = module_path, token, key_label
        self._pin_source = pin_source
        self.uri = (f"pkcs11:token={quote(token, safe='')};object={quote(key_label, safe='')}"
                    f"?module-path={quote(module_path, safe='/')}"
                    f"&pin-source={quote(pin_source, safe='/:')}")

    @classmethod
    def from_uri(cls, uri: str) -> Pkcs11Kek:
        """Parse a pkcs11: uri (see the module docstring). Errors never echo the uri."""
        if not isinstance(uri, str):
            raise TypeError(f"uri must be a str, got {type(uri).__name__}")
        scheme, sep, rest = uri.partition(":")
        if scheme != "pkcs11" or not sep:
            raise ValueError("PKCS#11 KEK uri must start with pkcs11:")
        path, _, query = rest.partition("?")
        attrs = {**_parse_attrs(path, ";", _PATH_ATTRS), **_parse_attrs(query, "&", _QUERY_ATTRS)}
        if attrs.get("type", "secret-key") != "secret-key":
            raise ValueError("type must be secret-key")
        for required in ("token", "object", "pin-source"):
            if required not in attrs:
                raise ValueError(f"PKCS#11 KEK uri needs a {required}= attribute")
        return cls(token=attrs["token"], key_label=attrs["object"], pin_source=attrs["pin-source"],
                   module_path=attrs.get("module-path"))

    @classmethod
    def generate(cls, uri: str) -> Pkcs11Kek:
        """Create the AES-256 key the uri names on its token; refuse if the label is taken."""
        kek = cls.from_uri(uri)

        def create(session) -> None:
            if list(session.get_objects({Attribute.LABEL: kek._label})):
                raise KeyStoreError(f"{kek.uri}: an object with this label already exists")
            session.generate_key(KeyType.AES, 256, label=kek._label, store=True,
                                 capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                                 template=_KEY_TEMPLATE)

        kek._on_token(create, rw=True)
        return kek

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        return self._wrap_with_iv(plaintext, associated_data, os.urandom(_IV_BYTES))

    def _wrap_with_iv(self, plaintext: bytes, associated_data: bytes, iv: bytes) -> bytes:
        params = GCMParams(iv, _bytes(associated_data, "associated_data"), _TAG_BITS)
        data = _bytes(plaintext, "plaintext")
        return iv + self._on_token(lambda s: self._key(s).encrypt(data, mechanism=Mechanism.AES_GCM,
                                                                   mechanism_param=params))

    def unwrap(self, wrapped: bytes, associated_data: bytes) -> bytes:
        if len(_bytes(wrapped, "wrapped")) < _IV_BYTES + _TAG_BITS // 8:
            raise KeyStoreError(f"keyset cannot be unwrapped with {self.uri}")
        ad = _bytes(associated_data, "associated_data")
        params = GCMParams(wrapped[:_IV_BYTES], ad, _TAG_BITS)

        def decrypt(session) -> bytes:
            key = self._key(session)
            try:
                return key.decrypt(wrapped[_IV_BYTES:], mechanism=Mechanism.AES_GCM,
                                   mechanism_param=params)
            except _STALE:
                raise
            except p11.PKCS11Error:
                raise _Unwrap from None

        try:
            return self._on_token(decrypt)
        except _Unwrap:
            raise KeyStoreError(f"keyset cannot be unwrapped with {self.uri}") from None

    def close(self) -> None:
        """Log out and close this token's shared session (other KEKs on it reopen lazily)."""
        with _registry_lock:
            entry = _sessions.get((self._module_path, self._token))
        if entry is not None:
            with entry.lock:
                entry.close()

    def __enter__(self) -> Pkcs11Kek:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pkcs11Kek(uri={self.uri!r})"

    def __reduce__(self):
        raise TypeError("key-encryption keys cannot be pickled")

    # -- boundary: everything below turns PKCS#11 and OS failures into KeyStoreError ----------

    def _key(self, session):
        return session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES,
                               label=self._label)

    def _read_pin(self) -> str:
        kind, _, where = self._pin_source.partition(":")
        if kind == "env":
            pin = os.environ.get(where)
            if not pin:
                raise KeyStoreError(f"{self.uri}: PIN environment variable {where} is not set")
            return pin
        try:
            mode = Path(where).stat().st_mode
            pin = Path(where).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError):
            raise KeyStoreError(f"{self.uri}: cannot read the PIN file") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(
                f"{self.uri}: PIN file must not be readable by group or others (chmod 600)")
        if not pin:
            raise KeyStoreError(f"{self.uri}: PIN file is empty")
        return pin

    def _on_token(self, operation, rw: bool = False):
        """Run operation(session) under the token's lock; reopen a dropped session once."""
        pin = self._read_pin()
        with _registry_lock:
            entry = _sessions.setdefault((self._module_path, self._token), _TokenSession())
        with entry.lock:
            for attempt in (1, 2):
                try:
                    return operation(entry.open(self, pin, rw))
                except _STALE:
                    entry.close()
                    if attempt == 2:
                        raise KeyStoreError(f"{self.uri}: the token closed the session") from None
                except p11.PKCS11Error as exc:
                    entry.close()
                    raise KeyStoreError(f"{self.uri}: {self._explain(exc)}") from None
                except BaseException:
                    entry.close()
                    raise

    def _explain(self, exc: p11.PKCS11Error) -> str:
        if isinstance(exc, _PIN_ERRORS):
            return "the token refused the PIN"
        if isinstance(exc, p11.NoSuchToken):
            return "no token with this label"
        if isinstance(exc, p11.MultipleTokensReturned):
            return "several tokens have this label"
        if isinstance(exc, p11.NoSuchKey):
            return "no AES key with this label on the token"
        if isinstance(exc, p11.MultipleObjectsReturned):
            return "several AES keys have this label on the token"
        if isinstance(exc, p11.UserAlreadyLoggedIn):
            return "the token is logged in by another part of this process"
        return f"the token refused the operation ({type(exc).__name__})"


def _parse_attrs(text: str, separator: str, allowed: tuple[str, ...]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for item in filter(None, text.split(separator)):
        name, eq, value = item.partition("=")
        name = unquote(name)
        if name == "pin-value":
            raise ValueError(_NO_PIN_VALUE)
        if name not in allowed:
            raise ValueError(
                f"unsupported PKCS#11 uri attribute {name!r}; use {', '.join(allowed)}")
        if not eq or name in attrs:
            raise ValueError(f"PKCS#11 uri attribute {name} must appear once, as {name}=value")
        attrs[name] = unquote(value)
    return attrs
