"""Options shared by the key and crypt subcommands: where the keyset is, and its KEK."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .errors import KeyStoreError
from .kek import KeyEncryptionKey, kek_from_uri
from .keyset import Keyset
from .registry import KEYSET_SUFFIX, bump_generation, validate_tenant
from .storage import load_keyset, save_keyset

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


def load(args: argparse.Namespace) -> Keyset:
    return load_keyset(keyset_path(args), open_kek(args), args.tenant,
                       allow_cleartext=args.insecure_cleartext)


def save(args: argparse.Namespace, keyset: Keyset) -> int | None:
    """Save the keyset; in a registry, bump its generation and return it (None otherwise)."""
    path = keyset_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_keyset(path, keyset, open_kek(args), args.tenant,
                insecure_cleartext=args.insecure_cleartext)
    if path.name == f"{args.tenant}{KEYSET_SUFFIX}":  # a registry's file (--registry or --keyset)
        return bump_generation(path.parent)
    return None
