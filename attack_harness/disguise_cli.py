"""`featurelock scan-disguise`: the disguise attacks on synthetic pedestrians, each variant
beside its control; verdict table, report.json, report.html and one picture per target.

A fresh disguise key per target is generated in process and never stored. Exit status 0:
the verdicts are findings to read (the projection is expected to fall to known pairs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from featurelock.middleware.cli_disguise import add_spec_options, spec_from_args

from .disguise_attacks import disguise_attack_names
from .disguise_scan import (DisguiseScanConfig, disguise_data, disguise_table, run_disguise_scan,
                            write_disguise_report)

__all__ = ["configure", "run"]


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    return values


def configure(parser: argparse.ArgumentParser) -> None:
    add_spec_options(parser)
    parser.add_argument("--compare", default="aes,shuffle",
                        help="other variants scanned beside the spec (comma-separated; '' none)")
    parser.add_argument("--attacks", default=",".join(disguise_attack_names()),
                        help=f"comma-separated among {','.join(disguise_attack_names())}")
    parser.add_argument("--known-pairs", type=_ints, default=DisguiseScanConfig().known_pairs,
                        help="k values of the known-plaintext curve")
    parser.add_argument("--chosen", type=int, default=DisguiseScanConfig().chosen,
                        help="chosen plaintexts for the learned inverse")
    parser.add_argument("--victim-ids", type=int, default=60)
    parser.add_argument("--public-images", type=int, default=1500)
    parser.add_argument("--plain-model", action="store_true",
                        help="also run visual re-ID with the packaged plain re-ID model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, default=Path("out/scan-disguise"))


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    targets = {f"{spec.variant} (scanned spec)": spec}
    for variant in [v for v in args.compare.split(",") if v]:
        targets[variant] = spec.with_(variant=variant, noise=0.0, shared=False)
    config = DisguiseScanConfig(seed=args.seed, block=spec.block, known_pairs=args.known_pairs,
                                chosen=min(args.chosen, args.public_images),
                                attacks=tuple(a for a in args.attacks.split(",") if a))
    data = disguise_data(args.seed, victim_ids=args.victim_ids, public_images=args.public_images,
                         public_ids=max(2, args.public_images // 6))
    plain_model = None
    if args.plain_model:
        from .reference import ZooEvaluator

        plain_model = ZooEvaluator()
    result = run_disguise_scan(targets, config, data, plain_model)
    paths = write_disguise_report(result, args.report)
    print(disguise_table(result))
    print(f"report: {paths['html']}")
    return 0
