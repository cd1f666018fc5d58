"""Face embedding profile for user-provided models (TorchScript or ONNX).

Contract of a face model file: input (N, 3, 112, 112) float32, aligned RGB faces normalised as
ArcFace/InsightFace do, (x - 127.5) / 128; output (N, D). featurelock adds L2 normalisation.
No face weights ship with featurelock: bring your own (e.g. an ArcFace export).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .embedder import EmbeddingModel, OnnxEmbedder
from .errors import ModelError
from .model_files import load_onnx_session, load_torchscript
from .profiles import ARCFACE_112

__all__ = ["load_face_model", "FACE_PROFILE"]

FACE_PROFILE = ARCFACE_112


def load_face_model(path: str | Path, name: str = "face",
                    version: str = "user") -> EmbeddingModel | OnnxEmbedder:
    """Load a face embedder: `.onnx` through onnxruntime, anything else as TorchScript."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        try:
            return OnnxEmbedder(load_onnx_session(p), FACE_PROFILE, name, version)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
    module = load_torchscript(p)
    with torch.inference_mode():
        try:
            probe = module(torch.zeros(1, 3, FACE_PROFILE.height, FACE_PROFILE.width))
        except RuntimeError as exc:
            raise ModelError(f"{p.name} does not accept (N, 3, 112, 112) input: "
                             f"{str(exc).splitlines()[0]}") from None
    if not isinstance(probe, torch.Tensor) or probe.ndim != 2:
        raise ModelError(f"{p.name}: face model output must be one (N, D) tensor")
    return EmbeddingModel(module, FACE_PROFILE, name, version, int(probe.shape[1]))
