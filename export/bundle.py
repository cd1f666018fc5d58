"""Export one zoo model to a directory: model files, a parity report and a JSON sidecar.

    out_dir/<name>.torchscript.pt   TorchScript (traced), float32
    out_dir/<name>.onnx             ONNX, opset >= 17, dynamic batch axis, onnx.checker passed
    out_dir/<name>.fp16.*           only with fp16=True (for GPU serving)
    out_dir/parity.json             torch vs each backend at each batch size; always written
    out_dir/model.json              the sidecar; written only when every parity check passed

Parity inputs are synthetic pedestrians resized to the model's profile: realistic pixel
statistics, nothing downloaded. A failed check raises ParityError after writing the report.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from featurelock.models.embedder import EmbeddingModel
from featurelock.models.imaging import preprocess
from featurelock.models.profiles import InputProfile
from featurelock.models.synthetic import make_pedestrians

from . import formats
from .errors import ExportError
from .parity import DEFAULT_MIN_COSINE, ParityResult, compare, require
from .sidecar import REPORT_NAME, SIDECAR_NAME, build_sidecar, sha256_file, write_json

__all__ = ["ExportResult", "FORMATS", "export_model", "export_model_file", "parity_inputs",
           "check_parity"]

FORMATS = ("torchscript", "onnx")
_SUFFIX = {"torchscript": ".torchscript.pt", "onnx": ".onnx"}
_RUN = {"torchscript": formats.run_torchscript, "onnx": formats.run_onnx}
_BACKEND = {"torchscript": "torchscript", "onnx": "onnxruntime"}
_FP16_COSINE = 0.999  # what half precision usually keeps; reported for fp16, never enforced


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    files: dict[str, Path]
    parity: list[ParityResult]
    report: Path
    sidecar: Path


def parity_inputs(profile: InputProfile, n: int = 8, seed: int = 0) -> np.ndarray:
    """(n, 3, H, W) float32: synthetic pedestrians preprocessed for `profile`."""
    images = make_pedestrians(n, n_ids=n, seed=seed).images
    return preprocess(images, profile).numpy()


def check_parity(reference: torch.nn.Module, fmt: str, path: str | Path, x: np.ndarray,
                 batch_sizes: Sequence[int] = (1, 8),
                 min_cosine: float = DEFAULT_MIN_COSINE) -> list[ParityResult]:
    """Run the exported file at each batch size and compare with `reference` (no raise)."""
    return _compare_file(_reference_outputs(reference, x), fmt, path, x, batch_sizes, min_cosine)


def _reference_outputs(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model.eval()(torch.from_numpy(x)).float().numpy()


def _compare_file(expected: np.ndarray, fmt: str, path: str | Path, x: np.ndarray,
                  batch_sizes: Sequence[int], min_cosine: float) -> list[ParityResult]:
    results = []
    for b in batch_sizes:
        if not 1 <= b <= len(x):
            raise ValueError(f"batch size must be in 1..{len(x)}, got {b}")
        got = _RUN[fmt](path, x[:b])
        results.append(compare(expected[:b], got, _BACKEND[fmt], min_cosine))
    return results


def _write(fmt: str, model: torch.nn.Module, example: torch.Tensor, path: Path, opset: int) -> Path:
    if fmt == "torchscript":
        return formats.to_torchscript(model, example, path)
    return formats.to_onnx(model, example, path, opset)


def export_model(model: EmbeddingModel, out_dir: str | Path,
                 formats_: Sequence[str] = FORMATS, opset: int = formats.MIN_OPSET,
                 fp16: bool = False, batch_sizes: Sequence[int] = (1, 8),
                 min_cosine: float = DEFAULT_MIN_COSINE) -> ExportResult:
    """Export `model` (a torch-backed zoo model) into `out_dir`; see the module docstring."""
    if not isinstance(model, EmbeddingModel):
        raise ExportError("export_model needs a torch model (zoo name or TorchScript file); "
                          "an ONNX file goes through export_model_file")
    unknown = set(formats_) - set(FORMATS)
    if unknown or not formats_:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {list(formats_)}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / SIDECAR_NAME).unlink(missing_ok=True)  # fail closed: no stale "servable" marker
    model = model.eval()
    x = parity_inputs(model.profile, n=max(batch_sizes))
    expected = _reference_outputs(model, x)
    example = torch.from_numpy(x[:2])
    stem = model.model_name

    files: dict[str, Path] = {}
    results: list[ParityResult] = []
    for fmt in formats_:
        path = _write(fmt, model, example, root / f"{stem}{_SUFFIX[fmt]}", opset)
        files[fmt] = path
        results += _compare_file(expected, fmt, path, x, batch_sizes, min_cosine)

    report: dict[str, Any] = {
        "model": model.model_name, "version": model.version,
        "min_cosine_required": min_cosine, "inputs": f"{len(x)} synthetic pedestrians",
        "torch_version": torch.__version__, "results": [r.to_dict() for r in results],
        "passed": all(r.passed for r in results),
    }
    if fp16:
        report["fp16"] = _export_fp16(model, example, root, stem, formats_, opset, x, expected)
    report_path = write_json(root / REPORT_NAME, report)
    require(results)
    sidecar = build_sidecar(model.model_name, model.version, model.profile, model.output_dim,
                            files, opset, formats.INPUT_NAME, formats.OUTPUT_NAME)
    sidecar["output"]["l2_normalized"] = model.profile.output == "l2"  # finish() is in the graph
    if fp16:
        sidecar["fp16_files"] = {fmt: {"path": name, "sha256": sha256_file(root / name)}
                                 for fmt, name in report["fp16"]["files"].items()}
    sidecar_path = write_json(root / SIDECAR_NAME, sidecar)
    return ExportResult(root, files, results, report_path, sidecar_path)


def _export_fp16(model: EmbeddingModel, example: torch.Tensor, root: Path, stem: str,
                 formats_: Sequence[str], opset: int, x: np.ndarray,
                 expected: np.ndarray) -> dict[str, Any]:
    """Half-precision copies for GPU serving. On CPU we check they export, load and run;
    their cosine is reported but not enforced (fp16 numerics are a GPU concern)."""
    half = copy.deepcopy(model).half()
    out: dict[str, Any] = {"files": {}, "parity": [], "note": ""}
    for fmt in formats_:
        path = _write(fmt, half, example.half(), root / f"{stem}.fp16{_SUFFIX[fmt]}", opset)
        out["files"][fmt] = path.name
        try:
            got = _RUN[fmt](path, x.astype(np.float16) if fmt == "torchscript" else x)
        except Exception as exc:  # noqa: BLE001 - informational only; CPU kernels may be missing
            out["parity"].append({"backend": _BACKEND[fmt], "ran": False,
                                  "reason": f"{type(exc).__name__} on CPU"})
            continue
        result = compare(expected, got, _BACKEND[fmt] + "-fp16", _FP16_COSINE)
        out["parity"].append({**result.to_dict(), "ran": True, "enforced": False})
    out["note"] = ("fp16 files exported and loaded on CPU; cosine reported, not enforced — "
                   "verify on the GPU that will serve them")
    return out


def export_model_file(path: str | Path, profile: "str | Path | InputProfile", out_dir: str | Path,
                      formats_: Sequence[str] | None = None, *, name: str | None = None,
                      version: str = "user", opset: int = formats.MIN_OPSET,
                      min_cosine: float = DEFAULT_MIN_COSINE) -> ExportResult:
    """A user's model file -> a servable export directory for `profile`, any output size.

    TorchScript: exported like a zoo model (TorchScript and/or ONNX, parity-checked), the
    profile's output rule in the graph. ONNX: cannot become TorchScript; the file is test-run on
    the profile's input, checked by onnx.checker and copied as `<name>.onnx` beside a sidecar
    (the server applies the output rule, as for every backend)."""
    from featurelock.models.profiles import load_profile
    from featurelock.models.user_model import backend_of, load_user_model

    src = Path(path)
    prof = load_profile(profile)
    stem = name or src.stem
    if backend_of(src) == "torchscript":
        model = load_user_model(src, prof, name=stem, version=version)
        return export_model(model, out_dir, tuple(formats_ or FORMATS), opset,
                            min_cosine=min_cosine)
    if formats_ and set(formats_) != {"onnx"}:
        raise ExportError(f"{src.name} is ONNX: it cannot be converted to TorchScript; "
                          "export it with --format onnx")
    return _export_onnx_file(src, prof, Path(out_dir), stem, version)


def _export_onnx_file(src: Path, profile: InputProfile, root: Path, stem: str,
                      version: str) -> ExportResult:
    import shutil

    import onnx

    from featurelock.models.user_model import load_user_model

    model = load_user_model(src, profile, name=stem, version=version)  # the test run
    try:
        proto = onnx.load(str(src), load_external_data=False)
        onnx.checker.check_model(proto)
    except Exception as exc:  # onnx raises several untyped errors: translated here
        raise ExportError(f"onnx.checker rejected {src.name} ({type(exc).__name__})") from None
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                default=0)
    root.mkdir(parents=True, exist_ok=True)
    (root / SIDECAR_NAME).unlink(missing_ok=True)
    target = root / f"{stem}.onnx"
    if src.resolve() != target.resolve():
        shutil.copyfile(src, target)
    report = {"model": stem, "version": version, "results": [], "passed": True,
              "inputs": f"test run on 2 dummy {profile.height}x{profile.width} images",
              "note": "ONNX file served as it is: no conversion, so no parity to check; the "
                      "output rule (profile.output) is applied by the server"}
    report_path = write_json(root / REPORT_NAME, report)
    sidecar = build_sidecar(stem, version, profile, model.output_dim, {"onnx": target}, opset,
                            model.input_name, model.session.get_outputs()[0].name)
    sidecar["output"]["l2_normalized"] = False  # the graph is the user's: the server finishes
    sidecar_path = write_json(root / SIDECAR_NAME, sidecar)
    return ExportResult(root, {"onnx": target}, [], report_path, sidecar_path)
