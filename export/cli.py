"""`featurelock export`: a zoo model -> TorchScript + ONNX + parity report + sidecar."""

from __future__ import annotations

import argparse

from featurelock.models.zoo import DEFAULT_MODEL, MODELS, load_model

from .bundle import FORMATS, export_model
from .formats import MIN_OPSET
from .parity import DEFAULT_MIN_COSINE

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=list(MODELS))
    parser.add_argument("--weights", default=None,
                        help="weights / model file (required for 'face': TorchScript)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--format", dest="formats", nargs="+", choices=FORMATS,
                        default=list(FORMATS))
    parser.add_argument("--opset", type=int, default=MIN_OPSET)
    parser.add_argument("--fp16", action="store_true",
                        help="also write half-precision files (for GPU serving)")
    parser.add_argument("--min-cosine", type=float, default=DEFAULT_MIN_COSINE,
                        help="fail if any output's cosine to torch is below this")


def run(args: argparse.Namespace) -> int:
    if args.opset < MIN_OPSET:
        raise SystemExit(f"featurelock export: --opset must be >= {MIN_OPSET}")
    model = load_model(args.model, path=args.weights)
    result = export_model(model, args.out, args.formats, args.opset, args.fp16,
                          min_cosine=args.min_cosine)
    for r in result.parity:
        print(f"{r.backend:12s} batch {r.batch_size}: min cosine {r.min_cosine:.7f}  "
              f"max |diff| {r.max_abs_diff:.2e}")
    for fmt, path in result.files.items():
        print(f"{fmt}: {path}")
    print(f"sidecar: {result.sidecar}\nreport: {result.report}")
    return 0
