"""Input profiles: what a model expects as input, and what its vectors are on the way out.

A profile is data: a small YAML or JSON file (or command-line flags, `profile_cli`). The
built-in ones are the files in `featurelock/serve_config/profiles/`; adding a file there adds a
profile by its `name`. Every command that feeds a model takes `--profile NAME|PATH`.

    name: arcface-112
    height: 112                # model input size (pixels)
    width: 112
    resize: stretch            # stretch: squash to HxW (aspect not kept); center-crop: scale
                               # to cover HxW, crop the centre; letterbox: scale to fit
                               # inside HxW, pad with black
    channel_order: RGB         # RGB | BGR: the channel order the model reads
    value_range: 255           # 255: mean/std are for 0..255 pixels; 1: for pixels / 255
    mean: 127.5                # x' = (x - mean) / std, per channel (one number: all three)
    std: 128
    output: l2                 # l2: every vector divided by its L2 norm | none: as the model says

The ONE output rule, every backend (TorchScript, ONNX) and every path (serving on TorchServe,
Ray and KServe, export, local inference): the served vector is `profile.finish(model output)`.
`finish` with `output: l2` divides each row by max(||row||_2, 1e-12) in float32; with
`output: none` it returns the model's output unchanged. A graph that already normalises is
unaffected (a unit vector stays one to within 1 ulp).

Public API (what the other layers call):

    load_profile(name_or_path)        -> InputProfile   (built-in name, zoo model name, file)
    profile.prepare(uint8 NHWC)       -> float32 NCHW numpy array, the model's input
    profile.finish(features)          -> features (numpy or torch), per `output`
    builtin_profiles()                -> {name: InputProfile}
    REID_128x64, DEEPSORT_224, ARCFACE_112: the zoo's three, loaded from their files
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from .errors import ProfileError

__all__ = ["InputProfile", "load_profile", "builtin_profiles", "profile_from_file",
           "PROFILE_DIR", "RESIZE_POLICIES", "OUTPUT_RULES", "IMAGENET_RGB", "REID_128x64",
           "DEEPSORT_224", "ARCFACE_112", "FACE_COMPACT_112"]

def _profile_dir() -> Path:
    import featurelock.serve_config  # package data, wherever the package is installed

    return Path(featurelock.serve_config.__file__).resolve().parent / "profiles"


PROFILE_DIR = _profile_dir()
RESIZE_POLICIES = ("stretch", "center-crop", "letterbox")
OUTPUT_RULES = ("l2", "none")
_EPS = 1e-12
_KEYS = {"name", "height", "width", "resize", "channel_order", "value_range", "mean", "std",
         "output"}

IMAGENET_RGB = dict(mean=(0.485 * 255, 0.456 * 255, 0.406 * 255),
                    std=(0.229 * 255, 0.224 * 255, 0.225 * 255), channel_order="RGB")


@dataclass(frozen=True)
class InputProfile:
    """Input size, resize policy, per-channel normalisation (on 0..255 pixels), channel order,
    and the output rule of a model. See the module docstring for the file format."""

    name: str
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"
    resize: str = "stretch"
    output: str = "l2"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        for field_ in ("height", "width"):
            value = getattr(self, field_)
            if type(value) is not int or not 1 <= value <= 4096:
                raise ValueError(f"{field_} must be an integer in 1..4096, got {value!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std must have 3 values (one per channel) or one number")
        if any(not s > 0 for s in self.std):
            raise ValueError(f"std must be > 0, got {self.std}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_POLICIES)}, "
                             f"got {self.resize!r}")
        if self.output not in OUTPUT_RULES:
            raise ValueError(f"output must be one of {', '.join(OUTPUT_RULES)}, "
                             f"got {self.output!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(3, height, width): one image as the model reads it."""
        return (3, self.height, self.width)

    def with_(self, **changes: Any) -> "InputProfile":
        """A copy with some fields changed (validated like any profile)."""
        return replace(self, **changes)

    # -- geometry: shared by the PIL path (request decoding) and the torch path (batches) ----
    def fit_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """How an image of (height, width) reaches the model's size under `resize`:
        (resized_h, resized_w, top, left). center-crop: crop (top, left) of the resized image
        (offsets >= 0); letterbox: paste the resized image at (top, left) on a black canvas."""
        if self.resize == "stretch" or (height, width) == (self.height, self.width):
            return self.height, self.width, 0, 0
        pick = max if self.resize == "center-crop" else min
        scale = pick(self.height / height, self.width / width)
        rh = max(1, round(height * scale))
        rw = max(1, round(width * scale))
        if self.resize == "center-crop":
            rh, rw = max(rh, self.height), max(rw, self.width)
            return rh, rw, (rh - self.height) // 2, (rw - self.width) // 2
        rh, rw = min(rh, self.height), min(rw, self.width)
        return rh, rw, (self.height - rh) // 2, (self.width - rw) // 2

    # -- the two ends of the model ------------------------------------------------------
    def prepare(self, images: Any) -> Any:
        """(N, H, W, 3) uint8 RGB (any size) -> (N, 3, height, width) float32 numpy array,
        the model's input: resized by `resize`, channels in `channel_order`, normalised."""
        from .imaging import preprocess  # torch: only when pixels are really prepared

        return preprocess(images, self).numpy()

    def finish(self, features: Any) -> Any:
        """The served vectors from the model's (N, D) output: L2-normalised rows for
        `output: l2`, unchanged for `output: none`. numpy in, numpy out; torch in, torch out
        (on its device)."""
        if self.output == "none":
            return features
        if hasattr(features, "clamp_min"):  # a torch tensor: torch is already imported
            import torch.nn.functional as F

            return F.normalize(features, p=2.0, dim=1, eps=_EPS)
        import numpy as np

        x = np.asarray(features)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.maximum(norms, _EPS)).astype(x.dtype, copy=False)

    # -- data ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The canonical form (value_range 255, three-channel mean/std): from_dict reads it."""
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputProfile":
        """A profile from its file/section form. Raises ValueError naming what is wrong.
        Dicts written before `resize`/`output` existed read as stretch / l2."""
        if not isinstance(data, Mapping):
            raise ValueError("a profile must be a mapping of its fields")
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(f"unknown profile fields: {', '.join(sorted(unknown))}")
        missing = {"name", "height", "width", "mean", "std"} - set(data)
        if missing:
            raise ValueError(f"profile misses {', '.join(sorted(missing))}")
        scale = data.get("value_range", 255)
        if scale not in (1, 255, 1.0, 255.0) or isinstance(scale, bool):
            raise ValueError(f"value_range must be 1 or 255, got {scale!r}")
        try:
            return cls(name=str(data["name"]), height=_int(data["height"], "height"),
                       width=_int(data["width"], "width"),
                       mean=_channels(data["mean"], "mean", 255 / scale),
                       std=_channels(data["std"], "std", 255 / scale),
                       channel_order=str(data.get("channel_order", "RGB")),
                       resize=str(data.get("resize", "stretch")),
                       output=str(data.get("output", "l2")))
        except TypeError as exc:
            raise ValueError(f"malformed input profile: {exc}") from None


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _channels(value: Any, name: str, factor: float) -> tuple[float, float, float]:
    values = [value] * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else value
    if not isinstance(values, (list, tuple)) or len(values) != 3 or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError(f"{name} must be one number or three (one per channel), got {value!r}")
    # factor 1 leaves 0..255 values bit-identical; 255 turns torchvision's 0..1 ones into them.
    return tuple(float(v) * factor if factor != 1 else float(v) for v in values)  # type: ignore


def profile_from_file(path: str | Path) -> InputProfile:
    """A profile from a .yaml/.yml or .json file. ProfileError with the file's name."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read profile {p}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # the `models` extra

            data = yaml.safe_load(text)
        return InputProfile.from_dict(data)
    except ImportError:
        raise ProfileError("YAML profiles need pyyaml (pip install pyyaml); or write JSON") \
            from None
    except ValueError as exc:  # json.JSONDecodeError is one
        raise ProfileError(f"profile {p.name}: {exc}") from None
    except Exception as exc:  # yaml.YAMLError: translated at the boundary
        raise ProfileError(f"profile {p.name} is not valid YAML ({type(exc).__name__})") \
            from None


@lru_cache(maxsize=1)
def _builtin() -> dict[str, InputProfile]:
    out = {}
    for path in sorted(PROFILE_DIR.glob("*.y*ml")) + sorted(PROFILE_DIR.glob("*.json")):
        profile = profile_from_file(path)
        if profile.name in out:
            raise ProfileError(f"two built-in profiles are named {profile.name!r}")
        out[profile.name] = profile
    return out


def builtin_profiles() -> dict[str, InputProfile]:
    """The profiles shipped in serve_config/profiles/, by name."""
    return dict(_builtin())


def load_profile(name_or_path: "str | Path | InputProfile") -> InputProfile:
    """A profile by built-in name ("arcface-112"), zoo model name ("reid-compact": that
    model's profile), or path to a .yaml/.yml/.json file. ProfileError if none fits."""
    if isinstance(name_or_path, InputProfile):
        return name_or_path
    text = str(name_or_path)
    builtin = _builtin()
    if text in builtin:
        return builtin[text]
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.is_file():
        if not path.is_file():
            raise ProfileError(f"no profile file at {path}")
        return profile_from_file(path)
    zoo = _zoo_profile(text)
    if zoo is not None:
        return zoo
    raise ProfileError(f"unknown profile {text!r}; built-in: {', '.join(builtin)}; or a zoo "
                       "model name, or a .yaml/.json profile file")


def _zoo_profile(name: str) -> InputProfile | None:
    try:
        from .zoo import MODELS  # imports torch: only for a name that is no profile
    except ImportError:
        return None
    spec = MODELS.get(name)
    return spec.profile if spec is not None else None


_LEGACY = {"REID_128x64": "reid-128x64", "DEEPSORT_224": "deepsort-224",
           "ARCFACE_112": "arcface-112", "FACE_COMPACT_112": "face-compact-112"}


def __getattr__(name: str) -> InputProfile:
    """The zoo's profiles by their constant names, read from their files on first use."""
    if name in _LEGACY:
        return _builtin()[_LEGACY[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
