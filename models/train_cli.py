"""`featurelock train`: train the default re-ID model on synthetic pedestrians and save it."""

from __future__ import annotations

import argparse
import json

from .train import TrainConfig, save_weights, train_reid
from .zoo import DEFAULT_WEIGHTS

__all__ = ["configure", "run"]


def _at_least(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    parser.add_argument("--out", default=str(DEFAULT_WEIGHTS),
                        help="where to write the state dict (default: the packaged weights)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--steps", type=_at_least(1), default=d.steps, help="optimiser steps")
    parser.add_argument("--train-ids", type=_at_least(1), default=d.n_train_ids)
    parser.add_argument("--test-ids", type=_at_least(1), default=d.n_test_ids)
    parser.add_argument("--images-per-id", type=_at_least(3), default=d.images_per_id)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="stop early after this many seconds")
    parser.add_argument("--metrics-json", default=None, help="also write the metrics here")


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(seed=args.seed, steps=args.steps, n_train_ids=args.train_ids,
                         n_test_ids=args.test_ids, images_per_id=args.images_per_id,
                         lr=args.lr, time_limit_s=args.time_limit)
    result = train_reid(config)
    path = save_weights(result.model, args.out)
    summary = {"weights": str(path), "steps": result.steps_done,
               "seconds": round(result.seconds, 1), "seed": config.seed,
               "trained": result.metrics, "untrained": result.baseline}
    print(f"saved {path}  rank-1 {result.metrics['rank1']:.3f}  mAP {result.metrics['mAP']:.3f}  "
          f"(untrained: rank-1 {result.baseline['rank1']:.3f}  mAP {result.baseline['mAP']:.3f})")
    if args.metrics_json:
        with open(args.metrics_json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
    return 0
