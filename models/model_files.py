"""Loading model files without executing code from them.

Three formats are accepted, each loaded by a path that does not run arbitrary pickled code:
  * state dicts: `torch.load(weights_only=True)` (tensors and plain containers only);
  * TorchScript archives: `torch.jit.load` (a restricted TorchScript unpickler; the graph can
    still do anything TorchScript ops can, so only load models you trust to compute);
  * ONNX: parsed by onnxruntime (no Python code; custom ops only if registered, which we don't).
A plain pickle (`torch.save(model)`) is refused: unpickling it can run any code.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import ModelError, UnsafeModelFileError

__all__ = ["load_state_dict", "load_torchscript", "load_onnx_session"]


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}")
    return p


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A weights-only state dict (name -> tensor) as float32 tensors on the CPU."""
    p = _existing(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        # weights_only refuses every global that is not a tensor type: that is the safety net.
        raise UnsafeModelFileError(
            f"refused {p.name}: not a weights-only state dict ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UnsafeModelFileError(f"refused {p.name}: not a mapping of names to tensors")
    # Weights may be stored in float16 to stay small; compute runs in float32.
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """A TorchScript archive (torch.jit.save), on the CPU, in eval mode."""
    p = _existing(path)
    try:
        with warnings.catch_warnings():
            # torch 2.13 deprecates TorchScript; TorchServe and many model hubs still ship it.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"{p.name} is not a TorchScript archive ({type(exc).__name__})") from None
    return module.eval()


def load_onnx_session(path: str | Path, providers: list[str] | None = None) -> Any:
    """An onnxruntime InferenceSession (CPU unless providers say otherwise)."""
    p = _existing(path)
    import onnxruntime as ort  # optional dependency: only needed for ONNX files

    try:
        return ort.InferenceSession(str(p), providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors; translate all of them
        raise ModelError(f"{p.name} is not a loadable ONNX model ({type(exc).__name__})") from None
