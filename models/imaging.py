"""Image bytes -> uint8 RGB arrays -> model input tensors, for training, export and serving.

`decode_image` is the only place request bytes are parsed (Pillow, JPEG and PNG only, with a
pixel-count limit checked before the pixels are decoded). `preprocess` turns a uint8 NHWC batch
into the float NCHW tensor a profile describes; it resizes only if the batch is not already at
profile size. Both resize by the profile's `resize` policy (stretch, center-crop, letterbox)
with the same geometry (`InputProfile.fit_box`).
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import ImageDecodeError, ImageTooLarge
from .profiles import InputProfile

__all__ = ["decode_image", "decode_images", "preprocess", "MAX_PIXELS", "ACCEPTED_FORMATS",
           "PNG_SIGNATURE"]

# Camera frames are at most a few megapixels; anything far larger is a decompression bomb.
MAX_PIXELS = 40_000_000
# The formats the input profiles document; Pillow tries no other plugin.
ACCEPTED_FORMATS = ("JPEG", "PNG")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_image(data: bytes, profile: InputProfile, max_pixels: int = MAX_PIXELS, *,
                 exact_png: bool = False) -> np.ndarray:
    """JPEG or PNG bytes -> (profile.height, profile.width, 3) uint8 RGB (bilinear resize).

    `exact_png` (models trained on disguised images): PNG at exactly the profile's size only;
    a JPEG's loss or a resize would destroy the disguise and the model would answer garbage.

    Only the formats the input profiles document are opened: Pillow's other plugins (DDS,
    SPIDER, TIFF, ...) are attack surface that raised NotImplementedError/AttributeError on
    crafted bodies. ANY failure while Pillow parses or decodes becomes ImageDecodeError.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if exact_png and bytes(data[:8]) != PNG_SIGNATURE:
        raise ImageDecodeError("this model takes disguised images: lossless PNG only")
    try:
        rgb = _decode_rgb(data, max_pixels)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own limit, checked at open
        raise ImageTooLarge("image too large") from exc
    except Exception as exc:  # translated at the boundary: this request fails alone (4xx)
        raise ImageDecodeError("not a decodable image") from exc
    if rgb.size != (profile.width, profile.height):
        if exact_png:
            raise ImageDecodeError(f"a disguised image must be exactly {profile.width}x"
                                   f"{profile.height} pixels")
        rgb = _fit_pil(rgb, profile)
    return np.asarray(rgb, dtype=np.uint8)


def _fit_pil(rgb: Image.Image, profile: InputProfile) -> Image.Image:
    """Bilinear resize to the profile's size under its `resize` policy (`fit_box`)."""
    rh, rw, top, left = profile.fit_box(rgb.height, rgb.width)
    rgb = rgb.resize((rw, rh), Image.BILINEAR)
    if profile.resize == "center-crop":
        return rgb.crop((left, top, left + profile.width, top + profile.height))
    if profile.resize == "letterbox":
        canvas = Image.new("RGB", (profile.width, profile.height))
        canvas.paste(rgb, (left, top))
        return canvas
    return rgb


def _decode_rgb(data: bytes, max_pixels: int) -> Image.Image:
    with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as img:
        width, height = img.size  # header only: nothing decoded yet
        if width * height > max_pixels:
            raise ImageTooLarge(f"image too large: {width}x{height} pixels")
        img.load()
        return img.convert("RGB")


def decode_images(items: Sequence[bytes], profile: InputProfile,
                  max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Several encoded images -> one (N, H, W, 3) uint8 batch at profile size."""
    if len(items) == 0:
        return np.zeros((0, profile.height, profile.width, 3), dtype=np.uint8)
    return np.stack([decode_image(d, profile, max_pixels) for d in items])


def preprocess(images: np.ndarray | torch.Tensor, profile: InputProfile) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, profile.height, profile.width) float32, normalised.

    Other sizes are resized bilinearly without antialiasing, as cv2.resize(INTER_LINEAR) does
    in deep-sort's embedder.
    """
    batch = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3), got shape {tuple(batch.shape)}")
    if batch.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {batch.dtype}")
    x = batch.permute(0, 3, 1, 2).float()
    if profile.channel_order == "BGR":
        x = x.flip(1)
    if tuple(x.shape[2:]) != (profile.height, profile.width):
        x = _fit_tensor(x, profile)
    mean = torch.tensor(profile.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(profile.std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def _fit_tensor(x: torch.Tensor, profile: InputProfile) -> torch.Tensor:
    """(N, 3, h, w) float pixels -> (N, 3, H, W) under the profile's `resize` (`fit_box`)."""
    rh, rw, top, left = profile.fit_box(x.shape[2], x.shape[3])
    x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False, antialias=False)
    if profile.resize == "center-crop":
        return x[:, :, top:top + profile.height, left:left + profile.width]
    if profile.resize == "letterbox":  # black borders, as the PIL path pastes on black
        canvas = x.new_zeros((x.shape[0], 3, profile.height, profile.width))
        canvas[:, :, top:top + rh, left:left + rw] = x
        return canvas
    return x
