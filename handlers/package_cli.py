"""`featurelock package`: an export directory or model file -> a keyless TorchServe .mar.

    featurelock package --model-dir export/ --name reid --out store
    featurelock package --model-dir my-face.onnx --profile arcface-112 --name face --out store

A bare model file needs --profile (or the profile flags); the model is test-run on a dummy
batch of that profile and refused with one line if it does not fit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from featurelock.middleware.schemes import DEFAULT_SCHEME, SCHEMES

from featurelock.models.profile_cli import add_profile_arguments, profile_from_args

from .packaging import build_mar, resolve_model
from .serving_config import CRAFTER, DEFAULT_KEK_ENV, DEFAULT_REGISTRY_ENV, PLAINTEXT

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True,
                        help="export directory (with model.json) or a TorchScript/ONNX file")
    parser.add_argument("--scheme", choices=[*SCHEMES, PLAINTEXT, CRAFTER], default=DEFAULT_SCHEME,
                        help="encryption scheme; plaintext only for baselines/attack comparisons; "
                             "crafter: readable crafted features (needs --crafter-file)")
    parser.add_argument("--crafter-file", default=None, metavar="craft-beta<B>.pt",
                        help="scheme crafter: the crafting network (featurelock crafter train); "
                             "its beta goes into the config")
    parser.add_argument("--disguise-metadata", default=None, metavar="WEIGHTS.disguise.json",
                        help="a model trained on disguised images (featurelock train --disguise): "
                             "its spec and key fingerprint (never the key) go into the config, "
                             "and the endpoint then takes PNG at the profile's size only")
    parser.add_argument("--name", required=True, help="model name (bound into every envelope)")
    parser.add_argument("--version", default="1", help="model version (bound into envelopes)")
    parser.add_argument("--out", required=True, help="model store directory")
    parser.add_argument("--backend", choices=["torchscript", "onnx"], default=None,
                        help="which file of an export directory to serve (default: torchscript)")
    add_profile_arguments(parser.add_argument_group("input profile (required for a bare model "
                                                    "file; an export directory has its own)"))
    parser.add_argument("--output-dim", type=int, default=None, metavar="D",
                        help="refuse the model unless it answers D-d vectors")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-batch-delay", type=int, default=5, help="milliseconds")
    parser.add_argument("--response-timeout", type=int, default=30, help="seconds")
    parser.add_argument("--key-registry-env", default=DEFAULT_REGISTRY_ENV,
                        help="environment variable naming the key registry directory at serve time")
    parser.add_argument("--kek-env", default=DEFAULT_KEK_ENV,
                        help="environment variable holding the KEK URI at serve time")
    parser.add_argument("--force", action="store_true", help="replace an existing .mar")


def run(args: argparse.Namespace) -> int:
    source = resolve_model(args.model_dir, args.backend, profile_from_args(args),
                           args.output_dim)
    serving = {"key_registry_env": args.key_registry_env, "kek_env": args.kek_env}
    if args.scheme == CRAFTER or args.crafter_file:
        if not args.crafter_file:
            raise ValueError("--scheme crafter needs --crafter-file")
        from featurelock.models.crafter.files import load_craftnet

        serving |= {"crafter_file": args.crafter_file,
                    "beta": round(float(load_craftnet(args.crafter_file).beta), 6)}
    if args.disguise_metadata:
        serving["disguise"] = _disguise_section(args.disguise_metadata)
    mar = build_mar(source, args.scheme, args.name, args.version, args.out, force=args.force,
                    serving=serving,
                    batchSize=args.batch_size, maxBatchDelay=args.max_batch_delay,
                    responseTimeout=args.response_timeout)
    profile = source.input_profile()
    print(f"wrote {mar} ({source.backend}, profile {profile.name} {profile.height}x"
          f"{profile.width} output {profile.output}, scheme {args.scheme}; no keys inside)")
    return 0


def _disguise_section(path: str) -> dict:
    """The serving config's `disguise:` from training's metadata: spec and fingerprint only."""
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        return {"spec": meta["spec"], "key_fingerprint": meta["key_fingerprint"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not the .disguise.json that featurelock train --disguise "
                         f"writes") from None
