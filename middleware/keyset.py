"""Keysets: the keys of one tenant, with ids, status and exactly one primary (Tink-style).

Encrypt with the primary; decrypt with whichever key an envelope names. Rotation without
downtime: `add` a key, distribute the keyset, `promote` it, `rewrap` stored envelopes, then
`disable` (and later `destroy`) the old key.

Disguise keys (`disguise.DisguiseKey`, purpose "disguise") live in keysets too, so they get
the same ids, status and rotation, and the same KEK-wrapped storage. A keyset holds keys of one
purpose only; a disguise keyset cannot encrypt features, and the server's registry refuses it
(the data owner keeps it: `registry.check_server_keyset`). This reuses Keyset rather than
adding a DisguiseKeyset, at the cost of one purpose check on the feature paths.

New keys of a scheme that measurably leaks (`Scheme.leaks`) need `allow_leaky=True`; loading a
keyset that already holds them needs nothing, so rotating away from them stays possible.

    status      may encrypt   may decrypt   material kept
    enabled     if primary    yes           yes
    disabled    no            no            yes (can be re-enabled)
    destroyed   no            no            no  (irreversible)
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from enum import Enum

from ._scheme import Scheme
from .disguise import DisguiseKey, Disguiser, DisguiseSpec
from .errors import DecryptionError, KeysetError
from .schemes import DEFAULT_SCHEME, SCHEMES, scheme_class

# Every key type a keyset can hold: the feature schemes and the disguise key.
KEY_TYPES: dict[str, type] = {**SCHEMES, DisguiseKey.name: DisguiseKey}


def key_type(name: str) -> type:
    if name == DisguiseKey.name:
        return DisguiseKey
    return scheme_class(name)


def _purpose(name: str) -> str:
    return getattr(KEY_TYPES[name], "purpose", "features")

__all__ = ["Keyset", "KeyInfo", "KeyStatus"]


class KeyStatus(str, Enum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DESTROYED = "destroyed"


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: everything but its material."""

    key_id: int
    scheme: str
    status: KeyStatus
    created: int
    primary: bool


class _Key:
    __slots__ = ("key_id", "scheme", "status", "created", "material", "_cipher")

    def __init__(self, key_id: int, scheme: str, status: KeyStatus, created: int,
                 material: bytes | None) -> None:
        self.key_id, self.scheme, self.status, self.created = key_id, scheme, status, created
        self.material = material
        self._cipher: Scheme | None = None

    def cipher(self) -> Scheme:
        if _purpose(self.scheme) != "features":
            raise KeysetError(f"key {self.key_id} is a {self.scheme} key; it cannot encrypt "
                              "or decrypt features")
        if self._cipher is None:
            self._cipher = SCHEMES[self.scheme](self.material)
        return self._cipher

    def __repr__(self) -> str:
        return f"<key {self.key_id} {self.scheme} {self.status.value}>"


class Keyset:
    """A tenant's keys. Key material never appears in repr, str or errors; no pickling."""

    __slots__ = ("_keys", "_primary")

    def __init__(self) -> None:
        self._keys: dict[int, _Key] = {}
        self._primary: int | None = None

    # -- creation ----------------------------------------------------------------------
    @classmethod
    def generate(cls, scheme: str = DEFAULT_SCHEME, *, shufflebits_seed: int | None = None,
                 allow_leaky: bool = False) -> "Keyset":
        """A new keyset with one primary key. `shufflebits_seed` reproduces the reference
        permutation (`from_seed`) for compatibility experiments only: anyone can derive it.
        A leaky scheme needs `allow_leaky=True` (see `add`)."""
        keyset = cls()
        keyset.add(scheme, make_primary=True, shufflebits_seed=shufflebits_seed,
                   allow_leaky=allow_leaky)
        return keyset

    def add(self, scheme: str | None = None, *, make_primary: bool = False,
            shufflebits_seed: int | None = None, allow_leaky: bool = False) -> int:
        """Add a new enabled key (the primary's scheme by default); returns its id.

        KeysetError for a scheme that measurably leaks unless `allow_leaky=True`: such keys
        are for compatibility experiments and attack baselines, never chosen by accident."""
        name = scheme or (self._keys[self._primary].scheme if self._primary else DEFAULT_SCHEME)
        cls = key_type(name)
        purposes = {_purpose(k.scheme) for k in self._keys.values()}
        if purposes and purposes != {_purpose(cls.name)}:
            raise KeysetError(f"a keyset holds keys of one purpose; {name} keys do not mix "
                              f"with {', '.join(sorted(purposes))} keys")
        if cls.leaks and not allow_leaky:
            raise KeysetError(f"scheme {name} measurably leaks: {cls.leaks}; create its keys "
                              "only on purpose with allow_leaky=True (CLI: --allow-leaky-scheme)")
        if shufflebits_seed is not None:
            if name != "shufflebits":
                raise ValueError("shufflebits_seed applies only to the shufflebits scheme")
            material = cls.key_from_seed(shufflebits_seed)  # type: ignore[attr-defined]
        else:
            material = cls.generate_key()
        key_id = self._new_id()
        self._keys[key_id] = _Key(key_id, name, KeyStatus.ENABLED, int(time.time()), material)
        if make_primary or self._primary is None:
            self._primary = key_id
        return key_id

    def _new_id(self) -> int:
        while True:
            key_id = secrets.randbits(32)
            if key_id and key_id not in self._keys:
                return key_id

    # -- rotation ----------------------------------------------------------------------
    def promote(self, key_id: int) -> None:
        key = self._get(key_id)
        if key.status is not KeyStatus.ENABLED:
            raise KeysetError(f"key {key_id} is {key.status.value}; only an enabled key can be primary")
        self._primary = key_id

    def disable(self, key_id: int) -> None:
        key = self._get(key_id)
        self._refuse_primary(key_id, "disable")
        if key.status is KeyStatus.DESTROYED:
            raise KeysetError(f"key {key_id} is destroyed")
        key.status = KeyStatus.DISABLED

    def enable(self, key_id: int) -> None:
        key = self._get(key_id)
        if key.status is KeyStatus.DESTROYED:
            raise KeysetError(f"key {key_id} is destroyed and cannot be enabled")
        key.status = KeyStatus.ENABLED

    def destroy(self, key_id: int) -> None:
        key = self._get(key_id)
        self._refuse_primary(key_id, "destroy")
        key.status, key.material, key._cipher = KeyStatus.DESTROYED, None, None

    def _refuse_primary(self, key_id: int, verb: str) -> None:
        if key_id == self._primary:
            raise KeysetError(f"cannot {verb} the primary key {key_id}; promote another key first")

    def _get(self, key_id: int) -> _Key:
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeysetError(f"no key with id {key_id} in this keyset") from None

    # -- use ---------------------------------------------------------------------------
    @property
    def primary_id(self) -> int:
        if self._primary is None:
            raise KeysetError("keyset has no primary key")
        return self._primary

    def info(self) -> list[KeyInfo]:
        return [KeyInfo(k.key_id, k.scheme, k.status, k.created, k.key_id == self._primary)
                for k in self._keys.values()]

    def encryption_key(self) -> tuple[int, Scheme]:
        """(key id, cipher) of the primary key."""
        key = self._keys[self.primary_id]
        return key.key_id, key.cipher()

    def decryption_key(self, key_id: int, scheme: str) -> Scheme:
        """The cipher of an enabled key; DecryptionError (opaque) for anything else."""
        key = self._keys.get(key_id)
        if key is None or key.status is not KeyStatus.ENABLED or key.scheme != scheme:
            raise DecryptionError()
        return key.cipher()

    # -- disguise keys (the data owner's) ---------------------------------------------------
    def holds_disguise_keys(self) -> bool:
        return any(_purpose(k.scheme) == "disguise" for k in self._keys.values())

    def disguiser(self, spec: DisguiseSpec, key_id: int | None = None) -> Disguiser:
        """The primary (or an enabled `key_id`) disguise key applied under `spec`."""
        key = self._keys[self.primary_id] if key_id is None else self._get(key_id)
        if key.scheme != DisguiseKey.name:
            raise KeysetError(f"key {key.key_id} is a {key.scheme} key, not a disguise key")
        if key.status is not KeyStatus.ENABLED or key.material is None:
            raise KeysetError(f"key {key.key_id} is {key.status.value}")
        return Disguiser(key.material, spec)

    # -- sealed (public-key) schemes ---------------------------------------------------
    def public(self) -> "Keyset":
        """The same keys (ids, status, primary) with only their public halves: what a
        consumer of a sealed scheme gives the server. KeysetError unless every key is of a
        sealed scheme."""
        out = Keyset()
        for k in self._keys.values():
            cls = KEY_TYPES[k.scheme]
            if not cls.sealed:
                raise KeysetError(f"key {k.key_id} is {k.scheme}, a symmetric scheme: it has no "
                                  "public half (only sealed schemes do)")
            material = None if k.material is None else cls.public_material(k.material)
            out._keys[k.key_id] = _Key(k.key_id, k.scheme, k.status, k.created, material)
        out._primary = self._primary
        return out

    def holds_private_sealed_keys(self) -> bool:
        """Whether any key of a sealed scheme has its private half here (a server's keyset
        must not: it would open the responses it sends)."""
        return any(KEY_TYPES[k.scheme].sealed and k.material is not None
                   and not SCHEMES[k.scheme].is_public(k.material) for k in self._keys.values())

    def is_public(self) -> bool:
        """Whether every key is the public half of a sealed scheme's key."""
        return all(KEY_TYPES[k.scheme].sealed and (k.material is None or SCHEMES[k.scheme].is_public(k.material))
                   for k in self._keys.values())

    # -- (de)serialisation, for storage.py only: the document holds key material --------
    def _to_document(self) -> dict:
        return {"primary": self._primary, "keys": [
            {"id": k.key_id, "scheme": k.scheme, "status": k.status.value, "created": k.created,
             "material": None if k.material is None else base64.b64encode(k.material).decode()}
            for k in self._keys.values()]}

    @classmethod
    def _from_document(cls, doc: dict) -> "Keyset":
        try:
            keyset = cls()
            for entry in doc["keys"]:
                status = KeyStatus(entry["status"])
                material = entry["material"]
                if (status is KeyStatus.DESTROYED) != (material is None):
                    raise ValueError("material present exactly when not destroyed")
                key = _Key(int(entry["id"]), key_type(entry["scheme"]).name, status,
                           int(entry["created"]),
                           None if material is None else base64.b64decode(material, validate=True))
                if key.material is not None and not KEY_TYPES[key.scheme].valid_material(key.material):
                    raise ValueError("key material is malformed")
                keyset._keys[key.key_id] = key
            keyset._primary = doc["primary"]
            if keyset._keys[keyset._primary].status is not KeyStatus.ENABLED:
                raise ValueError("primary must be enabled")
        except (KeyError, TypeError, ValueError, AttributeError):
            raise KeysetError("malformed keyset document") from None
        return keyset

    def __repr__(self) -> str:
        return f"Keyset(primary={self._primary}, keys={len(self._keys)})"

    def __reduce__(self):
        raise TypeError("keysets hold key material and cannot be pickled")
