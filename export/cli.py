"""`featurelock export`: a zoo model or a user's model file -> TorchScript/ONNX + parity report +
sidecar, for an input profile.

    featurelock export --model reid-compact --out export/
    featurelock export --model-file my-reid.pt --profile reid-128x64 --out export/
    featurelock export --model-file my-face.onnx --profile my-face.yaml --out export/
"""

from __future__ import annotations

import argparse

from featurelock.models.profile_cli import add_profile_arguments, profile_from_args
from featurelock.models.zoo import DEFAULT_MODEL, MODELS, load_model

from .bundle import FORMATS, export_model, export_model_file
from .formats import MIN_OPSET
from .parity import DEFAULT_MIN_COSINE

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=list(MODELS))
    parser.add_argument("--weights", default=None,
                        help="weights / model file (required for 'face': TorchScript or ONNX)")
    parser.add_argument("--model-file", default=None, metavar="FILE",
                        help="your own TorchScript (.pt) or ONNX (.onnx) embedder, any output "
                             "size; needs --profile (instead of --model)")
    parser.add_argument("--name", default=None,
                        help="model name in the export (default: the zoo or file name)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--format", dest="formats", nargs="+", choices=FORMATS, default=None,
                        help="default: both (an ONNX --model-file: onnx only)")
    parser.add_argument("--opset", type=int, default=MIN_OPSET)
    parser.add_argument("--fp16", action="store_true",
                        help="also write half-precision files (for GPU serving)")
    parser.add_argument("--min-cosine", type=float, default=DEFAULT_MIN_COSINE,
                        help="fail if any output's cosine to torch is below this")
    add_profile_arguments(parser.add_argument_group(
        "input profile (--model-file: required; face: replaces arcface-112)"))


def run(args: argparse.Namespace) -> int:
    if args.opset < MIN_OPSET:
        raise SystemExit(f"featurelock export: --opset must be >= {MIN_OPSET}")
    profile = profile_from_args(args)
    if args.model == "face" and args.weights and args.weights.lower().endswith(".onnx") \
            and not args.model_file:
        args.model_file, profile = args.weights, profile or MODELS["face"].profile
    if args.model_file:
        if profile is None:
            raise ValueError("--model-file needs --profile NAME|FILE (or --input-size, --mean "
                             "and --std)")
        if args.fp16:
            raise ValueError("--fp16 is for zoo models")
        result = export_model_file(args.model_file, profile, args.out, args.formats,
                                   name=args.name, opset=args.opset, min_cosine=args.min_cosine)
    else:
        if profile is not None and args.model != "face":
            raise ValueError(f"{args.model} has its own profile; --profile is for --model-file "
                             "or face")
        model = load_model(args.model, path=args.weights, profile=profile)
        if args.name:
            model.model_name = args.name
        result = export_model(model, args.out, args.formats or list(FORMATS), args.opset,
                              args.fp16, min_cosine=args.min_cosine)
    for r in result.parity:
        print(f"{r.backend:12s} batch {r.batch_size}: min cosine {r.min_cosine:.7f}  "
              f"max |diff| {r.max_abs_diff:.2e}")
    for fmt, path in result.files.items():
        print(f"{fmt}: {path}")
    print(f"sidecar: {result.sidecar}\nreport: {result.report}")
    return 0
