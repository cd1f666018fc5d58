"""`featurelock train`: train the default re-ID model on synthetic pedestrians and save it.

`--disguise VARIANT --keyset FILE` (Disguised-Nets) trains on images disguised with the data
owner's disguise key and writes `<weights>.disguise.json` beside the weights: the spec, the key
id and the key's non-secret fingerprint, so a client with another key gets an error
(`featurelock.middleware.disguise.check_disguise_metadata`) instead of garbage. The key itself is never written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from featurelock.middleware import _cli_common as keyset_cli
from featurelock.middleware.cli_disguise import add_spec_options, spec_from_args
from featurelock.middleware.disguise import Disguiser, disguise_metadata_path

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
    parser.add_argument("--digits", action="store_true",
                        help="train the digits LeNet (sklearn digits, 28x28 grey) instead; "
                             "needs --out")
    parser.add_argument("--epochs", type=_at_least(1), default=30, help="digits LeNet epochs")
    parser.add_argument("--disguise", action="store_true",
                        help="train on images disguised with the keyset's primary disguise key "
                             "(needs --keyset; spec options below)")
    add_spec_options(parser)
    keyset_cli.add_keyset_options(parser)


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(seed=args.seed, steps=args.steps, n_train_ids=args.train_ids,
                         n_test_ids=args.test_ids, images_per_id=args.images_per_id,
                         lr=args.lr, time_limit_s=args.time_limit)
    disguiser, key_id = None, None
    if args.disguise:
        keyset = keyset_cli.load(args)
        spec = spec_from_args(args)
        if args.digits:
            spec = spec.with_(height=28, width=28, channels=1)
        disguiser, key_id = keyset.disguiser(spec), keyset.primary_id
    elif args.keyset or args.registry:
        raise ValueError("--keyset is for --disguise only")
    if args.digits:
        return _train_digits(args, disguiser, key_id)
    result = train_reid(config, disguise=disguiser.disguise if disguiser else None)
    path = save_weights(result.model, args.out)
    summary = {"weights": str(path), "steps": result.steps_done,
               "seconds": round(result.seconds, 1), "seed": config.seed,
               "trained": result.metrics, "untrained": result.baseline}
    _write_metadata(path, disguiser, key_id, summary)
    print(f"saved {path}  rank-1 {result.metrics['rank1']:.3f}  mAP {result.metrics['mAP']:.3f}  "
          f"(untrained: rank-1 {result.baseline['rank1']:.3f}  mAP {result.baseline['mAP']:.3f})")
    if args.metrics_json:
        with open(args.metrics_json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
    return 0


def _train_digits(args: argparse.Namespace, disguiser: Disguiser | None, key_id: int | None) -> int:
    from featurelock.attack_harness.disguise_repro import train_digits

    if Path(args.out) == DEFAULT_WEIGHTS:
        raise ValueError("--digits needs --out (the default path holds the re-ID weights)")
    model, acc, keyless = train_digits(disguiser.disguise if disguiser else None, args.epochs,
                                       args.seed)
    path = save_weights(model, args.out)
    summary = {"weights": str(path), "model": "digits-lenet", "accuracy": acc,
               "plain_inputs_accuracy": keyless}
    _write_metadata(path, disguiser, key_id, summary)
    print(f"saved {path}  held-out accuracy {acc:.3f}"
          + (f" (plain digits to this disguised model: {keyless:.3f})" if disguiser else ""))
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return 0


def _write_metadata(path: Path, disguiser: Disguiser | None, key_id: int | None,
                    summary: dict) -> None:
    meta_path = disguise_metadata_path(path)
    if disguiser is not None:
        meta = {"spec": disguiser.spec.to_dict(), "key_id": key_id,
                "key_fingerprint": disguiser.fingerprint}
        meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
        summary["disguise"] = meta
    elif meta_path.exists():
        meta_path.unlink()  # plain weights replaced disguised ones: the old metadata is wrong
