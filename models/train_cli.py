"""`featurelock train`: train the default re-ID model on synthetic pedestrians and save it.

`--faces` trains face-compact on synthetic faces instead (ArcFace margin loss; default output
the packaged models/weights/face_compact.pt, stored as float16) and reports TAR at FMR 1e-3,
EER and rank-1 on held-out identities.

`--disguise VARIANT --keyset FILE` (Disguised-Nets) trains on images disguised with the data
owner's disguise key and writes `<weights>.disguise.json` beside the weights: the spec, the key
id and the key's non-secret fingerprint, so a client with another key gets an error
(`featurelock.middleware.disguise.check_disguise_metadata`) instead of garbage. The key itself is never written.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from featurelock.middleware import _cli_common as keyset_cli
from featurelock.middleware.cli_disguise import add_spec_options, spec_from_args
from featurelock.middleware.disguise import Disguiser, disguise_metadata_path

from .train import TrainConfig, save_weights, train_reid
from .zoo import DEFAULT_WEIGHTS, FACE_COMPACT_WEIGHTS

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
    parser.add_argument("--out", default=None,
                        help="where to write the state dict (default: the packaged weights of "
                             "the model trained)")
    parser.add_argument("--seed", type=int, default=d.seed)
    # Shape flags default to None: re-ID and faces (--faces) have their own defaults.
    parser.add_argument("--steps", type=_at_least(1), default=None,
                        help=f"optimiser steps (default {d.steps}; faces: FaceTrainConfig's)")
    parser.add_argument("--train-ids", type=_at_least(1), default=None,
                        help=f"default {d.n_train_ids}")
    parser.add_argument("--test-ids", type=_at_least(1), default=None,
                        help=f"default {d.n_test_ids}")
    parser.add_argument("--images-per-id", type=_at_least(3), default=None,
                        help=f"default {d.images_per_id}")
    parser.add_argument("--lr", type=float, default=None, help=f"default {d.lr}")
    parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                        help="stop early after this many seconds")
    parser.add_argument("--metrics-json", default=None, help="also write the metrics here")
    parser.add_argument("--faces", action="store_true",
                        help="train face-compact (112x112, 128-d, ArcFace) on synthetic faces; "
                             "--steps/--train-ids/--test-ids/--images-per-id/--lr apply, "
                             "defaults from FaceTrainConfig")
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
    if args.faces:
        return _train_faces(args)
    args.out = args.out or str(DEFAULT_WEIGHTS)
    config = TrainConfig(seed=args.seed, time_limit_s=args.time_limit, **_shape_flags(args))
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


def _shape_flags(args: argparse.Namespace) -> dict:
    """The config fields the user set (the rest keep the trained model's own defaults)."""
    names = {"steps": "steps", "train_ids": "n_train_ids", "test_ids": "n_test_ids",
             "images_per_id": "images_per_id", "lr": "lr"}
    return {field: getattr(args, flag) for flag, field in names.items()
            if getattr(args, flag) is not None}


def _train_faces(args: argparse.Namespace) -> int:
    from .train_faces import FaceTrainConfig, train_faces

    if args.disguise or args.digits or args.keyset or args.registry:
        raise ValueError("--faces takes no --disguise, --digits or --keyset")
    config = FaceTrainConfig(seed=args.seed, time_limit_s=args.time_limit, **_shape_flags(args))
    result = train_faces(config)
    path = save_weights(result.model, args.out or FACE_COMPACT_WEIGHTS, half=True)
    summary = {"weights": str(path), "model": "face-compact", "steps": result.steps_done,
               "seconds": round(result.seconds, 1), "seed": config.seed,
               "config": asdict(config), "trained": result.metrics,
               "untrained": result.baseline}
    m = result.metrics
    print(f"saved {path}  TAR@FMR1e-3 {m['tar_at_fmr_1e-3']:.3f}  EER {m['eer']:.3f}  "
          f"rank-1 {m['rank1']:.3f}  (untrained: TAR@FMR1e-3 "
          f"{result.baseline['tar_at_fmr_1e-3']:.3f}, rank-1 {result.baseline['rank1']:.3f})")
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps(summary, indent=2), encoding="utf-8")
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
