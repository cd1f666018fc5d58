"""Serving a model trained on disguised images: PNG at the profile's size only, the disguised
pixels reach the model unchanged, and the response is still encrypted for the tenant."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from featurelock.handlers.errors import ServerConfigError
from featurelock.handlers.pipeline import Request, ServingPipeline
from featurelock.handlers.serving_config import ServingConfig
from featurelock.handlers.serving_state import ServingState
from featurelock.handlers.tenant_tokens import TenantTokens
from featurelock.middleware import Context, FeatureProtector, FeatureReader, Keyset
from featurelock.middleware.errors import DisguiseError
from featurelock.models.imaging import preprocess
from featurelock.models.profiles import REID_128x64
from featurelock.models.synthetic import make_pedestrians
from featurelock.middleware.disguise import (DisguiseSpec, check_disguise_metadata,
                                             disguise_metadata_path)

SPEC = DisguiseSpec(128, 64, 3, 8, "rmt", noise=0.05)


class _State:
    def __init__(self, state):
        self.state = state

    def current(self):
        return self.state


def _encode(image: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def served(tmp_path):
    owner = Keyset.generate("disguise").disguiser(SPEC)
    tenant_keys = Keyset.generate()
    tokens = TenantTokens(tmp_path)
    token = tokens.issue("acme")
    section = {"scheme": "aes-256-gcm", "model": "reid", "version": 1, "model_file": "m.pt",
               "backend": "torchscript", "profile": REID_128x64.to_dict(),
               "disguise": {"spec": SPEC.to_dict(), "key_fingerprint": owner.fingerprint}}
    # The "model" returns its first 8 input values: what reached it, exactly.
    pipeline = ServingPipeline(ServingConfig.from_model_yaml({"featurelock": section}),
                               _State(ServingState(1, tokens, {"acme": FeatureProtector(tenant_keys)})),
                               lambda x: x.flatten(1)[:, :8])
    creds = {"X-Featurelock-Tenant": "acme", "X-Featurelock-Token": token}
    return pipeline, owner, tenant_keys, creds, section


def test_disguised_png_in_encrypted_features_out_jpeg_refused(served):
    pipeline, owner, tenant_keys, creds, _ = served
    image = make_pedestrians(1, 1, seed=3).images[0]
    disguised = owner.disguise(image)
    small = np.ascontiguousarray(disguised[::2, ::2])
    out = pipeline.serve([Request(creds, {"body": _encode(disguised, "PNG")}),
                          Request(creds, {"body": _encode(disguised, "JPEG")}),
                          Request(creds, {"body": _encode(small, "PNG")})])
    assert [r.status for r in out] == [200, 400, 400]
    features = FeatureReader(tenant_keys).read(bytes(out[0].body), Context("reid", "1", "acme"))
    expected = preprocess(disguised[None], REID_128x64).flatten(1)[:, :8].numpy()
    assert np.allclose(features, expected, atol=1e-6)  # lossless: the disguise arrived intact
    assert not np.allclose(expected, preprocess(image[None], REID_128x64).flatten(1)[:, :8].numpy())


def test_config_names_the_spec_never_the_key(served):
    _, _, _, _, section = served
    bad = dict(section, disguise={**section["disguise"], "key": "00" * 32})
    with pytest.raises(ServerConfigError, match="never the key"):
        ServingConfig.from_model_yaml({"featurelock": bad})
    wrong_size = dict(section, disguise={**section["disguise"],
                                        "spec": SPEC.with_(height=64).to_dict()})
    with pytest.raises(ServerConfigError, match="input profile"):
        ServingConfig.from_model_yaml({"featurelock": wrong_size})


def test_training_metadata_catches_a_key_mismatch(tmp_path):
    ks = Keyset.generate("disguise")
    weights = tmp_path / "w.pt"
    mine = ks.disguiser(SPEC)
    disguise_metadata_path(weights).write_text(json.dumps(
        {"spec": SPEC.to_dict(), "key_id": ks.primary_id, "key_fingerprint": mine.fingerprint}))
    assert check_disguise_metadata(weights, mine)["key_id"] == ks.primary_id
    with pytest.raises(DisguiseError, match="trained under disguise key"):
        check_disguise_metadata(weights, Keyset.generate("disguise").disguiser(SPEC))
    with pytest.raises(DisguiseError, match="trained under"):
        check_disguise_metadata(weights, ks.disguiser(SPEC.with_(block=4)))
    with pytest.raises(DisguiseError, match="other kind"):
        check_disguise_metadata(weights, None)
