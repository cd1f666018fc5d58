"""Crafted request bodies that are not JPEG/PNG, or are broken JPEG/PNG (issue 9, item 4).

Each once reached a Pillow plugin the input profiles never promised: the DDS one made Pillow
raise NotImplementedError and the SPIDER stack one AttributeError (500s before the fix).
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image


def encoded(fmt: str, shape: tuple[int, int] = (128, 64), seed: int = 3) -> bytes:
    """A noisy RGB image in Pillow format `fmt` (noise: truncation cuts real pixel data)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def dds(fourcc: bytes = b"XXXX") -> bytes:
    """A DDS header with pixel format `fourcc` (unknown: NotImplementedError in Pillow)."""
    header = struct.pack("<4sIIIIIII", b"DDS ", 124, 0x1007, 16, 8, 0, 0, 0) + b"\0" * 44
    pixel_format = struct.pack("<II4sIIIII", 32, 0x4, fourcc, 0, 0, 0, 0, 0)
    return header + pixel_format + b"\0" * 84


def spider(imgnumber: float = 1.0) -> bytes:
    """A SPIDER 2D header; imgnumber > 0 without a stack: AttributeError in Pillow."""
    h = [0.0] * 28  # 1-based like the format's documentation
    h[1], h[2], h[5], h[12], h[13], h[22], h[23] = 1.0, 8.0, 1.0, 8.0, 1.0, 1024.0, 1024.0
    h[27] = imgnumber
    return struct.pack(">27f", *h[1:]).ljust(1024 + 256, b"\0")


def not_jpeg_or_png() -> dict[str, bytes]:
    return {"dds-unknown-fourcc": dds(), "dds-dxt1-truncated": dds(b"DXT1")[:200],
            "spider-stack": spider(), "spider-valid": spider(0.0),
            "tiff": encoded("TIFF"), "tiff-truncated": encoded("TIFF")[:40],
            "gif": encoded("GIF"), "bmp": encoded("BMP"), "webp": encoded("WEBP")}


def broken_jpeg_or_png() -> dict[str, bytes]:
    jpeg, png = encoded("JPEG"), encoded("PNG")
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # IHDR's CRC
    return {"jpeg-truncated": jpeg[: len(jpeg) // 2], "jpeg-header-only": jpeg[:100],
            "png-truncated": png[: len(png) // 2], "png-header-only": png[:40],
            "png-bad-crc": bytes(bad_crc)}
