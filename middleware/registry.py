"""The key registry: one keyset per tenant (API consumer), in one directory.

    <directory>/<tenant>.keyset.json     each wrapped under the same KEK, bound to its tenant
    <directory>/generation.json          bumped by every write (see `_generation`)
    <directory>/.registry.lock           every write is one transaction under it (`_transaction`)

A tenant's key can never open another tenant's features: different keys, and the tenant is
part of both the keyset wrapping and every envelope's associated data.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ._generation import GENERATION_FILE, read_generation
from ._transaction import (RegistrySnapshot, bump_generation, read_snapshot,
                           registry_transaction)
from .errors import KeyStoreError, TenantError
from .kek import KeyEncryptionKey
from .keyset import Keyset
from .schemes import DEFAULT_SCHEME
from .storage import unwrap_keyset, wrap_keyset

__all__ = ["KeyRegistry", "validate_tenant", "check_server_keyset", "GENERATION_FILE",
           "KEYSET_SUFFIX", "bump_generation", "read_generation", "read_snapshot",
           "registry_transaction", "RegistrySnapshot"]

_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KEYSET_SUFFIX = ".keyset.json"


def validate_tenant(tenant: str) -> str:
    if not isinstance(tenant, str):
        raise TypeError("tenant must be a str")
    if not _TENANT.fullmatch(tenant):
        raise ValueError("tenant must be 1-64 characters of letters, digits, '_', '.', '-', "
                         "starting with a letter or digit")
    return tenant


def check_server_keyset(keyset: Keyset, tenant: str) -> None:
    """KeyStoreError if a keyset the server holds has the private half of a sealed-scheme key
    (with it the server could open the responses it sends, which sealed mode promises it
    can't) or a disguise key (the server is the party the disguise hides images from)."""
    if keyset.holds_disguise_keys():
        raise KeyStoreError(f"tenant {tenant!r}: disguise keys stay with the data owner; the "
                            "server never holds them")
    if keyset.holds_private_sealed_keys():
        raise KeyStoreError(f"tenant {tenant!r}: the server may hold only the consumer's public "
                            "keys for a sealed scheme; the consumer runs `keys create` and "
                            "`keys export-public`, the server `keys create --public-key FILE`")


class KeyRegistry:
    """Maps tenant ids to keysets stored under one KEK. Keysets are loaded once and cached.

    Every write is one transaction under the registry's lock (`_transaction`). `save` refuses
    to overwrite a keyset that another process changed after this registry loaded it: the
    caller would silently drop that change (a key, a revocation)."""

    def __init__(self, directory: str | os.PathLike, kek: KeyEncryptionKey | None, *,
                 allow_cleartext: bool = False) -> None:
        self.directory = Path(directory)
        self._kek = kek
        self._allow_cleartext = allow_cleartext
        self._cache: dict[str, Keyset] = {}
        self._loaded: dict[str, bytes] = {}  # the file bytes each cached keyset came from

    @staticmethod
    def file_name(tenant: str) -> str:
        return f"{validate_tenant(tenant)}{KEYSET_SUFFIX}"

    def path(self, tenant: str) -> Path:
        return self.directory / self.file_name(tenant)

    def tenants(self) -> list[str]:
        return sorted(p.name[: -len(KEYSET_SUFFIX)] for p in self.directory.glob(f"*{KEYSET_SUFFIX}"))

    def keyset(self, tenant: str) -> Keyset:
        """The tenant's keyset; TenantError if the tenant has none."""
        if tenant not in self._cache:
            path = self.path(tenant)
            try:
                data = path.read_bytes()  # one file, renamed into place whole: no lock needed
            except FileNotFoundError:
                raise TenantError(f"no keyset for tenant {tenant!r}") from None
            except OSError as exc:
                raise KeyStoreError(f"cannot read keyset file {path}: {exc.strerror}") from None
            self._remember(tenant, data)
        return self._cache[tenant]

    def _remember(self, tenant: str, data: bytes) -> Keyset:
        keyset = unwrap_keyset(data, self._kek, tenant, allow_cleartext=self._allow_cleartext)
        check_server_keyset(keyset, tenant)
        self._cache[tenant], self._loaded[tenant] = keyset, data
        return keyset

    def load_all(self, snapshot: RegistrySnapshot | None = None) -> dict[str, Keyset]:
        """Every tenant's keyset, as of one instant (servers do this at start to fail early).
        Pass a `snapshot` to load from it (the serving state reads one for tokens too)."""
        snapshot = snapshot or read_snapshot(self.directory)
        return {tenant: self._remember(tenant, snapshot.files[self.file_name(tenant)])
                for tenant in snapshot.tenants()}

    def create(self, tenant: str, scheme: str = DEFAULT_SCHEME, *,
               allow_leaky: bool = False, public_keyset: Keyset | None = None) -> Keyset:
        """A new keyset for `tenant`, saved; `allow_leaky` as in `Keyset.generate`. For a
        sealed scheme pass the consumer's `public_keyset` instead of a scheme."""
        keyset = public_keyset or Keyset.generate(scheme, allow_leaky=allow_leaky)
        check_server_keyset(keyset, tenant)
        with registry_transaction(self.directory) as txn:
            if txn.exists(self.file_name(tenant)):
                raise TenantError(f"tenant {tenant!r} already has a keyset")
            data = self._stage(txn, tenant, keyset)
        self._cache[tenant], self._loaded[tenant] = keyset, data
        return keyset

    def save(self, tenant: str, keyset: Keyset) -> None:
        check_server_keyset(keyset, tenant)
        with registry_transaction(self.directory) as txn:
            current = txn.read(self.file_name(tenant))
            if tenant in self._loaded and current != self._loaded[tenant]:
                raise KeyStoreError(f"the keyset of tenant {tenant!r} changed after it was "
                                    "loaded (another command wrote it); load it again and "
                                    "redo the change")
            data = self._stage(txn, tenant, keyset)
        self._cache[tenant], self._loaded[tenant] = keyset, data

    def _stage(self, txn, tenant: str, keyset: Keyset) -> bytes:
        data = wrap_keyset(keyset, self._kek, tenant,
                           insecure_cleartext=self._kek is None and self._allow_cleartext)
        txn.write(self.file_name(tenant), data)
        return data

    def __repr__(self) -> str:
        return f"KeyRegistry({str(self.directory)!r}, kek={getattr(self._kek, 'uri', None)!r})"
