"""Profiles, image decoding (Pillow) and preprocessing to NCHW tensors."""

import io
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from featurelock.models.errors import ImageDecodeError
from featurelock.models.imaging import decode_image, decode_images, preprocess
from featurelock.models.profiles import ARCFACE_112, DEEPSORT_224, REID_128x64, InputProfile


def _encode(array, fmt):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def test_profile_round_trips_through_dict():
    assert InputProfile.from_dict(REID_128x64.to_dict()) == REID_128x64


@pytest.mark.parametrize("kwargs, message", [
    (dict(height=0), "height"), (dict(std=(1.0, 0.0, 1.0)), "std"),
    (dict(channel_order="RGBA"), "channel_order"), (dict(mean=(1.0, 2.0)), "mean"),
])
def test_profile_validation(kwargs, message):
    base = dict(name="x", height=4, width=4, mean=(0.0,) * 3, std=(1.0,) * 3)
    with pytest.raises(ValueError, match=message):
        InputProfile(**{**base, **kwargs})


def test_png_decodes_exactly_and_jpeg_approximately():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(_encode(img, "PNG"), REID_128x64), img)
    smooth = np.full((128, 64, 3), (200, 30, 90), np.uint8)
    jpeg = decode_image(_encode(smooth, "JPEG"), REID_128x64)
    assert np.abs(jpeg.astype(int) - smooth).max() < 8


def test_decode_resizes_and_converts_to_rgb():
    gray = np.full((50, 40), 77, np.uint8)
    out = decode_image(_encode(gray, "PNG"), ARCFACE_112)
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8 and (out == 77).all()
    batch = decode_images([_encode(gray, "PNG")] * 3, DEEPSORT_224)
    assert batch.shape == (3, 224, 224, 3)


def test_decode_rejects_garbage_truncated_and_huge():
    with pytest.raises(ImageDecodeError):
        decode_image(b"not an image", REID_128x64)
    good = _encode(np.zeros((64, 64, 3), np.uint8), "JPEG")
    with pytest.raises(ImageDecodeError):
        decode_image(good[: len(good) // 2], REID_128x64)
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(good, REID_128x64, max_pixels=64 * 64 - 1)
    with pytest.raises(TypeError):
        decode_image("a string", REID_128x64)


def test_preprocess_normalises_per_channel():
    img = np.zeros((2, 128, 64, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 128, 250
    x = preprocess(img, REID_128x64)
    assert x.shape == (2, 3, 128, 64) and x.dtype == torch.float32
    for c, v in enumerate((10, 128, 250)):
        expected = (v - REID_128x64.mean[c]) / REID_128x64.std[c]
        assert torch.allclose(x[:, c], torch.tensor(expected, dtype=torch.float32))
    face = preprocess(np.full((1, 112, 112, 3), 255, np.uint8), ARCFACE_112)
    assert torch.allclose(face, torch.tensor((255 - 127.5) / 128))


def test_preprocess_bgr_profile_flips_channels():
    bgr = InputProfile("bgr", 2, 2, mean=(0.0,) * 3, std=(1.0,) * 3, channel_order="BGR")
    img = np.zeros((1, 2, 2, 3), np.uint8)
    img[..., 0] = 9  # red
    assert preprocess(img, bgr)[0, 2].eq(9).all() and preprocess(img, bgr)[0, 0].eq(0).all()


def test_preprocess_resizes_other_sizes_and_validates():
    x = preprocess(np.zeros((3, 100, 50, 3), np.uint8), DEEPSORT_224)
    assert x.shape == (3, 3, 224, 224)
    assert preprocess(np.zeros((128, 64, 3), np.uint8), REID_128x64).shape == (1, 3, 128, 64)
    with pytest.raises(TypeError):
        preprocess(np.zeros((1, 128, 64, 3), np.float32), REID_128x64)
    with pytest.raises(ValueError):
        preprocess(np.zeros((1, 128, 64), np.uint8), REID_128x64)


# -- only JPEG/PNG, every decoder failure a 4xx (issue 9, item 4) ----------------------------
from image_bodies import broken_jpeg_or_png, encoded, not_jpeg_or_png  # noqa: E402


@pytest.mark.parametrize("name, body", [*not_jpeg_or_png().items(), *broken_jpeg_or_png().items()])
def test_decode_refuses_other_formats_and_broken_files(name, body):
    with pytest.raises(ImageDecodeError, match="not a decodable image"):
        decode_image(body, REID_128x64)


def test_decode_maps_any_pillow_failure(monkeypatch):
    """Whatever a Pillow plugin raises while decoding, the caller sees ImageDecodeError."""
    good = encoded("PNG")
    for exc in (NotImplementedError("x"), AttributeError("x"), IndexError("x"), struct.error("x")):
        def load(self, exc=exc):
            raise exc
        monkeypatch.setattr("PIL.PngImagePlugin.PngImageFile.load", load)
        with pytest.raises(ImageDecodeError):
            decode_image(good, REID_128x64)


def test_pillow_decompression_bomb_is_too_large(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow errors above twice this
    with pytest.raises(ImageDecodeError, match="too large"):
        decode_image(encoded("PNG", (16, 16)), REID_128x64, max_pixels=10_000)
