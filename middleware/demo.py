"""`featurelock demo`: the product tour on the embedded defaults.

Part 1 (this module, numpy only): keys, encryption with every scheme, the client SDK, tamper
and tenant checks, rotation. Part 2 (featurelock.handlers.demo_serving, when the serving extras
are installed): the default model served by a real TorchServe, every response encrypted.
Part 3 (featurelock.attack_harness.demo): the same model served as plaintext and under every
scheme, scanned over HTTP by the attack harness; a table and an HTML report.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .envelope import Envelope
from .errors import DecryptionError
from .kek import generate_kek_material, kek_from_uri
from .keyset import Keyset
from .protect import Context, FeatureProtector, FeatureReader, rewrap
from .registry import KeyRegistry
from .schemes import SCHEMES

_KEK_VAR = "FEATURELOCK_DEMO_KEK"
_PARTS = ("keys", "serving", "scan")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to keep the demo's files (default: a temporary folder)")
    parser.add_argument("--skip-serving", action="store_true",
                        help="only the middleware part (no TorchServe)")


def run(args: argparse.Namespace) -> int:
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="featurelock-demo-") as tmp:
            return _tour(Path(tmp), args.skip_serving)
    args.workdir.mkdir(parents=True, exist_ok=True)
    for part in _PARTS:  # a rerun starts clean; nothing else in --workdir is touched
        shutil.rmtree(args.workdir / part, ignore_errors=True)
    return _tour(args.workdir, args.skip_serving)


def _tour(workdir: Path, skip_serving: bool) -> int:
    print("== featurelock demo, part 1: protecting feature vectors ==")
    middleware_tour(workdir / "keys")
    if skip_serving:
        return 0
    try:
        from featurelock.handlers.demo_serving import run_serving_demo
    except ImportError as exc:
        print(f"\n(part 2 skipped: serving extras not installed — {exc.name}; "
              "pip install 'featurelock[all]')")
        return 0
    print("\n== featurelock demo, part 2: a TorchServe endpoint that returns only ciphertext ==")
    status = run_serving_demo(workdir / "serving")
    if status != 0:
        return status
    from featurelock.attack_harness.demo import run_endpoint_attack_demo

    print("\n== featurelock demo, part 3: attacking every endpoint as a black box ==")
    scan_status = run_endpoint_attack_demo(workdir / "scan")
    # The scan's gate status is the verdict, not a demo failure: explain it, exit 0.
    print("verdict: " + ("an attack beat chance on a protected endpoint (see the table)"
                         if scan_status == 1 else "no attack beat chance on a protected endpoint"))
    return 0 if scan_status in (0, 1) else scan_status


def middleware_tour(registry_dir: Path) -> None:
    os.environ.setdefault(_KEK_VAR, generate_kek_material())
    kek = kek_from_uri(f"env:{_KEK_VAR}")
    registry = KeyRegistry(registry_dir, kek)
    print(f"key-encryption key: {kek.uri} (a fresh random key for this demo)")

    rng = np.random.default_rng(0)
    features = rng.standard_normal((8, 256)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)  # like an L2-normalised embedding
    print(f"features: a batch of {features.shape[0]} x {features.shape[1]} float32 embeddings, "
          f"first values {np.array2string(features[0, :4], precision=4)}\n")

    print(f"{'scheme':<20} {'envelope bytes':>14}  {'ciphertext as floats (first 4)':<44} round trip")
    for scheme in SCHEMES:
        tenant = f"demo-{scheme}"
        if SCHEMES[scheme].sealed:  # the consumer keeps the private key; the server gets the public
            consumer = Keyset.generate(scheme)
            keyset = registry.create(tenant, public_keyset=consumer.public())
        else:
            keyset = consumer = registry.create(tenant, scheme, allow_leaky=True)  # every scheme
        context = Context("demo-model", "1", tenant)
        envelope = FeatureProtector(keyset).protect(features, context)
        parsed = Envelope.from_bytes(envelope)
        view = _ciphertext_view(parsed)
        if not SCHEMES[scheme].sealed:
            consumer = KeyRegistry(registry_dir, kek).keyset(tenant)  # as stored, unwrapped again
        back = FeatureReader(consumer).read(bytes(envelope), context)
        exact = np.array_equal(back.view(np.uint32), features.view(np.uint32))
        print(f"{scheme:<20} {len(envelope):>14}  {view:<44} {'bit-exact' if exact else 'MISMATCH'}")

    keyset = registry.keyset("demo-aes-256-gcm")
    context = Context("demo-model", "1", "demo-aes-256-gcm")
    envelope = bytearray(FeatureProtector(keyset).protect(features, context))
    print(f"\nkeysets at rest, wrapped under the KEK: {sorted(p.name for p in registry_dir.iterdir())[:2]} ...")
    for what, attempt in (
        ("a flipped bit", lambda: _flip_and_read(keyset, envelope, context)),
        ("another tenant's keys", lambda: FeatureReader(registry.keyset("demo-shufflebits")).read(
            envelope, Context("demo-model", "1", "demo-shufflebits"))),
        ("the right keys but another model version", lambda: FeatureReader(keyset).read(
            envelope, Context("demo-model", "2", "demo-aes-256-gcm"))),
    ):
        try:
            attempt()
            print(f"reading with {what}: ACCEPTED (this is a bug)")
        except DecryptionError as exc:
            print(f"reading with {what}: refused ({exc})")

    new_id = keyset.add("shufflebits-masked")
    keyset.promote(new_id)
    rewrapped = rewrap(keyset, envelope, context)
    registry.save("demo-aes-256-gcm", keyset)
    print(f"rotation: promoted key {new_id} (shufflebits-masked), rewrapped the stored envelope "
          f"-> key {Envelope.from_bytes(rewrapped).key_id}; old key still decrypts old data until "
          "it is disabled")


def _ciphertext_view(envelope: Envelope) -> str:
    if not envelope.scheme.startswith("shufflebits"):
        return "opaque bytes " + bytes(envelope.payload[:8]).hex()
    values = np.frombuffer(envelope.payload, dtype=np.float32)[:4]
    return np.array2string(values, precision=3, max_line_width=200)


def _flip_and_read(keyset, envelope: bytearray, context: Context) -> None:
    bad = bytearray(envelope)
    bad[len(bad) // 2] ^= 1
    FeatureReader(keyset).read(bytes(bad), context)
