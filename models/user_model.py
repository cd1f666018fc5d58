"""A user's own model file, served and scanned like a zoo model: TorchScript or ONNX, any
output size, fed as its input profile says.

    model = load_user_model("my-reid.pt", "reid-128x64")         # -> EmbeddingModel
    model = load_user_model("face.onnx", "my-face.yaml", name="face")   # -> OnnxEmbedder
    model.embed(uint8 NHWC) -> (N, D) float32, the profile's output rule applied

The file is test-run once on a dummy batch at the profile's size (`probe_output_dim`): a model
that does not take that input, answers something other than one (N, D) array, or answers
non-finite numbers is refused with one line (ProfileError).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .embedder import EmbeddingModel, OnnxEmbedder
from .errors import ModelError, ProfileError
from .model_files import load_onnx_session, load_torchscript
from .profiles import InputProfile, load_profile

__all__ = ["load_user_model", "probe_output_dim", "dummy_images", "backend_of"]


def backend_of(path: str | Path) -> str:
    """"onnx" for a .onnx file, else "torchscript"."""
    return "onnx" if Path(path).suffix.lower() == ".onnx" else "torchscript"


def dummy_images(profile: InputProfile, n: int = 2, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8: deterministic noise at the profile's size, for test runs."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, profile.height, profile.width, 3), dtype=np.uint8)


def probe_output_dim(run: Callable[[np.ndarray], Any], profile: InputProfile, what: str,
                     expected_dim: int | None = None) -> int:
    """Test-run `run` (prepared float32 NCHW -> (N, D) output) on one, then two dummy images
    prepared by `profile`; the output dimension D. ProfileError, one line, on any mismatch."""
    x = profile.prepare(dummy_images(profile))
    try:
        run(x[:1])
    except Exception as exc:  # torch/onnxruntime raise their own types: translated here
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ProfileError(f"{what} does not run on profile {profile.name!r} input "
                           f"(N, 3, {profile.height}, {profile.width}): {first}") from None
    try:
        out = run(x)
    except Exception:
        raise ProfileError(f"{what} runs one image at a time only; servers batch requests: "
                           "export it with a dynamic batch axis") from None
    if isinstance(out, torch.Tensor):
        out = out.detach().float().cpu().numpy()
    out = np.asarray(out)
    if out.ndim != 2 or out.shape[0] != len(x):
        raise ProfileError(f"{what} must answer one (N, D) array for profile {profile.name!r} "
                           f"input, got shape {tuple(out.shape)}")
    if not np.isfinite(out.astype(np.float64)).all():
        raise ProfileError(f"{what} answers non-finite values (NaN/inf) on a test input")
    dim = int(out.shape[1])
    if expected_dim is not None and dim != expected_dim:
        raise ProfileError(f"{what} answers {dim}-d vectors, the config says {expected_dim}")
    return dim


def load_user_model(path: str | Path, profile: "str | Path | InputProfile", *,
                    name: str | None = None, version: str = "user",
                    expected_dim: int | None = None) -> EmbeddingModel | OnnxEmbedder:
    """Load a TorchScript (.pt, any suffix) or ONNX (.onnx) embedder for `profile` (a name,
    a file or an InputProfile); test-run it (see the module docstring)."""
    p = Path(path)
    prof = load_profile(profile)
    label = name or p.stem
    if backend_of(p) == "onnx":
        session = load_onnx_session(p)
        input_name = session.get_inputs()[0].name
        probe_output_dim(lambda x: session.run(None, {input_name: x})[0], prof, p.name,
                         expected_dim)
        try:
            return OnnxEmbedder(session, prof, label, version)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
    module = load_torchscript(p)

    def run(x: np.ndarray) -> Any:
        with torch.inference_mode():
            return module(torch.from_numpy(x))

    dim = probe_output_dim(run, prof, p.name, expected_dim)
    return EmbeddingModel(module, prof, label, version, dim).eval()
