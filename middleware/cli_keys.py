"""`featurelock keys ...`: create a keyset, rotate its keys, list them, make a KEK."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import _cli_common as common
from ._transaction import Transaction
from .errors import KeyStoreError
from .kek import KeyEncryptionKey, create_kek_file, generate_kek_material, kek_from_uri
from .keyset import KEY_TYPES, Keyset
from .registry import check_server_keyset
from .schemes import DEFAULT_SCHEME, leaky_schemes
from .storage import load_public_keyset, public_fingerprint, save_keyset, save_public_keyset

_SCHEME_HELP = ("aes-256-gcm (default; authenticated, randomised), shufflebits (the paper's "
                "permutation; deterministic, leaks to bit-reading attackers), shufflebits-otp "
                "(fresh permutation per message; leaks Hamming weights), shufflebits-masked "
                "(keystream mask + permutation; size-preserving), hpke-x25519 and "
                "hpke-mlkem768-x25519 (sealed to the consumer's public key: the consumer creates "
                "the keyset, the server gets only `export-public`), disguise (the data owner's image disguise key; "
                "never given to the server). The two leaky ones need --allow-leaky-scheme")
_LEAKY_HELP = (f"allow a scheme that measurably leaks ({', '.join(leaky_schemes())}); for "
               "compatibility experiments and attack baselines only")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_: str, *, with_keyset: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        if with_keyset:
            common.add_keyset_options(p)
        return p

    p = action("create", "create a keyset with one primary key")
    p.add_argument("--scheme", choices=list(KEY_TYPES), default=DEFAULT_SCHEME, help=_SCHEME_HELP)
    p.add_argument("--public-key", type=Path, default=None,
                   help="server side of a sealed scheme: the consumer's `export-public` file")
    p.add_argument("--shufflebits-seed", type=int, default=None,
                   help="reproduce the reference code's seed-derived permutation (anyone can derive it)")
    p.add_argument("--allow-leaky-scheme", action="store_true", help=_LEAKY_HELP)
    p = action("add", "add a key (not primary unless --primary)")
    p.add_argument("--scheme", choices=list(KEY_TYPES), default=None, help=_SCHEME_HELP)
    p.add_argument("--primary", action="store_true", help="make the new key primary at once")
    p.add_argument("--allow-leaky-scheme", action="store_true", help=_LEAKY_HELP)
    for name, help_ in (("promote", "make a key the primary"), ("disable", "stop a key decrypting"),
                        ("enable", "re-enable a disabled key"),
                        ("destroy", "erase a key's material (irreversible)")):
        action(name, help_).add_argument("key_id", type=int)
    action("list", "list the keys (never their material)")
    p = action("export-public", "consumer side of a sealed scheme: write the public halves")
    p.add_argument("--out", type=Path, required=True, help="public keyset file to give the server")
    p = action("export", "write the keyset for another reader (e.g. the JS package): re-wrapped "
                         "under a local KEK the reader holds (env: or file:), same file format")
    p.add_argument("--out", type=Path, required=True, help="keyset file to write")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--out-kek", help="env:NAME or file:PATH: the KEK the reader unwraps it with")
    out.add_argument("--out-insecure-cleartext", action="store_true",
                     help="write the keys unencrypted (development only)")
    p = action("import-public", "server side of a sealed scheme: replace a tenant's public keys "
                                "with the consumer's new `export-public` file (rotation)")
    p.add_argument("--public-key", type=Path, required=True, help="the consumer's public keyset file")
    p = action("new-kek", "create a key-encryption key", with_keyset=False)
    p.add_argument("--kek", required=True,
                   help="file:PATH (written 0600), pkcs11:... (generated on the token), "
                        "or env:NAME (material printed for you to store)")


def run(args: argparse.Namespace) -> int:
    if args.action == "new-kek":
        return _new_kek(args.kek)
    if args.action in ("list", "export-public", "export"):  # read only: no transaction
        return _show(args, common.load(args))
    # Opened before the lock: a KEK login or a public-key file is never read under it.
    kek = common.open_kek(args)
    public = load_public_keyset(args.public_key) if getattr(args, "public_key", None) else None
    with common.transaction(args) as txn:  # read, modify, write: one transaction
        message = _change(args, txn, kek, public)
    print(message)  # only now: the change is on disk
    _print_generation(txn.generation)
    return 0


def _change(args: argparse.Namespace, txn: Transaction, kek: KeyEncryptionKey | None,
            public: Keyset | None) -> str:
    path = common.keyset_path(args)
    if args.action == "create":
        if txn.exists(path.name):
            raise KeyStoreError(f"{path} exists; refusing to overwrite")
        keyset = public or Keyset.generate(args.scheme, shufflebits_seed=args.shufflebits_seed,
                                           allow_leaky=args.allow_leaky_scheme)
        _save(args, txn, keyset, kek)
        return (f"created keyset {path} with primary key {keyset.primary_id} "
                f"({keyset.info()[0].scheme})")
    if args.action == "import-public":
        if public is None:
            raise KeyStoreError("import-public needs --public-key FILE")
        if txn.exists(path.name) and not common.load(args, txn, kek).is_public():
            raise KeyStoreError(f"{path} holds secret keys; import-public replaces only a "
                                "keyset of public keys")
        _save(args, txn, public, kek)
        return (f"imported public keys {public_fingerprint(public)} (primary key "
                f"{public.primary_id}) into {path}")
    keyset = common.load(args, txn, kek)
    if args.action == "add":
        key_id = keyset.add(args.scheme, make_primary=args.primary,
                            allow_leaky=args.allow_leaky_scheme)
        message = f"added key {key_id}{' (primary)' if args.primary else ''}"
    else:
        getattr(keyset, args.action)(args.key_id)
        message = f"key {args.key_id}: {args.action}d"
    _save(args, txn, keyset, kek)
    return message


def _show(args: argparse.Namespace, keyset: Keyset) -> int:
    if args.action == "export-public":
        save_public_keyset(args.out, keyset)
        print(f"wrote public keys {public_fingerprint(keyset.public())} to {args.out}; the "
              "server operator should see the same fingerprint")
        return 0
    if args.action == "export":
        return _export(args, keyset)
    _print_keys(keyset)
    if keyset.is_public():
        print(f"public keys only, fingerprint {public_fingerprint(keyset)}")
    return 0


def _save(args: argparse.Namespace, txn: Transaction, keyset: Keyset,
          kek: KeyEncryptionKey | None) -> None:
    if args.registry is not None:  # a registry is the server's
        check_server_keyset(keyset, args.tenant)
    common.save(args, keyset, txn, kek)


def _export(args: argparse.Namespace, keyset: Keyset) -> int:
    out_kek = None
    if args.out_kek is not None:
        if not args.out_kek.startswith(("env:", "file:")):
            raise KeyStoreError("--out-kek takes env:NAME or file:PATH (a reader outside this "
                                "process must hold the KEK's bytes)")
        out_kek = kek_from_uri(args.out_kek)
    save_keyset(args.out, keyset, out_kek, args.tenant,
                insecure_cleartext=args.out_insecure_cleartext)
    how = f"wrapped under {args.out_kek}" if out_kek else "IN CLEARTEXT (development only)"
    print(f"wrote keyset {args.out} (tenant {args.tenant}, {len(keyset.info())} keys) {how}")
    return 0


def _print_generation(generation: int | None) -> None:
    # Serving workers pick the change up within about a second; their
    # featurelock_key_registry_generation gauge reaches this number once they have.
    if generation is not None:
        print(f"key registry generation {generation}")


def _print_keys(keyset: Keyset) -> None:
    leaky = leaky_schemes()
    print(f"{'key id':>10}  {'scheme':<18}  {'status':<9}  {'created (UTC)':<19}  {'leaks':<5}  "
          "primary")
    for k in keyset.info():
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(k.created))
        print(f"{k.key_id:>10}  {k.scheme:<18}  {k.status.value:<9}  {created:<19}  "
              f"{'LEAKS' if k.scheme in leaky else '':<5}  {'*' if k.primary else ''}".rstrip())
    # One footnote per leaky scheme present, so an operator sees why to rotate away from it.
    for scheme in sorted({k.scheme for k in keyset.info()} & set(leaky)):
        print(f"LEAKS {scheme}: {leaky[scheme]}")


def _new_kek(uri: str) -> int:
    scheme, _, rest = uri.partition(":")
    if scheme == "file":
        create_kek_file(rest)
        print(f"wrote a new KEK to {rest} (mode 0600); use --kek {uri}")
    elif scheme == "pkcs11":
        from ._pkcs11 import Pkcs11Kek

        Pkcs11Kek.generate(uri)
        print(f"generated a non-extractable AES-256 KEK on the token; use --kek '{uri}'")
    elif scheme == "env":
        print(generate_kek_material())
    else:
        raise KeyStoreError("new-kek takes file:PATH, pkcs11:... or env:NAME")
    return 0
