"""Writing one model to TorchScript or ONNX (dynamic batch axis), and running the result.

ONNX goes through the TorchScript-based exporter (`dynamo=False`): it handles every zoo model,
including user TorchScript face models, in about a second, where the torch.export-based one
cannot take ScriptModules. The graph's input is named "input" (N, 3, H, W) float32 and its
output "embedding" (N, D), both with a symbolic batch dimension.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from featurelock.models.model_files import load_onnx_session, load_torchscript

from .errors import ExportError

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "MIN_OPSET", "to_torchscript", "to_onnx",
           "run_torchscript", "run_onnx"]

INPUT_NAME, OUTPUT_NAME = "input", "embedding"
MIN_OPSET = 17


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    # torch 2.13 deprecates TorchScript; TorchServe still serves it, so we keep exporting it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def to_torchscript(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Trace `model` on `example` and save the TorchScript archive to `path`."""
    p = Path(path)
    with _quiet_jit(), torch.no_grad():
        try:
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
        except RuntimeError as exc:
            raise ExportError(f"TorchScript trace failed: {str(exc).splitlines()[0]}") from None
        torch.jit.save(traced, str(p))
    return p


def to_onnx(model: nn.Module, example: torch.Tensor, path: str | Path,
            opset: int = MIN_OPSET) -> Path:
    """Export to ONNX with a dynamic batch axis, then run onnx.checker on the file."""
    import onnx

    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    p = Path(path)
    model = model.eval()
    if any(isinstance(m, torch.jit.ScriptModule) for m in model.modules()):
        # A user's TorchScript backbone cannot be re-traced inside a trace: trace the whole
        # wrapper into one TorchScript module first, which the exporter accepts as is.
        with _quiet_jit(), torch.no_grad():
            model = torch.jit.trace(model, example, check_trace=False)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter warns on use
        # ...and warns that a traced TorchScript module has no Python signature: harmless.
        warnings.filterwarnings("ignore", message="no signature found", category=UserWarning)
        try:
            torch.onnx.export(model, (example,), str(p), input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
            raise ExportError(f"ONNX export failed: {str(exc).splitlines()[0]}") from None
    try:
        onnx.checker.check_model(str(p), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"onnx.checker rejected {p.name}: {str(exc).splitlines()[0]}") from None
    return p


def run_torchscript(path: str | Path, x: np.ndarray) -> np.ndarray:
    module = load_torchscript(path)
    with torch.inference_mode():
        return module(torch.from_numpy(x)).float().numpy()


def run_onnx(path: str | Path, x: np.ndarray) -> np.ndarray:
    session = load_onnx_session(path)
    dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
    return np.asarray(session.run(None, {INPUT_NAME: x.astype(dtype)})[0], dtype=np.float32)
