"""Input profiles as data: the shipped files, the file format (valid and invalid), the resize
policies, load_profile's names, and the command-line flags."""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pytest
from PIL import Image

from featurelock.models.errors import ProfileError
from featurelock.models.imaging import decode_image, preprocess
from featurelock.models.profile_cli import add_profile_arguments, profile_from_args
from featurelock.models.profiles import (ARCFACE_112, DEEPSORT_224, PROFILE_DIR, REID_128x64,
                                         InputProfile, builtin_profiles, load_profile)


def test_the_zoo_profiles_are_the_shipped_files():
    assert set(builtin_profiles()) >= {"reid-128x64", "deepsort-224", "arcface-112"}
    assert REID_128x64.mean == (0.485 * 255, 0.456 * 255, 0.406 * 255)  # value_range 1 -> 255
    assert REID_128x64.std == (0.229 * 255, 0.224 * 255, 0.225 * 255)
    assert (ARCFACE_112.height, ARCFACE_112.mean, ARCFACE_112.std) == (112, (127.5,) * 3,
                                                                       (128.0,) * 3)
    assert DEEPSORT_224.resize == "stretch" and REID_128x64.output == "l2"
    for name, profile in builtin_profiles().items():
        assert load_profile(PROFILE_DIR / f"{name}.yaml") == profile
        assert InputProfile.from_dict(profile.to_dict()) == profile
    assert load_profile("reid-compact") == REID_128x64  # a zoo model's name: its profile
    assert load_profile("face") == ARCFACE_112


def test_a_user_profile_file_yaml_or_json(tmp_path):
    yaml_file = tmp_path / "my-face.yaml"
    yaml_file.write_text("name: my-face\nheight: 96\nwidth: 96\nresize: letterbox\n"
                         "channel_order: BGR\nmean: 127.5\nstd: 127.5\noutput: none\n")
    p = load_profile(yaml_file)
    assert (p.height, p.width, p.resize, p.channel_order, p.output) == (96, 96, "letterbox",
                                                                        "BGR", "none")
    assert p.mean == (127.5,) * 3
    json_file = tmp_path / "imagenet.json"
    json_file.write_text(json.dumps({"name": "in", "height": 224, "width": 224, "value_range": 1,
                                     "mean": [0.5, 0.25, 0.0], "std": [0.5, 0.5, 0.5]}))
    q = load_profile(str(json_file))
    assert q.mean == (127.5, 63.75, 0.0) and q.std == (127.5,) * 3 and q.output == "l2"


@pytest.mark.parametrize("change, message", [
    ({"height": 0}, "height"), ({"height": 12.5}, "height"), ({"std": [1, 0, 1]}, "std"),
    ({"mean": [1, 2]}, "mean"), ({"channel_order": "RBG"}, "channel_order"),
    ({"resize": "crop"}, "resize"), ({"output": "l1"}, "output"), ({"value_range": 2}, "value_range"),
    ({"gamma": 2.2}, "unknown profile fields: gamma"), ({"mean": True}, "mean"),
])
def test_invalid_profiles_are_refused_naming_the_field(tmp_path, change, message):
    data = {**REID_128x64.to_dict(), **change}
    with pytest.raises(ValueError, match=message):
        InputProfile.from_dict(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_unknown_names_and_unreadable_files(tmp_path):
    with pytest.raises(ProfileError, match="unknown profile 'nope'.*arcface-112"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="no profile file"):
        load_profile(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(tmp_path / "bad.yaml")


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("resize", ["stretch", "center-crop", "letterbox"])
def test_resize_policies_agree_between_request_decoding_and_batches(resize):
    """A 64x128 (wide) image into a 64x64 model: the request path (PIL) and the batch path
    (torch) place the same content; letterbox pads black, center-crop keeps the middle."""
    profile = InputProfile("sq", 64, 64, (0.0,) * 3, (1.0,) * 3, resize=resize)
    img = np.zeros((64, 128, 3), np.uint8)
    img[:, :32], img[:, 32:96], img[:, 96:] = 40, 200, 90  # left | middle | right
    decoded = decode_image(_png(img), profile).astype(np.float32)
    batch = preprocess(img[None], profile)[0].permute(1, 2, 0).numpy()
    assert decoded.shape == batch.shape == (64, 64, 3)
    assert np.abs(decoded - batch).mean() < 3  # two resamplers, same geometry
    if resize == "letterbox":
        assert (decoded[:16] == 0).all() and (decoded[-16:] == 0).all()  # 32 rows of content
        assert decoded[32, 0, 0] == 40 and decoded[32, 32, 0] == 200
    elif resize == "center-crop":
        assert (decoded == 200).all()  # scale 1: the middle 64 columns, the middle band only
    else:  # squashed: all three bands, half as wide
        assert decoded[32, 5, 0] == 40 and decoded[32, 32, 0] == 200 and decoded[32, 60, 0] == 90


def test_prepare_and_finish():
    x = ARCFACE_112.prepare(np.full((2, 112, 112, 3), 255, np.uint8))
    assert x.dtype == np.float32 and x.shape == (2, 3, 112, 112)
    assert np.allclose(x, (255 - 127.5) / 128)
    bgr = ARCFACE_112.with_(channel_order="BGR")
    img = np.zeros((1, 112, 112, 3), np.uint8)
    img[..., 0] = 255
    assert bgr.prepare(img)[0, 2].max() > 0 and bgr.prepare(img)[0, 0].max() < 0
    f = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    assert np.allclose(ARCFACE_112.finish(f), [[0.6, 0.8], [0.0, 0.0]])
    assert ARCFACE_112.with_(output="none").finish(f) is f


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_profile_arguments(parser)
    return parser.parse_args(list(argv))


def test_profile_flags():
    assert profile_from_args(_parse()) is None
    assert profile_from_args(_parse("--profile", "arcface-112")) == ARCFACE_112
    p = profile_from_args(_parse("--profile", "arcface-112", "--output-norm", "none",
                                 "--input-size", "128x128"))
    assert (p.height, p.output, p.mean) == (128, "none", ARCFACE_112.mean)
    q = profile_from_args(_parse("--input-size", "160x80", "--mean", "0.5", "--std",
                                 "0.5,0.5,0.5", "--value-range", "1", "--channel-order", "BGR"))
    assert (q.height, q.width, q.mean, q.std, q.channel_order) == (160, 80, (127.5,) * 3,
                                                                   (127.5,) * 3, "BGR")
    with pytest.raises(ValueError, match="--input-size, --std"):
        profile_from_args(_parse("--mean", "1"))
    with pytest.raises(ValueError, match="112x112"):
        profile_from_args(_parse("--profile", "reid-128x64", "--input-size", "112"))


def test_every_command_takes_profile(tmp_path, capsys):
    """export, package, serve and scan parse --profile the same way; an unknown one is one line."""
    from featurelock.middleware.cli import main

    for argv, status in ((["export", "--model-file", "x.pt", "--out", str(tmp_path)], 1),
                         (["package", "--model-dir", "x.pt", "--name", "x", "--out",
                           str(tmp_path)], 1),
                         (["serve", "--engine", "kserve", "--model-dir", "x.pt", "--scheme",
                           "aes-256-gcm", "--name", "x"], 1),
                         (["scan", "--local", "plaintext", "--report", str(tmp_path)], 2)):
        assert main([*argv, "--profile", "no-such-profile"]) == status
        err = capsys.readouterr().err.strip()
        assert "unknown profile 'no-such-profile'" in err and "\n" not in err, err
