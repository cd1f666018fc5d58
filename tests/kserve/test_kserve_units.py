"""KServe adapter without a server: the v1/v2 wire formats, the client's wrapping, and the
predictor called in-process (kserve's Model.__call__: preprocess -> predict -> postprocess)."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from featurelock.handlers.client import EndpointClient
from featurelock.handlers.errors import BadInput, PayloadTooLarge, UnsupportedMedia
from featurelock.handlers.kserve_protocol import (KSERVE_V1, KSERVE_V2, MAX_INSTANCES,
                                                  client_request, client_result, request_path,
                                                  v1_body, v1_payloads, v2_body, v2_payloads)

B64 = base64.b64encode(b"\x89PNG fake").decode()


# -- v1 ----------------------------------------------------------------------------------------
def test_v1_both_instance_forms():
    body = {"instances": [{"image": {"b64": B64}}, {"image": B64}]}
    assert v1_payloads(body) == [{"body": {"image": B64}}] * 2


@pytest.mark.parametrize("body, error", [
    ({"instances": []}, BadInput),
    ({"instances": [{"image": B64}] * (MAX_INSTANCES + 1)}, PayloadTooLarge),
    ({}, BadInput),
    ({"instances": {"image": B64}}, BadInput),
    ({"instances": [{"image": B64}], "parameters": {}}, BadInput),
    ({"inputs": [{"image": B64}]}, BadInput),
    ({"instances": [B64]}, BadInput),
    ({"instances": [{"image": B64, "extra": 1}]}, BadInput),
    ({"instances": [{"image": {"b64": B64, "x": 1}}]}, BadInput),
    ({"instances": [{"image": {"bytes": B64}}]}, BadInput),
    ({"instances": [{"image": 42}]}, BadInput),
    ([{"image": B64}], BadInput),
    (None, BadInput),
    (b"\x89PNG raw bytes", UnsupportedMedia),
])
def test_v1_refusals(body, error):
    with pytest.raises(error):
        v1_payloads(body)


def test_v1_body():
    assert v1_body([b"FLK\x02", bytearray(b"xy")], False) == {
        "predictions": [{"envelope": base64.b64encode(b"FLK\x02").decode()},
                        {"envelope": base64.b64encode(b"xy").decode()}]}
    assert v1_body([[0.5, -1.0]], True) == {"predictions": [{"features": [0.5, -1.0]}]}


# -- v2 ----------------------------------------------------------------------------------------
def _tensor(name="image", datatype="BYTES", shape=(1,), data=(B64,)):
    return SimpleNamespace(name=name, datatype=datatype, shape=list(shape),
                           data=list(data) if isinstance(data, tuple) else data)


def test_v2_from_kserve_infer_request():
    from featurelock.handlers._kserve_import import kserve
    from kserve.protocol.rest.v2_datamodels import InferenceRequest

    doc = {"id": "r1", "inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                                   "data": [B64, B64]}]}
    request = kserve.InferRequest.from_inference_request(InferenceRequest(**doc), "m")
    assert v2_payloads(request) == [{"body": {"image": B64}}] * 2


@pytest.mark.parametrize("inputs, error", [
    ([], BadInput),
    ([_tensor(), _tensor()], BadInput),
    ([_tensor(name="input0")], BadInput),
    ([_tensor(datatype="FP32")], BadInput),
    ([_tensor(shape=(2,))], BadInput),
    ([_tensor(shape=(1, 1))], BadInput),
    ([_tensor(data="notalist")], BadInput),
    ([_tensor(shape=(0,), data=())], BadInput),
    ([_tensor(data=(b"raw",))], BadInput),
    ([_tensor(shape=(MAX_INSTANCES + 1,), data=(B64,) * (MAX_INSTANCES + 1))], PayloadTooLarge),
    ("nope", BadInput),
])
def test_v2_refusals(inputs, error):
    with pytest.raises(error):
        v2_payloads(SimpleNamespace(inputs=inputs, id=None))


def test_v2_binary_tensor_round_trip():
    from featurelock.handlers.kserve_protocol import (client_binary_request, v2_binary_as_json,
                                                      v2_binary_images)

    images = [b"\x89PNG first", b"", b"\xff" * 300]
    body, headers = client_binary_request(images, request_id="r1")
    assert v2_binary_images(body, headers["Inference-Header-Content-Length"]) == (images, "r1")
    doc = json.loads(v2_binary_as_json(images, "r1"))
    assert doc["id"] == "r1" and [base64.b64decode(d) for d in doc["inputs"][0]["data"]] == images


@pytest.mark.parametrize("cut", [1, 3, 5, 11])
def test_v2_binary_tensor_truncated_anywhere_is_malformed(cut):
    from featurelock.handlers.errors import MalformedRequest
    from featurelock.handlers.kserve_protocol import client_binary_request, v2_binary_images

    body, headers = client_binary_request([b"\x89PNG first", b"second"])
    with pytest.raises(MalformedRequest):
        v2_binary_images(body[:-cut], headers["Inference-Header-Content-Length"])


def test_v2_body_always_has_an_id():
    doc = v2_body([b"a", b"b"], False, model="m", version="1", request_id=None)
    assert doc["id"] and doc["model_name"] == "m" and doc["model_version"] == "1"
    assert doc["outputs"] == [{"name": "envelope", "datatype": "BYTES", "shape": [2],
                               "data": ["YQ==", "Yg=="]}]
    assert v2_body([b"a"], False, model="m", version="1", request_id="x")["id"] == "x"
    plain = v2_body([[1.0, 2.0], [3.0, 4.0]], True, model="m", version="1", request_id=None)
    assert plain["outputs"] == [{"name": "features", "datatype": "FP32", "shape": [2, 2],
                                 "data": [1.0, 2.0, 3.0, 4.0]}]


def test_v2_body_is_a_valid_kserve_inference_response():
    from featurelock.handlers._kserve_import import kserve  # noqa: F401
    from kserve.protocol.rest.v2_datamodels import InferenceResponse

    for doc in (v2_body([b"a"], False, model="m", version="1", request_id=None),
                v2_body([[1.0]], True, model="m", version="1", request_id=None)):
        InferenceResponse.model_validate(doc)


# -- client ------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [KSERVE_V1, KSERVE_V2])
def test_client_wraps_one_image_and_unwraps_the_answer(protocol):
    doc = json.loads(client_request(protocol, b"\x89PNG fake"))
    payloads = v1_payloads(doc) if protocol == KSERVE_V1 else v2_payloads(SimpleNamespace(
        inputs=[SimpleNamespace(**i) for i in doc["inputs"]], id=None))
    assert payloads == [{"body": {"image": B64}}]
    envelope = b"FLK\x02 envelope bytes"
    answer = v1_body([envelope], False) if protocol == KSERVE_V1 else v2_body(
        [envelope], False, model="m", version="1", request_id=None)
    assert client_result(protocol, json.dumps(answer).encode()) == (
        envelope, "application/octet-stream")
    answer = v1_body([[0.25, 1.0]], True) if protocol == KSERVE_V1 else v2_body(
        [[0.25, 1.0]], True, model="m", version="1", request_id=None)
    body, content_type = client_result(protocol, json.dumps(answer).encode())
    assert content_type == "application/json"
    assert json.loads(body) == {"features": [[0.25, 1.0]], "shape": [1, 2]}


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"predictions": []}',
                                  b'{"predictions": [{"envelope": "a"}, {"envelope": "b"}]}',
                                  b'{"predictions": [{"envelope": "***"}]}',
                                  b'{"outputs": [{"name": "other", "data": ["YQ=="]}]}',
                                  b'{"predictions": [{"features": ["x"]}]}'])
def test_client_result_refuses_anything_else(body):
    assert client_result(KSERVE_V1, body) is None
    assert client_result(KSERVE_V2, body) is None


def test_paths_and_protocol_names():
    assert request_path("torchserve", "m") == "/predictions/m"
    assert request_path(KSERVE_V1, "m") == "/v1/models/m:predict"
    assert request_path(KSERVE_V2, "m") == "/v2/models/m/infer"
    with pytest.raises(ValueError):
        EndpointClient("http://127.0.0.1:1", "m", None, None, None, protocol="grpc")
    with pytest.raises(ValueError):  # KServe answers only binary envelopes
        EndpointClient("http://127.0.0.1:1", "m", None, None, None,
                       protocol=KSERVE_V1).embed(b"x", json=True)


def test_parse_endpoint_kserve_urls():
    from featurelock.attack_harness.targets import endpoint_protocol, parse_endpoint

    assert parse_endpoint("http://127.0.0.1:8080/v1/models/reid:predict") == (
        "http://127.0.0.1:8080", "reid")
    assert parse_endpoint("http://h:1/v2/models/reid/infer") == ("http://h:1", "reid")
    assert endpoint_protocol("http://h:1/v2/models/reid/infer") == KSERVE_V2
    assert endpoint_protocol("http://h:1/v1/models/reid:predict") == KSERVE_V1
    assert endpoint_protocol("http://h:1/predictions/reid") == "torchserve"
    for bad in ("http://h:1/v1/models/reid", "http://h:1/v1/models/:predict",
                "http://h:1/v2/models/reid/ready", "http://h:1/v2/models/reid"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)


# -- the predictor, in-process -------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handlers"))
    import torch
    from fl_serving_helpers import Reference, file_kek, make_registry, pedestrian_pngs
    from prometheus_client import CollectorRegistry

    from featurelock.export.bundle import export_model
    from featurelock.handlers.kserve_model import FeaturelockKServeModel
    from featurelock.handlers.packaging import resolve_model, serving_config
    from featurelock.middleware.metrics import PrometheusMetrics
    from featurelock.models.profiles import InputProfile
    from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model

    root = tmp_path_factory.mktemp("kserve-units")
    torch.manual_seed(0)
    export_model(load_model("reid-compact", pretrained=DEFAULT_WEIGHTS.is_file()),
                 root / "export", formats_=("torchscript",), batch_sizes=(1, 2))
    source = resolve_model(root / "export")
    kek = file_kek(root)
    tokens = make_registry(root / "reg", "aes-256-gcm", kek, tenants=("acme",))
    mp = pytest.MonkeyPatch()
    mp.setenv("FEATURELOCK_KEY_REGISTRY", str(root / "reg"))
    mp.setenv("FEATURELOCK_KEK", kek)
    registry = CollectorRegistry()
    model = FeaturelockKServeModel(serving_config(source, "aes-256-gcm", "m", "1"),
                                   source.model_file, metrics=PrometheusMetrics(registry))
    assert model.load() and model.ready
    mp.undo()
    calls = []
    runner = model.pipeline.runner
    model.pipeline.runner = lambda x: calls.append(len(x)) or runner(x)
    ref = Reference(source.model_file, "torchscript", InputProfile.from_dict(source.profile))
    headers = {"x-featurelock-tenant": "acme", "x-featurelock-token": tokens["acme"],
               "accept": "application/json"}
    yield SimpleNamespace(model=model, calls=calls, registry=registry, headers=headers,
                          images=pedestrian_pngs(2), ref=ref, root=root, kek=kek)
    model.pipeline.registry.close()


def _call(s, body, headers=None, verb=None):
    from featurelock.handlers._kserve_import import kserve  # noqa: F401
    from kserve.model import InferenceVerb

    verb = verb or InferenceVerb.PREDICT
    return asyncio.run(s.model(body, headers=s.headers if headers is None else headers,
                               verb=verb))[0]


def _v1(images):
    return {"instances": [{"image": base64.b64encode(i).decode()} for i in images]}


def _count(s, outcome):
    return s.registry.get_sample_value("featurelock_requests_total",
                                       {"model": "m", "scheme": "aes-256-gcm", "outcome": outcome})


def test_predictor_in_process_round_trip(served):
    from fl_serving_helpers import assert_same_features, keyset

    from featurelock.middleware import Context, FeatureReader

    doc = _call(served, _v1(served.images))  # Accept: application/json is ignored: binary
    reader = FeatureReader(keyset(served.root / "reg", served.kek, "acme"))
    got = np.concatenate([reader.read(base64.b64decode(p["envelope"]), Context("m", "1", "acme"))
                          for p in doc["predictions"]])
    assert_same_features(got, served.ref(served.images))


def test_one_bad_image_refuses_all_and_runs_no_inference(served):
    from featurelock.handlers.kserve_model import RefusedRequest

    before_calls, before_bad = len(served.calls), _count(served, "bad_input")
    with pytest.raises(RefusedRequest) as info:
        _call(served, _v1([served.images[0], b"not an image", served.images[1]]))
    assert (info.value.status_code, info.value.message) == (400, "input is not a valid image")
    assert len(served.calls) == before_calls  # nothing reached the model
    assert _count(served, "bad_input") == before_bad + 3  # each image counted as refused
    with pytest.raises(RefusedRequest) as info:
        _call(served, _v1(served.images), headers={})
    assert info.value.status_code == 401 and json.loads(info.value.body) == {
        "error": "tenant credentials required", "status": 401}
    assert len(served.calls) == before_calls


def test_explain_is_refused(served):
    from featurelock.handlers.kserve_model import RefusedRequest
    from kserve.model import InferenceVerb  # after kserve_model: imported through the shield

    with pytest.raises(RefusedRequest) as info:
        _call(served, _v1(served.images[:1]), verb=InferenceVerb.EXPLAIN)
    assert info.value.status_code == 405


def test_encryption_failure_fails_closed(served, monkeypatch):
    from featurelock.handlers.kserve_model import RefusedRequest
    from featurelock.middleware import FeatureProtector
    from featurelock.middleware.errors import EncryptionError

    def broken(self, *a, **k):
        raise EncryptionError("secret detail that must not reach a client")

    monkeypatch.setattr(FeatureProtector, "protect", broken)
    with pytest.raises(RefusedRequest) as info:
        _call(served, _v1(served.images))
    assert (info.value.status_code, info.value.message) == (500, "features could not be protected")
    assert "secret" not in info.value.body
    assert _count(served, "encrypt_failed") >= 2
