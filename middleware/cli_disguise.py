"""`featurelock disguise`: disguise (or undisguise) a folder of images with the data owner's
disguise keyset, writing lossless PNGs (a JPEG would destroy the disguise).

    featurelock keys create --scheme disguise --keyset owner.keyset.json --kek file:kek
    featurelock disguise --keyset owner.keyset.json --kek file:kek IN_DIR OUT_DIR
    featurelock disguise --keyset ... --undisguise OUT_DIR BACK_DIR

Images of another size are resized (bilinear) to the spec's size first, as the server would
resize a plain image. Pillow is needed (featurelock[models]); the transform itself is not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from . import _cli_common as common
from .disguise import VARIANTS, DisguiseSpec
from .errors import DisguiseError

__all__ = ["configure", "run", "add_spec_options", "spec_from_args"]

_SUFFIXES = (".png", ".jpg", ".jpeg")


def add_spec_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = parser.add_argument_group("disguise spec (public: a model's config names it)")
    g.add_argument("--variant", choices=VARIANTS, default="rmt" if required else None,
                   help="rmt: block permutation + secret projection (+ noise); aes: per-block "
                        "AES, deterministic per position; shuffle: permutation only (baselines)")
    g.add_argument("--block", type=int, default=8, help="block size in pixels (default 8)")
    g.add_argument("--noise", type=float, default=0.0, help="rmt noise std (default 0)")
    g.add_argument("--shared", action="store_true", help="rmt: one projection for all blocks")
    g.add_argument("--height", type=int, default=128, help="image height (default: reid-128x64)")
    g.add_argument("--width", type=int, default=64, help="image width (default: reid-128x64)")


def spec_from_args(args: argparse.Namespace) -> DisguiseSpec:
    return DisguiseSpec(args.height, args.width, 3, args.block, args.variant, args.noise,
                        args.shared)


def configure(parser: argparse.ArgumentParser) -> None:
    common.add_keyset_options(parser)
    add_spec_options(parser)
    parser.add_argument("--undisguise", action="store_true", help="invert instead")
    parser.add_argument("--key-id", type=int, default=None,
                        help="an enabled key other than the primary (e.g. after rotation)")
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("out_dir", type=Path)


def run(args: argparse.Namespace) -> int:
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("reading and writing images needs Pillow: install featurelock[models]") from None
    spec = spec_from_args(args)
    disguiser = common.load(args).disguiser(spec, args.key_id)
    if args.undisguise and not spec.invertible:
        raise DisguiseError("rmt with noise is not invertible; undisguise gives noisy images")
    files = sorted(p for p in args.in_dir.iterdir() if p.suffix.lower() in _SUFFIXES)
    if not files:
        raise ValueError(f"no .png/.jpg images in {args.in_dir}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in files:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            if rgb.size != (spec.width, spec.height):
                rgb = rgb.resize((spec.width, spec.height), Image.BILINEAR)
            x = np.asarray(rgb, np.uint8)
        y = disguiser.undisguise(x) if args.undisguise else disguiser.disguise(x)
        Image.fromarray(y).save(args.out_dir / f"{path.stem}.png", "PNG")
    verb = "undisguised" if args.undisguise else "disguised"
    print(f"{verb} {len(files)} images into {args.out_dir} (key {disguiser.fingerprint}, "
          f"{spec.variant}, block {spec.block})")
    return 0
