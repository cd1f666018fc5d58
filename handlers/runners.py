"""Running a packaged model file on a batch: TorchScript (torch) or ONNX (onnxruntime).

Both runners take a preprocessed float32 (N, 3, H, W) CPU tensor and return the (N, D)
features as a torch tensor: on the model's device for TorchScript (so ShuffleBits schemes can
permute on the GPU before the copy to host), on the CPU for onnxruntime. Both end with the
SAME output rule, the profile's (`InputProfile.finish`, torch: L2 rows for `output: l2`, the
model's output unchanged for `output: none`), so a model served as TorchScript and as ONNX
answers the same vectors. Loading goes through featurelock.models.model_files, which refuses
formats that run pickled code. `probe` test-runs a runner at start.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from featurelock.models.model_files import load_onnx_session, load_torchscript
from featurelock.models.profiles import InputProfile
from featurelock.models.user_model import probe_output_dim

__all__ = ["TorchScriptRunner", "OnnxRunner", "load_runner", "torch_device", "probe"]

log = logging.getLogger(__name__)


def torch_device(gpu_id: int | str | None) -> torch.device:
    """cuda:<gpu_id> when TorchServe assigned a GPU and CUDA works, else the CPU."""
    if gpu_id is not None and torch.cuda.is_available():
        return torch.device(f"cuda:{int(gpu_id)}")
    return torch.device("cpu")


class TorchScriptRunner:
    backend = "torchscript"

    def __init__(self, path: str | Path, device: torch.device, profile: InputProfile) -> None:
        self.device = device
        self.profile = profile
        self.module = load_torchscript(path).to(device)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.profile.finish(self.module(x.to(self.device, non_blocking=True)))


class OnnxRunner:
    """onnxruntime; CUDAExecutionProvider when onnxruntime-gpu is installed and a GPU is given."""

    backend = "onnx"

    def __init__(self, path: str | Path, gpu_id: int | str | None, profile: InputProfile) -> None:
        import onnxruntime as ort

        providers: list = ["CPUExecutionProvider"]
        if gpu_id is not None and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(gpu_id)}))
        self.session = load_onnx_session(path, providers)
        log.info("onnxruntime providers: %s", self.session.get_providers())
        self.device = torch.device("cpu")
        self.profile = profile
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.numpy().astype(np.float32, copy=False)})
        return self.profile.finish(torch.from_numpy(np.asarray(out[0])))


def load_runner(path: str | Path, backend: str, gpu_id: int | str | None,
                profile: InputProfile, normalize: bool = False) -> TorchScriptRunner | OnnxRunner:
    """`normalize=True` (configs written before profiles had `output`) forces `output: l2`."""
    if normalize and profile.output != "l2":
        profile = profile.with_(output="l2")
    if backend == "onnx":
        return OnnxRunner(path, gpu_id, profile)
    return TorchScriptRunner(path, torch_device(gpu_id), profile)


def probe(runner: TorchScriptRunner | OnnxRunner, profile: InputProfile, what: str,
          expected_dim: int | None = None) -> int:
    """Test-run `runner` on a dummy batch prepared by `profile`: its output dimension, or
    ProfileError (one line) for a wrong input size, output shape or dimension, or non-finite
    output."""
    return probe_output_dim(lambda x: runner(torch.from_numpy(x)), profile, what, expected_dim)
