"""The JSON sidecar an export directory carries, so a server knows how to feed the model.

    {"format_version": 1, "model": "reid-compact", "version": "1",
     "profile": {"name", "height", "width", "mean", "std", "channel_order", "resize", "output"},
     "input": {"name": "input", "shape": ["batch", 3, H, W], "dtype": "float32"},
     "output": {"name": "embedding", "dim": D, "dtype": "float32",
                "l2_normalized": true},     # the graph itself applies profile.output
                                             # (servers apply it again: idempotent)
     "files": {"onnx": {"path": "...", "sha256": "..."}, ...}, "opset": 17,
     "fp16_files": {...}}                   (only when exported with fp16=True)

It is written only after parity passed: a directory without it is not servable.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from featurelock.models.profiles import InputProfile

from .errors import ExportError

__all__ = ["SIDECAR_NAME", "REPORT_NAME", "FORMAT_VERSION", "sha256_file", "build_sidecar",
           "write_json", "read_sidecar", "profile_of"]

SIDECAR_NAME = "model.json"
REPORT_NAME = "parity.json"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_sidecar(name: str, version: str, profile: InputProfile, output_dim: int,
                  files: dict[str, Path], opset: int, input_name: str,
                  output_name: str) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "model": name,
        "version": version,
        "profile": profile.to_dict(),
        "input": {"name": input_name, "shape": ["batch", 3, profile.height, profile.width],
                  "dtype": "float32"},
        "output": {"name": output_name, "dim": output_dim, "dtype": "float32",
                   "l2_normalized": True},
        "files": {fmt: {"path": p.name, "sha256": sha256_file(p)} for fmt, p in files.items()},
        "opset": opset,
    }


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_sidecar(export_dir: str | Path) -> dict[str, Any]:
    """Read and sanity-check an export directory's sidecar; verifies the files' hashes."""
    root = Path(export_dir)
    path = root / SIDECAR_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"no readable sidecar at {path} ({type(exc).__name__})") from None
    if data.get("format_version") != FORMAT_VERSION:
        raise ExportError(f"unsupported sidecar format_version {data.get('format_version')!r}")
    entries = list(data.get("files", {}).items()) + [
        (f"{fmt} fp16", entry) for fmt, entry in data.get("fp16_files", {}).items()]
    for fmt, entry in entries:
        file = root / Path(entry["path"]).name  # never follow paths out of the directory
        if not file.is_file() or sha256_file(file) != entry["sha256"]:
            raise ExportError(f"{fmt} file {file.name} is missing or does not match its sha256")
    return data


def profile_of(sidecar: dict[str, Any]) -> InputProfile:
    try:
        return InputProfile.from_dict(sidecar["profile"])
    except (KeyError, ValueError) as exc:
        raise ExportError(f"sidecar has no valid profile: {exc}") from None
