"""`featurelock tenants add|list|remove`: API consumers = a keyset + an access token.

    featurelock tenants add --registry DIR --tenant acme [--scheme S | --public-key FILE]
                            [--kek URI] [--allow-leaky-scheme]

`add` creates the tenant's keyset in the key registry (wrapped under the KEK from --kek or
$FEATURELOCK_KEK; cleartext only with --insecure-cleartext) and prints a new access token ONCE.
Only its SHA-256 verifier is stored, in DIR/tenants.json (mode 0600, written atomically).
A scheme that measurably leaks (shufflebits, shufflebits-otp) needs --allow-leaky-scheme.
`add --rotate-token` issues a new token for an existing tenant. `remove` revokes the token; the
keyset file is kept (so stored envelopes stay readable) unless --delete-keyset. Every command
is one registry transaction (`featurelock.middleware._transaction`): it takes the registry's
lock, reads, writes keyset and tokens together, bumps the generation once, and releases; a
command that cannot take the lock in time changes nothing. Serving workers apply a change
within about a second, no restart (`featurelock.handlers.serving_state`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from featurelock.middleware import KeyRegistry, kek_from_uri
from featurelock.middleware.errors import KeyStoreError, TenantError
from featurelock.middleware.registry import (read_snapshot, registry_transaction,
                                              validate_tenant)
from featurelock.middleware.schemes import DEFAULT_SCHEME, SCHEMES, leaky_schemes
from featurelock.middleware.storage import load_public_keyset

from .tenant_tokens import TenantTokens

__all__ = ["configure", "run", "add_tenant"]

KEK_ENV = "FEATURELOCK_KEK"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_ in (("add", "create a tenant's keyset and print its access token once"),
                        ("list", "list tenants (never tokens or keys)"),
                        ("remove", "revoke a tenant's token")):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--registry", type=Path, required=True, help="key registry directory")
        if name != "list":
            p.add_argument("--tenant", required=True)
        if name == "add":
            p.add_argument("--scheme", choices=list(SCHEMES), default=DEFAULT_SCHEME)
            p.add_argument("--public-key", type=Path, default=None,
                           help="sealed schemes: the consumer's `keys export-public` file "
                                "(the server never holds the private key)")
            p.add_argument("--kek", default=None,
                           help=f"KEK URI: env:NAME, file:PATH or pkcs11:... (default: ${KEK_ENV})")
            p.add_argument("--insecure-cleartext", action="store_true",
                           help="store the keyset unencrypted (development only)")
            p.add_argument("--allow-leaky-scheme", action="store_true",
                           help="allow a scheme that measurably leaks "
                                f"({', '.join(leaky_schemes())}); for compatibility "
                                "experiments and attack baselines only")
            p.add_argument("--rotate-token", action="store_true",
                           help="issue a new token for an existing tenant (keyset unchanged)")
        if name == "remove":
            p.add_argument("--delete-keyset", action="store_true",
                           help="also delete the keyset file (its envelopes become unreadable)")


def add_tenant(registry: str | os.PathLike, tenant: str, scheme: str = DEFAULT_SCHEME,
               kek_uri: str | None = None, *, insecure_cleartext: bool = False,
               rotate_token: bool = False, allow_leaky: bool = False,
               public_key: str | os.PathLike | None = None) -> str:
    """Create the tenant's keyset (unless rotating) and return its new token. A leaky scheme
    needs `allow_leaky=True` (KeysetError otherwise, before anything is written)."""
    validate_tenant(tenant)
    uri = kek_uri or os.environ.get(KEK_ENV)
    if not uri and not insecure_cleartext:
        raise KeyStoreError(f"no key-encryption key: pass --kek URI or set {KEK_ENV} "
                            "(or --insecure-cleartext for development)")
    # Opened before the lock: a KEK login or a public-key file is never read under it.
    kek = kek_from_uri(uri) if uri and not rotate_token else None
    public = load_public_keyset(public_key) if public_key and not rotate_token else None
    with registry_transaction(registry) as txn:  # keyset + token: one commit, one generation
        tokens = TenantTokens.load(registry, missing_ok=True, txn=txn)
        if not rotate_token:
            if tenant in tokens.tenants():
                raise TenantError(f"tenant {tenant!r} exists; use --rotate-token for a new token")
            KeyRegistry(registry, kek, allow_cleartext=insecure_cleartext).create(
                tenant, scheme, allow_leaky=allow_leaky, public_keyset=public)
        elif tenant not in tokens.tenants():
            raise TenantError(f"no tenant {tenant!r} to rotate")
        token = tokens.issue(tenant)
        tokens.save(txn)
    return token  # only now: the token is on disk


def run(args: argparse.Namespace) -> int:
    if args.action == "add":
        token = add_tenant(args.registry, args.tenant, args.scheme, args.kek,
                           insecure_cleartext=args.insecure_cleartext,
                           rotate_token=args.rotate_token,
                           allow_leaky=args.allow_leaky_scheme, public_key=args.public_key)
        what = ("new token" if args.rotate_token else "public keys and token" if args.public_key
                else f"keyset ({args.scheme}) and token")
        print(f"tenant {args.tenant}: {what} created. The token is shown ONCE; store it now:")
        print(token)
        return 0
    if args.action == "list":
        snapshot = read_snapshot(args.registry)  # tokens and keysets as of one instant
        tokens = TenantTokens.from_snapshot(snapshot, missing_ok=True)
        keysets = set(snapshot.tenants())
        for tenant in sorted(set(tokens.tenants()) | keysets):
            state = []
            state.append("token" if tenant in tokens.tenants() else "NO TOKEN")
            state.append("keyset" if tenant in keysets else "NO KEYSET")
            print(f"{tenant}\t{', '.join(state)}")
        return 0
    validate_tenant(args.tenant)
    if not args.registry.is_dir():
        raise TenantError(f"no tenant {args.tenant!r}: {args.registry} is not a key registry")
    with registry_transaction(args.registry) as txn:  # token and keyset go in one commit
        tokens = TenantTokens.load(args.registry, missing_ok=True, txn=txn)
        if not tokens.remove(args.tenant):
            raise TenantError(f"no tenant {args.tenant!r}")
        tokens.save(txn)
        if args.delete_keyset:  # staged after the token, so it is renamed away after it
            txn.remove(KeyRegistry.file_name(args.tenant))
    print(f"tenant {args.tenant}: token revoked{' and keyset deleted' if args.delete_keyset else ''}")
    return 0
