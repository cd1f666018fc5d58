"""Running a packaged model file on a batch: TorchScript (torch) or ONNX (onnxruntime).

Both runners take a preprocessed float32 (N, 3, H, W) CPU tensor and return the (N, D)
features as a torch tensor: on the model's device for TorchScript (so ShuffleBits schemes can
permute on the GPU before the copy to host), on the CPU for onnxruntime. Loading goes through
featurelock.models.model_files, which refuses formats that run pickled code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from featurelock.models.model_files import load_onnx_session, load_torchscript

__all__ = ["TorchScriptRunner", "OnnxRunner", "load_runner", "torch_device"]

log = logging.getLogger(__name__)


def torch_device(gpu_id: int | str | None) -> torch.device:
    """cuda:<gpu_id> when TorchServe assigned a GPU and CUDA works, else the CPU."""
    if gpu_id is not None and torch.cuda.is_available():
        return torch.device(f"cuda:{int(gpu_id)}")
    return torch.device("cpu")


class TorchScriptRunner:
    backend = "torchscript"

    def __init__(self, path: str | Path, device: torch.device, normalize: bool = False) -> None:
        self.device = device
        self.normalize = normalize
        self.module = load_torchscript(path).to(device)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x.to(self.device, non_blocking=True))
        return F.normalize(out, p=2.0, dim=1) if self.normalize else out


class OnnxRunner:
    """onnxruntime; CUDAExecutionProvider when onnxruntime-gpu is installed and a GPU is given.

    Outputs are L2-normalised exactly as featurelock.models.embedder.OnnxEmbedder does.
    """

    backend = "onnx"

    def __init__(self, path: str | Path, gpu_id: int | str | None, profile) -> None:
        import onnxruntime as ort

        from featurelock.models.embedder import OnnxEmbedder

        providers: list = ["CPUExecutionProvider"]
        if gpu_id is not None and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(gpu_id)}))
        session = load_onnx_session(path, providers)
        log.info("onnxruntime providers: %s", session.get_providers())
        self.device = torch.device("cpu")
        self._embedder = OnnxEmbedder(session, profile, Path(path).stem, "")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._embedder.run(x.numpy()))


def load_runner(path: str | Path, backend: str, gpu_id: int | str | None, profile,
                normalize: bool = False) -> TorchScriptRunner | OnnxRunner:
    if backend == "onnx":
        return OnnxRunner(path, gpu_id, profile)
    return TorchScriptRunner(path, torch_device(gpu_id), normalize)
