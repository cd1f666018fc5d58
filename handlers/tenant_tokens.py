"""Tenant access tokens: issued once, stored only as verifiers, checked in constant time.

    <registry directory>/tenants.json   {"featurelock_tenants": 1,
                                         "tenants": {"acme": {"sha256": "<hex>", "created": t}}}

A token is `secrets.token_urlsafe(32)` (256 random bits), so an unsalted SHA-256 is a sound
verifier: nothing to brute-force. The file is written atomically with mode 0600, in a registry
transaction (`featurelock.middleware._transaction`). The token itself is shown once, by
`featurelock tenants add`, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

from featurelock.middleware._transaction import (RegistrySnapshot, Transaction,
                                                 registry_transaction)
from featurelock.middleware.errors import KeyStoreError

from .errors import Forbidden, MissingCredentials

__all__ = ["TENANTS_FILE", "TenantTokens", "new_token", "verifier"]

TENANTS_FILE = "tenants.json"
_FORMAT = 1
_MAX_TOKEN_CHARS = 256
# Compared against when the tenant is unknown, so unknown and wrong take the same path.
_DUMMY = hashlib.sha256(b"featurelock/no-such-tenant").hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def verifier(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TenantTokens:
    """The tenants.json of one registry directory."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = Path(directory) / TENANTS_FILE
        self._verifiers: dict[str, str] = {}
        self._created: dict[str, int] = {}
        self._loaded: bytes | None = None  # the file as loaded: save() refuses if it changed

    @classmethod
    def load(cls, directory: str | os.PathLike, *, missing_ok: bool = False,
             txn: Transaction | None = None) -> "TenantTokens":
        """The tenants.json of `directory` (read through `txn` when inside a transaction)."""
        path = Path(directory) / TENANTS_FILE
        if txn is not None:
            data = txn.read(TENANTS_FILE)
        else:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                data = None
            except OSError:
                raise KeyStoreError(f"cannot read {path}") from None
        return cls.parse(directory, data, missing_ok=missing_ok)

    @classmethod
    def from_snapshot(cls, snapshot: RegistrySnapshot, *,
                      missing_ok: bool = False) -> "TenantTokens":
        return cls.parse(snapshot.directory, snapshot.files.get(TENANTS_FILE),
                         missing_ok=missing_ok)

    @classmethod
    def parse(cls, directory: str | os.PathLike, data: bytes | None, *,
              missing_ok: bool = False) -> "TenantTokens":
        tokens = cls(directory)
        tokens._loaded = data
        if data is None:
            if missing_ok:
                return tokens
            raise KeyStoreError(f"no {TENANTS_FILE} in {directory}; add a tenant with "
                                "`featurelock tenants add`")
        try:
            doc = json.loads(data)
        except ValueError:
            raise KeyStoreError(f"cannot read {tokens.path}") from None
        try:
            if doc["featurelock_tenants"] != _FORMAT:
                raise ValueError
            tokens._verifiers = {str(t): str(e["sha256"]) for t, e in doc["tenants"].items()}
            tokens._created = {str(t): int(e.get("created", 0)) for t, e in doc["tenants"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise KeyStoreError(f"{tokens.path} is malformed") from None
        return tokens

    def tenants(self) -> list[str]:
        return sorted(self._verifiers)

    def created(self, tenant: str) -> int:
        return self._created.get(tenant, 0)

    def issue(self, tenant: str) -> str:
        """A new token for `tenant` (replacing any old one); the caller saves and shows it once."""
        token = new_token()
        self._verifiers[tenant] = verifier(token)
        self._created[tenant] = int(time.time())
        return token

    def remove(self, tenant: str) -> bool:
        self._created.pop(tenant, None)
        return self._verifiers.pop(tenant, None) is not None

    def authenticate(self, tenant: str | None, token: str | None) -> str:
        """The tenant, if `token` is its token. MissingCredentials / Forbidden otherwise."""
        if not tenant or not token:
            raise MissingCredentials("tenant and token headers are required")
        if len(token) > _MAX_TOKEN_CHARS:
            raise Forbidden("token rejected")
        expected = self._verifiers.get(tenant, _DUMMY)
        ok = hmac.compare_digest(verifier(token).encode(), expected.encode())
        if not ok or tenant not in self._verifiers:
            raise Forbidden("token rejected")
        return tenant

    def save(self, txn: Transaction | None = None) -> int | None:
        """Write tenants.json: staged in `txn`, or in a transaction of its own, which bumps the
        registry's generation and returns it. KeyStoreError, writing nothing, if the file
        changed after it was loaded (saving would drop that change: a token or a revocation)."""
        if txn is not None:
            self._stage(txn)
            return None
        with registry_transaction(self.path.parent) as own:
            self._stage(own)
        return own.generation

    def _stage(self, txn: Transaction) -> None:
        if txn.read(TENANTS_FILE) != self._loaded:
            raise KeyStoreError(f"{self.path} changed after it was loaded (another command "
                                "wrote it); load it again and redo the change")
        created = self._created
        doc = {"featurelock_tenants": _FORMAT, "tenants": {
            t: {"sha256": v, "created": created.get(t, 0)} for t, v in sorted(self._verifiers.items())}}
        data = json.dumps(doc, indent=1).encode("utf-8")
        txn.write(TENANTS_FILE, data)
        self._loaded = data
