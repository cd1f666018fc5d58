"""featurelock.export: zoo models -> TorchScript / ONNX, with a parity gate and a JSON sidecar.

    export_model(model, out_dir, formats_=("torchscript", "onnx"), opset=17, fp16=False)
    export_model_file(path, profile, out_dir, ...)   a user's TorchScript/ONNX file, any output size
    read_sidecar(out_dir) -> dict (hash-checked); profile_of(sidecar) -> InputProfile
"""

from __future__ import annotations

from featurelock.middleware._lazy import lazy_exports

_EXPORTS = {
    "export_model": "bundle", "export_model_file": "bundle", "ExportResult": "bundle", "check_parity": "bundle",
    "parity_inputs": "bundle", "FORMATS": "bundle",
    "ParityResult": "parity", "compare": "parity", "DEFAULT_MIN_COSINE": "parity",
    "read_sidecar": "sidecar", "profile_of": "sidecar", "SIDECAR_NAME": "sidecar",
    "REPORT_NAME": "sidecar",
    "ExportError": "errors", "ParityError": "errors",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
