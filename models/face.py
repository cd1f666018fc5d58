"""Face embedding profile for user-provided models (TorchScript or ONNX).

Contract of a face model file: input (N, 3, 112, 112) float32, aligned RGB faces normalised as
ArcFace/InsightFace do, (x - 127.5) / 128 (the `arcface-112` profile); output (N, D), any D;
featurelock adds the profile's output rule (L2 normalisation). Another face profile (size,
normalisation) is a profile file: `load_face_model(path, profile="my-face.yaml")`.
"""

from __future__ import annotations

from pathlib import Path

from .embedder import EmbeddingModel, OnnxEmbedder
from .profiles import InputProfile, load_profile
from .user_model import load_user_model

__all__ = ["load_face_model", "FACE_PROFILE"]

_FACE_PROFILE = "arcface-112"


def __getattr__(name: str) -> InputProfile:
    if name == "FACE_PROFILE":  # the profile object, read from its file on first use
        return load_profile(_FACE_PROFILE)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_face_model(path: str | Path, name: str = "face", version: str = "user",
                    profile: "str | Path | InputProfile" = _FACE_PROFILE
                    ) -> EmbeddingModel | OnnxEmbedder:
    """Load a face embedder: `.onnx` through onnxruntime, anything else as TorchScript."""
    return load_user_model(path, load_profile(profile), name=name, version=version)
