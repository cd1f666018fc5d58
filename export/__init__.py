"""featurelock.export: zoo models -> TorchScript / ONNX, with a parity gate and a JSON sidecar.

    export_model(model, out_dir, formats_=("torchscript", "onnx"), opset=17, fp16=False)
    read_sidecar(out_dir) -> dict (hash-checked); profile_of(sidecar) -> InputProfile
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "export_model": "bundle", "ExportResult": "bundle", "check_parity": "bundle",
    "parity_inputs": "bundle", "FORMATS": "bundle",
    "ParityResult": "parity", "compare": "parity", "DEFAULT_MIN_COSINE": "parity",
    "read_sidecar": "sidecar", "profile_of": "sidecar", "SIDECAR_NAME": "sidecar",
    "REPORT_NAME": "sidecar",
    "ExportError": "errors", "ParityError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy, like featurelock.models: importing the package must not import torch or onnx.
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return __all__
