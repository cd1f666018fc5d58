"""Models the harness evaluates with, behind one small interface.

    embed(images uint8 NHWC) -> (N, D) float32 unit vectors
    torch_forward(x) -> (N, D)   x: (N, 3, H, W) float in [0, 1], differentiable (for rMLE)

* `ZooEvaluator`: a featurelock.models zoo model (the default re-ID model: its trained weights
  when the file is present, else a seeded random initialisation — reported as such).
* `FileEvaluator`: YOUR model file (`featurelock scan --model-file PATH --profile P`):
  TorchScript or ONNX, loaded without running pickled code, test-run on one input of the
  profile's size (a mismatch is one clear error). It is the plaintext control and the model
  that re-embeds reconstructions, so verdicts are judged against the model the endpoint
  serves. TorchScript is differentiable (the white-box rMLE runs); ONNX is not.
* `PixelEmbedder`: a transparent stand-in "model" (a fixed random projection of a 16x8
  thumbnail of the image's centre, where the person stands, L2-normalised) that certainly
  carries identity (rank-1 about 0.45 on synthetic victims, chance 0.03) and attributes. The harness's own
  tests serve it so they check the harness has teeth whatever the re-ID model's quality.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ZooEvaluator", "FileEvaluator", "PixelEmbedder", "default_evaluator",
           "resolve_profile"]


def _profile_forward(model, profile, x: torch.Tensor) -> torch.Tensor:
    """Differentiable `preprocess`: (N, 3, H, W) in [0, 1] -> the model's normalised input."""
    mean = torch.tensor(profile.mean).view(1, 3, 1, 1)
    std = torch.tensor(profile.std).view(1, 3, 1, 1)
    if profile.channel_order == "BGR":
        x = x.flip(1)
    if tuple(x.shape[2:]) != (profile.height, profile.width):
        x = F.interpolate(x, size=(profile.height, profile.width), mode="bilinear",
                          align_corners=False)
    return model((x * 255.0 - mean) / std)


class ZooEvaluator:
    """A zoo model as the plaintext re-embedding model and the white-box insider's copy."""

    def __init__(self, name: str = "reid-compact", path: str | Path | None = None,
                 seed: int = 0) -> None:
        from featurelock.models.zoo import load_model, packaged_weights

        packaged = packaged_weights(name)
        pretrained = path is not None or packaged is None or packaged.is_file()
        torch.manual_seed(seed)
        self.model = load_model(name, path, pretrained=pretrained)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.profile = self.model.profile
        weights = Path(path).name if path is not None else packaged.name if packaged else "default"
        self.description = (f"{name} ({'weights ' + weights if pretrained else 'UNTRAINED: seeded random init, no weights file'})")

    def embed(self, images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.embed(images, 128)

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        return _profile_forward(self.model, self.profile, x)


def _builtin_profiles() -> dict:
    """The zoo's input profiles by name."""
    from featurelock.models.profiles import ARCFACE_112, DEEPSORT_224, REID_128x64

    return {p.name: p for p in (REID_128x64, DEEPSORT_224, ARCFACE_112)}


def resolve_profile(spec, model_file: str | Path):
    """The input profile of a user's model file: `spec` (a profile name or file), else the
    `model.json` sidecar of an export directory holding the file; never a silent default."""
    import json

    from featurelock.models import profiles
    from featurelock.models.profiles import InputProfile

    from .errors import ScanError

    if isinstance(spec, InputProfile):  # the CLI's --profile flags, already parsed
        return spec
    if spec is None:
        sidecar = Path(model_file).parent / "model.json"
        if not sidecar.is_file():
            raise ScanError(f"--model-file {Path(model_file).name} needs --profile (one of "
                            f"{', '.join(_builtin_profiles())}, or a profile file): its input "
                            "size and normalisation cannot be guessed")
        try:  # an export's sidecar: {"profile": {...}, ...}
            doc = json.loads(sidecar.read_text(encoding="utf-8"))
            return InputProfile.from_dict(doc.get("profile", doc))
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise ScanError(f"{sidecar}: no readable input profile ({type(exc).__name__})") \
                from None
    try:
        return profiles.load_profile(spec)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScanError(f"--profile {spec}: {exc}") from None


class FileEvaluator:
    """A user's TorchScript or ONNX embedding model with its input profile (L2-normalised
    output, as featurelock serves it)."""

    def __init__(self, path: str | Path, profile) -> None:
        from featurelock.models.embedder import EmbeddingModel, OnnxEmbedder
        from featurelock.models.errors import ModelError
        from featurelock.models.model_files import load_onnx_session, load_torchscript

        p = Path(path)
        self.profile = profile
        shape = (1, 3, profile.height, profile.width)
        try:
            if p.suffix.lower() == ".onnx":
                self.model = OnnxEmbedder(load_onnx_session(p), profile, p.stem, "user")
                self._torch = None
            else:
                module = load_torchscript(p)
                with torch.inference_mode():
                    probe = module(torch.zeros(shape))
                if not isinstance(probe, torch.Tensor) or probe.ndim != 2:
                    raise ModelError(f"{p.name}: the output must be one (N, D) tensor")
                self.model = EmbeddingModel(module, profile, p.stem, "user",
                                            int(probe.shape[1])).eval()
                self._torch = self.model
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{p.name} does not run on the profile {profile.name!r}'s input "
                             f"{list(shape)}: {str(exc).splitlines()[0][:200]}") from None
        self.output_dim = int(self.model.output_dim)
        kind = "ONNX" if self._torch is None else "TorchScript"
        self.description = (f"{p.name} ({kind}, your model file; profile {profile.name} "
                            f"{profile.height}x{profile.width}, {self.output_dim}-d)")
        if self._torch is not None:  # ONNX has no gradients in process: rMLE says so
            self.torch_forward = partial(_profile_forward, self.model, profile)

    def embed(self, images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model.embed(images, 128)


class PixelEmbedder:
    """The centre crop (rows 1/8..7/8, columns 5/16..11/16) as a 16x8 RGB thumbnail, minus
    its mean, times a fixed Gaussian matrix, L2-normalised."""

    description = "pixel embedder (16x8 centre thumbnail, fixed random projection to 256-d)"

    def __init__(self, dim: int = 256, thumb: tuple[int, int] = (16, 8), seed: int = 0) -> None:
        self.thumb = thumb
        rng = np.random.default_rng(seed)
        self.proj = torch.from_numpy(
            rng.standard_normal((3 * thumb[0] * thumb[1], dim)).astype(np.float32))

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        x = x[:, :, h // 8: h - h // 8, (5 * w) // 16: (11 * w) // 16]
        t = F.interpolate(x, size=self.thumb, mode="area").flatten(1)
        t = t - t.mean(dim=1, keepdim=True)
        return F.normalize(t @ self.proj, dim=1)

    def embed(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            return self.torch_forward(x).numpy()

    __call__ = embed


def default_evaluator(model: str = "reid-compact", weights: str | Path | None = None,
                      seed: int = 0, model_file: str | Path | None = None,
                      profile: str | None = None):
    """`model_file` (with its `profile`): a FileEvaluator; 'pixel' for the PixelEmbedder,
    else a zoo model name."""
    if model_file is not None:
        return FileEvaluator(model_file, resolve_profile(profile, model_file))
    if model == "pixel":
        return PixelEmbedder(seed=seed)
    return ZooEvaluator(model, weights, seed)
