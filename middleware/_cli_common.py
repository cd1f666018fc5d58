"""Options shared by the key and crypt subcommands: where the keyset is, and its KEK.

A keyset change is one transaction under the lock of the keyset's directory (`transaction`):
read, modify and write happen while no other command can write there.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import KeyStoreError
from .kek import KeyEncryptionKey, kek_from_uri
from .keyset import Keyset
from ._transaction import Transaction, registry_lock_shared, registry_transaction
from .registry import KEYSET_SUFFIX, validate_tenant
from .storage import unwrap_keyset, wrap_keyset

KEK_ENV = "FEATURELOCK_KEK"


def add_keyset_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("keyset location (one of)")
    where.add_argument("--keyset", type=Path, help="keyset file")
    where.add_argument("--registry", type=Path, help="key registry directory (with --tenant)")
    parser.add_argument("--tenant", default="default",
                        help="tenant the keyset belongs to (bound to its wrapping); default: default")
    parser.add_argument("--kek", default=None,
                        help=f"key-encryption key URI: env:NAME, file:PATH or pkcs11:... "
                             f"(default: ${KEK_ENV})")
    parser.add_argument("--insecure-cleartext", action="store_true",
                        help="store/read the keyset unencrypted (development only)")


def keyset_path(args: argparse.Namespace) -> Path:
    tenant = validate_tenant(args.tenant)
    if (args.keyset is None) == (args.registry is None):
        raise KeyStoreError("give exactly one of --keyset FILE or --registry DIR")
    return args.keyset if args.keyset else args.registry / f"{tenant}.keyset.json"


def open_kek(args: argparse.Namespace) -> KeyEncryptionKey | None:
    uri = args.kek or os.environ.get(KEK_ENV)
    if uri:
        return kek_from_uri(uri)
    if args.insecure_cleartext:
        return None
    raise KeyStoreError(f"no key-encryption key: pass --kek URI or set {KEK_ENV} "
                        "(or --insecure-cleartext for development)")


def _in_registry(args: argparse.Namespace, path: Path) -> bool:
    # a registry's file (--registry, or --keyset naming <tenant>.keyset.json) bumps its generation
    return path.name == f"{args.tenant}{KEYSET_SUFFIX}"


@contextmanager
def transaction(args: argparse.Namespace) -> Iterator[Transaction]:
    """Lock the keyset's directory for one read-modify-write; commits when the block ends."""
    path = keyset_path(args)
    with registry_transaction(path.parent, bump=_in_registry(args, path)) as txn:
        yield txn


@contextmanager
def reading(args: argparse.Namespace) -> Iterator[None]:
    """Hold the keyset's directory's lock shared: no key change lands meanwhile."""
    with registry_lock_shared(keyset_path(args).parent):
        yield


def load(args: argparse.Namespace, txn: Transaction | None = None,
         kek: KeyEncryptionKey | None = None) -> Keyset:
    path = keyset_path(args)
    kek = kek or open_kek(args)
    if txn is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyStoreError(f"cannot read keyset file {path}: {exc.strerror}") from None
    else:
        data = txn.read(path.name)
        if data is None:
            raise KeyStoreError(f"cannot read keyset file {path}: No such file or directory")
    return unwrap_keyset(data, kek, args.tenant, allow_cleartext=args.insecure_cleartext)


def save(args: argparse.Namespace, keyset: Keyset, txn: Transaction,
         kek: KeyEncryptionKey | None = None) -> None:
    """Stage the keyset in `txn`; its commit writes it (and bumps a registry's generation)."""
    kek = kek or open_kek(args)
    txn.write(keyset_path(args).name, wrap_keyset(keyset, kek, args.tenant,
                                                  insecure_cleartext=args.insecure_cleartext))
