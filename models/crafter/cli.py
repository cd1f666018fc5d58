"""`featurelock crafter train`: the public prior, the inverter and one CraftNet per beta.

    featurelock crafter train --out out/crafter --betas 0.5,2,8 --seed 0
    featurelock crafter cost --dir out/crafter --batch 32 --steps 5   # optimiser vs CraftNet

Deterministic for a seed (one thread; same seed, same files). The encoder is the served
model (default reid-compact with its packaged weights): Crafter perturbs ITS features.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

__all__ = ["configure", "run"]


def _betas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,2,8, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError("name at least one beta, each >= 0")
    return values


def configure(parser: argparse.ArgumentParser) -> None:
    from .train import CrafterTrainConfig

    d = CrafterTrainConfig()
    sub = parser.add_subparsers(dest="action", required=True)
    t = sub.add_parser("train", help="train prior + inverter + CraftNets")
    t.add_argument("--out", type=Path, required=True, metavar="DIR")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--betas", type=_betas, default=d.betas, metavar="B1,B2,...")
    t.add_argument("--method", choices=("z", "implicit"), default=d.craft.method,
                   help="the optimiser the CraftNets are distilled from (default z: Crafter-z)")
    t.add_argument("--public-images", type=int, default=d.public_images)
    t.add_argument("--distill-images", type=int, default=d.distill_images)
    t.add_argument("--gan-steps", type=int, default=d.gan.steps)
    t.add_argument("--inverter-steps", type=int, default=d.inverter.steps)
    t.add_argument("--craft-steps", type=int, default=d.craft.outer_steps)
    t.add_argument("--distill-epochs", type=int, default=d.distill.epochs)
    t.add_argument("--model", default="reid-compact", help="the served zoo model (the encoder)")
    t.add_argument("--weights", default=None)
    t.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible)")
    t.add_argument("--no-progress", action="store_true")
    c = sub.add_parser("cost", help="time the per-batch optimiser (both methods) and a CraftNet")
    c.add_argument("--dir", type=Path, required=True, help="a `crafter train` output directory")
    c.add_argument("--beta", type=float, default=d.betas[0])
    c.add_argument("--batch", type=int, default=32)
    c.add_argument("--steps", type=int, default=d.craft.outer_steps, help="outer steps")
    c.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    return _train(args) if args.action == "train" else _cost(args)


def _cost(args: argparse.Namespace) -> int:
    """Wall time of one batch per optimiser, and of the CraftNet on the same batch."""
    import time

    import torch

    from featurelock.attack_harness.reference import ZooEvaluator

    from .crafting import CraftConfig, craft
    from .files import craftnet_name, load_craftnet, load_prior
    from .gan import public_pedestrians, to_unit_images

    torch.set_num_threads(args.threads)
    evaluator = ZooEvaluator()
    G, inv = load_prior(args.dir / "prior.pt")
    x = to_unit_images(public_pedestrians(args.batch, seed=1))
    with torch.no_grad():
        f0 = evaluator.torch_forward(x)
    out: dict = {"batch": args.batch, "outer_steps": args.steps, "threads": args.threads}
    for method in ("z", "implicit"):
        res = craft(G, evaluator.torch_forward, inv, f0,
                    CraftConfig(beta=args.beta, method=method, outer_steps=args.steps))
        out[method] = {"seconds": round(res.seconds, 2),
                       "ms_per_feature": round(1e3 * res.seconds / args.batch, 1)}
    net = load_craftnet(args.dir / craftnet_name(args.beta))
    t = time.perf_counter()
    with torch.inference_mode():
        for _ in range(100):
            net(f0[:1])
    out["craftnet_ms_per_feature_batch1"] = round(1e3 * (time.perf_counter() - t) / 100, 3)
    print(json.dumps(out, indent=2))
    return 0


def _train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from featurelock.attack_harness.reference import ZooEvaluator

    from .train import CrafterTrainConfig, train_crafter

    torch.set_num_threads(args.threads)
    d = CrafterTrainConfig()
    config = CrafterTrainConfig(
        seed=args.seed, betas=args.betas, public_images=args.public_images,
        distill_images=args.distill_images, gan=replace(d.gan, steps=args.gan_steps),
        inverter=replace(d.inverter, steps=args.inverter_steps),
        craft=replace(d.craft, outer_steps=args.craft_steps, method=args.method),
        distill=replace(d.distill, epochs=args.distill_epochs))
    evaluator = ZooEvaluator(args.model, args.weights, args.seed)
    dim = evaluator.model.output_dim
    bars: dict[str, tqdm] = {}

    def progress(stage: str, step: int, total: int, stats: dict) -> None:
        bar = bars.get(stage)
        if bar is None:
            for old in bars.values():
                old.close()
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr,
                                     disable=True if args.no_progress else None,
                                     dynamic_ncols=True)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items()}, refresh=False)

    summary = train_crafter(evaluator.torch_forward, dim, args.out, config, progress)
    for bar in bars.values():
        bar.close()
    (args.out / "train.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
