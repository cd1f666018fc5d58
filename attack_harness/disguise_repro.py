"""`make disguise`: the Disguised-Nets reproduction — utility and attacks, with the figures
README quotes (out/disguise/: utility.json, report.json, report.html, picture_*.png).

1. Utility: the default re-ID model trained on plain and on disguised synthetic pedestrians
   (rank-1 / mAP on the query/gallery split), and the digits LeNet (accuracy), per variant,
   noise level and block size. Every disguised model trains without augmentation (see
   models/train.py), so "plain, no augmentation" is the like-for-like baseline.
2. Attacks: the disguise scan at full size (128x64, block 8) on the default setting and the
   other variants, with the packaged plain model for visual re-ID and each target's own
   disguised model for class membership.

    python -m featurelock.attack_harness.disguise_repro [--steps 250] [--out out/disguise]
    # one part only, e.g. the learner with labels and the jigsaw on another data seed:
    python -m featurelock.attack_harness.disguise_repro --skip-utility --seed 1 \
        --attacks labelled-reader,jigsaw --out out/disguise-readers
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from featurelock.middleware import DisguiseSpec, Keyset

from .disguise_scan import (DisguiseScanConfig, disguise_data, disguise_table, run_disguise_scan,
                            write_disguise_report)

__all__ = ["DEFAULT_SPEC", "reid_utility", "digits_utility", "train_digits", "main"]

# The default setting: per-position projections on 8x8 blocks with a little noise.
DEFAULT_SPEC = DisguiseSpec(128, 64, 3, 8, "rmt", noise=0.05)
REID_SETTINGS: dict[str, DisguiseSpec | None] = {
    "plain": None, "plain, no augmentation": None,
    "rmt b8 noise 0": DEFAULT_SPEC.with_(noise=0.0),
    "rmt b8 noise 0.05 (default)": DEFAULT_SPEC,
    "rmt b8 noise 0.2": DEFAULT_SPEC.with_(noise=0.2),
    "rmt b4 noise 0.05": DEFAULT_SPEC.with_(block=4),
    "rmt b16 noise 0.05": DEFAULT_SPEC.with_(block=16),
    "aes b8": DEFAULT_SPEC.with_(variant="aes", noise=0.0),
}
DIGITS_SETTINGS: dict[str, DisguiseSpec | None] = {
    "plain": None,
    "rmt b4 noise 0": DisguiseSpec(28, 28, 1, 4, "rmt"),
    "rmt b4 noise 0.05": DisguiseSpec(28, 28, 1, 4, "rmt", noise=0.05),
    "rmt b4 noise 0.2": DisguiseSpec(28, 28, 1, 4, "rmt", noise=0.2),
    "rmt b7 noise 0.05": DisguiseSpec(28, 28, 1, 7, "rmt", noise=0.05),
    "aes b4": DisguiseSpec(28, 28, 1, 4, "aes"),
}


class _Embedder:
    """A trained ReidCompact as `.embed(uint8 images)` for the scan."""

    def __init__(self, model) -> None:
        from featurelock.models.zoo import as_embedding_model

        self.model = as_embedding_model("reid-compact", model)

    def embed(self, images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.embed(images, 128)


def reid_utility(steps: int, settings=REID_SETTINGS, log=print) -> tuple[list[dict], dict]:
    """Rows of rank-1 / mAP per setting, and the trained disguised models (with their key)."""
    from featurelock.models.train import TrainConfig, train_reid

    rows, models = [], {}
    for name, spec in settings.items():
        started = time.monotonic()
        disguise, disguiser = None, None
        if spec is not None:
            disguiser = Keyset.generate("disguise").disguiser(spec)
            disguise = disguiser.disguise
        elif "no augmentation" in name:
            disguise = lambda x: x  # noqa: E731 -- the identity: same recipe, no augmentation
        result = train_reid(TrainConfig(steps=steps), log=lambda _: None, disguise=disguise)
        rows.append({"setting": name, "spec": spec.to_dict() if spec else None,
                     "rank1": round(result.metrics["rank1"], 4),
                     "mAP": round(result.metrics["mAP"], 4), "steps": result.steps_done,
                     "seconds": round(time.monotonic() - started, 1)})
        log(f"re-ID utility: {name}: rank-1 {rows[-1]['rank1']:.3f} mAP {rows[-1]['mAP']:.3f} "
            f"({rows[-1]['seconds']:.0f}s)")
        if spec is not None:
            models[name] = (spec, disguiser, _Embedder(result.model))
    return rows, models


def train_digits(disguise=None, epochs: int = 30, seed: int = 0):
    """The digits LeNet trained on (optionally disguised) sklearn digits at 28x28, half for
    training, half held out. Returns (model, held-out accuracy, accuracy on PLAIN held-out
    digits: what a client without the key gets from a disguised model)."""
    from .digits import LeNet, _train_classifier, load_digits28

    x, y = load_digits28(seed)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(x)))
    train, test = order[: len(x) // 2], order[len(x) // 2:]
    xs = x
    if disguise is not None:
        as_u8 = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        xs = torch.from_numpy(disguise(as_u8).astype(np.float32) / 255).permute(0, 3, 1, 2)
    torch.manual_seed(seed)
    model = LeNet()
    _train_classifier(model, xs[train], y[train], epochs, seed)
    model.eval()
    with torch.no_grad():
        acc = float((model(xs[test]).argmax(1) == y[test]).float().mean())
        keyless = float((model(x[test]).argmax(1) == y[test]).float().mean())
    return model, acc, keyless


def digits_utility(epochs: int = 30, seed: int = 0, settings=DIGITS_SETTINGS,
                   log=print) -> list[dict]:
    """LeNet accuracy on held-out digits, plain vs disguised; plus what a keyless client gets
    from the disguised model with plain digits (class membership, chance 0.1)."""
    rows = []
    for name, spec in settings.items():
        disguise = None if spec is None else Keyset.generate("disguise").disguiser(spec).disguise
        _, acc, keyless = train_digits(disguise, epochs, seed)
        rows.append({"setting": name, "spec": spec.to_dict() if spec else None,
                     "accuracy": round(acc, 4), "plain_inputs_accuracy": round(keyless, 4)})
        log(f"digits utility: {name}: accuracy {acc:.3f} (plain inputs: {keyless:.3f})")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=250, help="re-ID training steps per model")
    parser.add_argument("--out", type=Path, default=Path("out/disguise"))
    parser.add_argument("--skip-utility", action="store_true", help="attacks only")
    parser.add_argument("--attacks", default=None,
                        help="comma-separated disguise attacks (default: all)")
    parser.add_argument("--known-pairs", default=None,
                        help="comma-separated k of the known-plaintext curve")
    parser.add_argument("--seed", type=int, default=0, help="data and scan seed")
    parser.add_argument("--targets", default=None,
                        help="regular expression: scan only the targets whose name matches")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    utility: dict = {}
    models: dict = {}
    if not args.skip_utility:
        utility["digits"] = digits_utility()
        utility["reid"], models = reid_utility(args.steps)
        (args.out / "utility.json").write_text(json.dumps(utility, indent=1), encoding="utf-8")
    from .reference import ZooEvaluator

    targets = {"rmt b8 noise 0.05 (default)": DEFAULT_SPEC,
               "rmt b8 noise 0": DEFAULT_SPEC.with_(noise=0.0),
               "rmt b8 noise 0.2": DEFAULT_SPEC.with_(noise=0.2),
               "rmt b8 shared": DEFAULT_SPEC.with_(noise=0.0, shared=True),
               "aes b8": DEFAULT_SPEC.with_(variant="aes", noise=0.0),
               "shuffle b8": DEFAULT_SPEC.with_(variant="shuffle", noise=0.0)}
    if args.targets:
        targets = {n: s for n, s in targets.items() if re.search(args.targets, n)}
    disguised_models = {name: m[2] for name, m in models.items() if name in targets}
    # Class membership needs the model trained under THE SAME key as the scanned images:
    # the scan draws its own key, so the trained model's own disguiser replaces it.
    disguisers = {name: m[1] for name, m in models.items() if name in targets}
    data = disguise_data(args.seed, victim_ids=60, per_id=6, public_images=1500, public_ids=250)
    options: dict = {"seed": args.seed}
    if args.attacks:
        options["attacks"] = tuple(args.attacks.split(","))
    if args.known_pairs:
        options["known_pairs"] = tuple(int(k) for k in args.known_pairs.split(","))
    config = DisguiseScanConfig(**options)
    plain_model = ZooEvaluator() if "visual-reid" in config.attacks else None
    result = run_disguise_scan(targets, config, data, plain_model,
                               disguised_models, disguisers=disguisers)
    paths = write_disguise_report(result, args.out)
    _summary_picture(result, args.out / "picture.png")
    print(disguise_table(result))
    for name, entry in result["targets"].items():
        kp = entry["attacks"].get("known-plaintext", {}).get("details")
        if kp:
            print(f"{name}: SSIM >= 0.5 from k = {kp['k_at_ssim_0.5']} known pairs, every block "
                  f"placed from k = {kp['k_placing_all']}; curve "
                  + ", ".join(f"k={c['k']} {c['mode']} {c['ssim']['estimate']:.3f}"
                              f" (placed {c['positions_placed']})" for c in kp["curve"]))
        lr = entry["attacks"].get("labelled-reader")
        if lr:
            tests = lambda key: {t["what"]: round(t["score"]["estimate"], 3)  # noqa: E731
                                 for t in lr[key] if t["column"] == "attributes"}
            print(f"{name}: learner with labels, attributes {tests('tests')} "
                  f"(plain control {tests('control_tests')})")
    if utility:
        print(utility_table(utility))
    print(f"reports in {paths['html'].parent} ({time.monotonic() - started:.0f}s)")
    return 0


def _summary_picture(result: dict, path: Path) -> None:
    """README's picture: the original, then per variant its disguise and each attack's
    reconstruction (rows listed in picture.txt)."""
    from PIL import Image

    from .disguise_scan import stack_rows

    rows, labels = [], []
    for name, entry in result["targets"].items():
        images = entry["images"]
        if not rows:
            rows.append(images["victims"]), labels.append("original")
        for label, imgs in images.items():
            if label != "victims" and not label.endswith("(pooled)"):
                rows.append(imgs), labels.append(f"{name}: {label}")
    Image.fromarray(stack_rows(rows)).save(path)
    path.with_suffix(".txt").write_text("\n".join(labels) + "\n", encoding="utf-8")


def utility_table(utility: dict) -> str:
    lines = ["| re-ID setting | rank-1 | mAP |", "|---|---|---|"]
    lines += [f"| {r['setting']} | {r['rank1']:.3f} | {r['mAP']:.3f} |" for r in utility["reid"]]
    lines += ["", "| digits setting | accuracy | keyless client (plain digits) |", "|---|---|---|"]
    lines += [f"| {r['setting']} | {r['accuracy']:.3f} | {r['plain_inputs_accuracy']:.3f} |"
              for r in utility["digits"]]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
