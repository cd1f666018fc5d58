"""`--profile` and the flags that make or adjust an input profile, for every command that feeds
a model (export, package, serve, scan).

    --profile NAME|FILE        built-in (reid-128x64, deepsort-224, arcface-112), a zoo model's
                               name, or a .yaml/.json profile file
    --input-size HxW --mean M[,M,M] --std S[,S,S] [--value-range 1|255] [--resize POLICY]
    [--channel-order RGB|BGR] [--output-norm l2|none]
                               change fields of --profile, or (with size, mean and std) make
                               one without a file

`profile_from_args(args)` -> InputProfile, or None when no flag was given.
"""

from __future__ import annotations

import argparse
from typing import Any

from .profiles import OUTPUT_RULES, RESIZE_POLICIES, InputProfile, load_profile

__all__ = ["add_profile_arguments", "profile_from_args"]

_FLAGS = ("input_size", "mean", "std", "value_range", "resize", "channel_order", "output_norm")


def add_profile_arguments(parser: Any, help_suffix: str = "") -> None:
    """Add --profile and the profile flags to `parser` (a parser or an argument group)."""
    parser.add_argument("--profile", default=None, metavar="NAME|FILE",
                        help="input profile: built-in name (reid-128x64, deepsort-224, "
                             "arcface-112), a zoo model name, or a .yaml/.json file (format: "
                             "README 'Bring your own model')" + help_suffix)
    parser.add_argument("--input-size", default=None, metavar="HxW",
                        help="model input height x width (overrides the profile's)")
    parser.add_argument("--mean", default=None, metavar="M[,M,M]",
                        help="per-channel mean: x' = (x - mean) / std")
    parser.add_argument("--std", default=None, metavar="S[,S,S]", help="per-channel std")
    parser.add_argument("--value-range", type=int, choices=(1, 255), default=None,
                        help="mean/std are for pixels in 0..255 (default) or scaled to 0..1")
    parser.add_argument("--resize", choices=RESIZE_POLICIES, default=None,
                        help="how other image sizes reach the input size")
    parser.add_argument("--channel-order", choices=("RGB", "BGR"), default=None)
    parser.add_argument("--output-norm", choices=OUTPUT_RULES, default=None,
                        help="l2: serve unit vectors; none: the model's output as it is")


def _numbers(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} takes one or three numbers, got {text!r}") from None
    if len(values) not in (1, 3):
        raise ValueError(f"{flag} takes one or three numbers, got {text!r}")
    return values * 3 if len(values) == 1 else values


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--input-size must look like 112x112 (height x width), got {text!r}") \
            from None
    return h, w


def profile_from_args(args: argparse.Namespace) -> InputProfile | None:
    """The profile the flags describe (ValueError / ProfileError with the rule), or None."""
    name = getattr(args, "profile", None)
    flags = {f: getattr(args, f, None) for f in _FLAGS}
    if name is None and all(v is None for v in flags.values()):
        return None
    scale = 255 / (flags["value_range"] or 255)
    if name is not None:
        base = load_profile(name)
    else:
        missing = [f"--{f.replace('_', '-')}" for f in ("input_size", "mean", "std")
                   if flags[f] is None]
        if missing:
            raise ValueError(f"without --profile, give {', '.join(missing)} too")
        h, w = _size(flags["input_size"])
        base = InputProfile(f"custom-{h}x{w}", h, w, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    changes: dict[str, Any] = {}
    if flags["input_size"] is not None:
        changes["height"], changes["width"] = _size(flags["input_size"])
    for field_ in ("mean", "std"):
        if flags[field_] is not None:
            changes[field_] = tuple(v * scale for v in _numbers(flags[field_], f"--{field_}"))
    if flags["value_range"] is not None and flags["mean"] is None and flags["std"] is None:
        raise ValueError("--value-range applies to --mean and --std; give them too")
    for field_, flag in (("resize", "resize"), ("channel_order", "channel_order"),
                         ("output", "output_norm")):
        if flags[flag] is not None:
            changes[field_] = flags[flag]
    if changes and name is not None:
        changes["name"] = f"{base.name}+custom"
    return base.with_(**changes) if changes else base
