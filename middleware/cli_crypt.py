"""`featurelock encrypt | decrypt | rewrap` on .npy feature files and envelope files."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from . import _cli_common as common
from ._files import write_private_atomic
from .envelope import Envelope
from .errors import DecryptionError, KeyStoreError
from .protect import Context, FeatureProtector, FeatureReader, parse_envelope, rewrap

MULTI_COMMAND = True


def configure(parser: argparse.ArgumentParser, name: str) -> None:
    common.add_keyset_options(parser)
    parser.add_argument("--model", default="features", help="model name bound to the envelope")
    parser.add_argument("--model-version", default="", help="model version bound to the envelope")
    if name == "encrypt":
        parser.add_argument("input", type=Path, help=".npy feature file")
        parser.add_argument("output", type=Path, help="envelope file to write")
        parser.add_argument("--json", action="store_true", help="write the JSON envelope form")
    elif name == "decrypt":
        parser.add_argument("input", type=Path, help="envelope file (binary or JSON)")
        parser.add_argument("output", type=Path, help=".npy file to write (only on success)")
    else:
        parser.add_argument("inputs", type=Path, nargs="+",
                            help="envelope files, re-encrypted in place under the primary key")
    parser.set_defaults(command=name)


def run(args: argparse.Namespace) -> int:
    context = Context(args.model, args.model_version, args.tenant)
    if args.command == "rewrap":
        _rewrap(args, context)
    elif args.command == "encrypt":
        features = _load_npy(args.input)
        envelope = FeatureProtector(common.load(args)).protect(features, context)
        data = Envelope.from_bytes(envelope).to_json().encode() if args.json else bytes(envelope)
        write_private_atomic(args.output, data)
        print(f"encrypted {features.shape} {features.dtype} -> {args.output}")
    elif args.command == "decrypt":
        features = FeatureReader(common.load(args)).read(_read_envelope(args.input), context)
        write_private_atomic(args.output, _npy_bytes(features))
        print(f"decrypted {args.input} -> {args.output} {features.shape} {features.dtype}")
    return 0


def _rewrap(args: argparse.Namespace, context: Context) -> None:
    # Under the registry's shared lock: the key we rewrap under cannot be disabled, destroyed
    # or demoted until every envelope is written (a concurrent `keys destroy` waits for us).
    kek = common.open_kek(args)  # before the lock: a KEK login never runs under it
    with common.reading(args):
        keyset = common.load(args, kek=kek)
        for path in args.inputs:
            raw = _read_envelope(path)
            new = rewrap(keyset, raw, context)
            is_json = raw[:1] == b"{"
            write_private_atomic(path, Envelope.from_bytes(new).to_json().encode() if is_json else bytes(new))
            print(f"rewrapped {path} under key {keyset.primary_id}")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"cannot read {path} as a .npy array: {exc}") from None


def _read_envelope(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError:
        raise DecryptionError() from None
    parse_envelope(data)  # reject malformed input before any work
    return data


def _npy_bytes(features: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, features, allow_pickle=False)
    return buf.getvalue()
