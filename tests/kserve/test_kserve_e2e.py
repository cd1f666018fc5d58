"""End-to-end: a real KServe ModelServer (KServeProcess) on 127.0.0.1 serving the default model.

One server for the module, three models: aes-256-gcm (tenants acme, globex), hpke-x25519
(sealed to a consumer key the server never holds) and plaintext (the baseline). Exactness: a
request's images are one model batch, decoded and preprocessed as the local reference does, so
the reference run on the same images as one batch must match BIT-EXACTLY.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("kserve") is None:  # not imported here: the server process does
    pytest.skip("kserve is not installed (the `kserve` extra)", allow_module_level=True)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handlers"))

from fl_serving_helpers import (BYO, BYO_TOL, Reference, assert_same_features,  # noqa: E402
                                byo_reference, face_pngs, file_kek, keyset, make_registry,
                                pedestrian_pngs, user_models)

from featurelock.attack_harness.targets import HttpTarget  # noqa: E402
from featurelock.handlers.client import EndpointClient  # noqa: E402
from featurelock.handlers.kserve_server import KServeProcess  # noqa: E402
from featurelock.handlers.packaging import (check_model, resolve_model,  # noqa: E402
                                            serving_config)
from featurelock.handlers.stack import _consumer_keyset  # noqa: E402
from featurelock.handlers.tenants_cli import add_tenant  # noqa: E402
from featurelock.middleware import Context, FeatureReader, kek_from_uri  # noqa: E402
from featurelock.middleware.errors import DecryptionError  # noqa: E402
from featurelock.middleware.storage import load_keyset  # noqa: E402
from featurelock.models.profiles import InputProfile  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

AES, HPKE, PLAIN = "ks-aes", "ks-hpke", "ks-plain"
UNAUTHENTICATED = {"error": "tenant credentials required", "status": 401}
FORBIDDEN = {"error": "tenant not authorized", "status": 403}
BAD_IMAGE = {"error": "input is not a valid image", "status": 400}
TOO_LARGE = {"error": "request too large", "status": 413}


class Stack:
    pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    import torch

    from featurelock.export.bundle import export_model
    from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model

    root = tmp_path_factory.mktemp("kserve")
    s = Stack()
    torch.manual_seed(0)  # the model export_default_model serves, TorchScript only (faster)
    export_model(load_model("reid-compact", pretrained=DEFAULT_WEIGHTS.is_file()),
                 root / "export", formats_=("torchscript",), batch_sizes=(1, 2))
    source = resolve_model(root / "export")
    s.export = root / "export"
    s.ref = Reference(source.model_file, "torchscript", InputProfile.from_dict(source.profile))
    s.kek = file_kek(root)
    s.reg = root / "reg-aes"
    s.tokens = make_registry(s.reg, "aes-256-gcm", s.kek)
    consumer = _consumer_keyset(root, "hpke-x25519", "acme", s.kek)
    s.hpke_token = add_tenant(root / "reg-hpke", "acme", "hpke-x25519", s.kek,
                              public_key=f"{consumer}.pub")
    s.hpke_reader = load_keyset(consumer, kek_from_uri(s.kek), "acme")
    models = [
        (serving_config(source, "aes-256-gcm", AES, "1"), source.model_file),
        (serving_config(source, "hpke-x25519", HPKE, "1",
                        {"key_registry_env": "FL_REG_HPKE"}), source.model_file),
        (serving_config(source, "plaintext", PLAIN, "1"), source.model_file),
    ]
    # Bring your own model: a user's 512-d re-ID TorchScript and 128-d face ONNX files.
    s.byo = user_models(root / "byo")
    for key, profile in BYO.items():
        byo = resolve_model(s.byo[key], profile=profile)
        models.append((serving_config(byo, "aes-256-gcm", f"ks-byo-{key}", "1",
                                      {"output_dim": check_model(byo)}), byo.model_file))
    env = {"FEATURELOCK_KEY_REGISTRY": str(s.reg), "FL_REG_HPKE": str(root / "reg-hpke"),
           "FEATURELOCK_KEK": s.kek}
    s.images = pedestrian_pngs(4)
    with KServeProcess(models, env=env, workdir=root / "server") as ks:
        s.ks = ks
        yield s


# -- helpers ---------------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def creds(s, tenant="acme", token=None):
    return {"X-Featurelock-Tenant": tenant,
            "X-Featurelock-Token": s.tokens[tenant] if token is None else token}


def post(s, path: str, body, headers=None, content_type="application/json"):
    """(status, parsed JSON or raw bytes) of a POST; any body bytes are kept in s.bodies."""
    conn = http.client.HTTPConnection("127.0.0.1", s.ks.port, timeout=30)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"Content-Type": content_type,
                                                    **(headers or {})})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    s.__dict__.setdefault("bodies", []).append((path, raw))
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw


def v1(s, model, images, headers):
    return post(s, f"/v1/models/{model}:predict",
                {"instances": [{"image": {"b64": b64(i)}} for i in images]}, headers)


def v2(s, model, images, headers, **extra):
    return post(s, f"/v2/models/{model}/infer",
                {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(images)],
                             "data": [b64(i) for i in images]}], **extra}, headers)


def read_all(envelopes, reader_keyset, model, tenant="acme"):
    reader = FeatureReader(reader_keyset)
    return np.concatenate([reader.read(base64.b64decode(e), Context(model, "1", tenant))
                           for e in envelopes])


# -- round trips -----------------------------------------------------------------------------
def test_v1_decrypts_to_local_inference(stack):
    images = stack.images[:2]
    # both instance forms: {"image": {"b64": ...}} and {"image": "<b64>"}
    status, doc = post(stack, f"/v1/models/{AES}:predict",
                       {"instances": [{"image": {"b64": b64(images[0])}},
                                      {"image": b64(images[1])}]}, creds(stack))
    assert status == 200 and set(doc) == {"predictions"} and len(doc["predictions"]) == 2
    envelopes = [p["envelope"] for p in doc["predictions"]]
    assert all(base64.b64decode(e)[:3] == b"FLK" for e in envelopes)
    got = read_all(envelopes, keyset(stack.reg, stack.kek, "acme"), AES)
    assert got.dtype == np.float32
    assert_same_features(got, stack.ref(images))


def test_v2_decrypts_to_local_inference_and_has_a_response_id(stack):
    images = stack.images[1:3]
    status, doc = v2(stack, AES, images, creds(stack))
    assert status == 200 and doc["id"] and doc["model_name"] == AES
    (out,) = doc["outputs"]
    assert out["name"] == "envelope" and out["datatype"] == "BYTES" and out["shape"] == [2]
    got = read_all(out["data"], keyset(stack.reg, stack.kek, "acme"), AES)
    assert_same_features(got, stack.ref(images))
    status, doc = v2(stack, AES, images[:1], creds(stack), id="req-42")
    assert status == 200 and doc["id"] == "req-42"


@pytest.mark.parametrize("key", BYO)
def test_user_models_decrypt_to_local_inference(stack, key):
    """Bring your own model on KServe: one v1 request of two images decrypts to local inference
    of the same file under its profile (BYO_TOL)."""
    images = face_pngs(2) if key == "face128" else stack.images[:2]
    status, doc = v1(stack, f"ks-byo-{key}", images, creds(stack))
    assert status == 200
    got = read_all([p["envelope"] for p in doc["predictions"]],
                   keyset(stack.reg, stack.kek, "acme"), f"ks-byo-{key}")
    assert got.shape == (2, 512 if key == "reid512" else 128)
    np.testing.assert_allclose(got, byo_reference(stack.byo, key)(images), rtol=0, atol=BYO_TOL)


@pytest.mark.parametrize("protocol", ["kserve-v1", "kserve-v2"])
def test_sealed_scheme_through_the_client(stack, protocol):
    client = EndpointClient(stack.ks.url, HPKE, "acme", stack.hpke_token, None,
                            protocol=protocol)
    r = client.embed(stack.images[0])
    assert r.status == 200 and r.content_type == "application/octet-stream"
    assert_same_features(client.read(r, stack.hpke_reader),
                                  stack.ref(stack.images[:1]))
    with pytest.raises(DecryptionError):  # the registry's keyset holds only the public half
        client.read(r, keyset(stack.reg, stack.kek, "acme"))


@pytest.mark.parametrize("protocol", ["kserve-v1", "kserve-v2"])
def test_aes_through_the_client_and_tenant_isolation(stack, protocol):
    client = EndpointClient(stack.ks.url, AES, "acme", stack.tokens["acme"], None,
                            protocol=protocol)
    r = client.embed(stack.images[3])
    assert_same_features(client.read(r, keyset(stack.reg, stack.kek, "acme")),
                                  stack.ref(stack.images[3:4]))
    with pytest.raises(DecryptionError):
        client.read(r, keyset(stack.reg, stack.kek, "globex"))


def test_plaintext_model_answers_features(stack):
    images = stack.images[:2]
    expected = stack.ref(images)
    status, doc = v1(stack, PLAIN, images, creds(stack))
    assert status == 200
    got = np.asarray([p["features"] for p in doc["predictions"]], dtype=np.float32)
    assert_same_features(got, expected)
    status, doc = v2(stack, PLAIN, images, creds(stack))
    (out,) = doc["outputs"]
    assert out["name"] == "features" and out["datatype"] == "FP32"
    assert out["shape"] == list(expected.shape)
    assert_same_features(np.asarray(out["data"], np.float32).reshape(out["shape"]),
                                  expected)
    status, _ = v1(stack, PLAIN, images[:1], {})  # plaintext models authenticate too
    assert status == 401


# -- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize("send", [v1, v2])
def test_credentials(stack, send):
    good = stack.images[:1]
    assert send(stack, AES, good, {}) == (401, UNAUTHENTICATED)
    assert send(stack, AES, good, {"X-Featurelock-Tenant": "acme"}) == (401, UNAUTHENTICATED)
    assert send(stack, AES, good, creds(stack, token="x" * 43)) == (403, FORBIDDEN)
    assert send(stack, AES, good, creds(stack, token=stack.tokens["globex"])) == (403, FORBIDDEN)
    assert send(stack, AES, good, {"X-Featurelock-Tenant": "nobody",
                                   "X-Featurelock-Token": stack.tokens["acme"]}) == (403, FORBIDDEN)


def test_one_bad_image_refuses_the_whole_request(stack):
    good = stack.images[0]
    for send in (v1, v2):
        assert send(stack, AES, [good, b"not an image"], creds(stack)) == (400, BAD_IMAGE)
        assert send(stack, AES, [good, good[: len(good) // 2]], creds(stack)) == (400, BAD_IMAGE)
    # and nothing of the good image came back: the bodies are the fixed message only


@pytest.mark.parametrize("path, body, content_type, status", [
    (f"/v1/models/{AES}:predict", {"instances": [{"image": {"b64": "***"}}]}, None, 400),
    (f"/v1/models/{AES}:predict", {"instances": []}, None, 400),
    (f"/v1/models/{AES}:predict", {"instances": [{"img": "aGk="}]}, None, 400),
    (f"/v1/models/{AES}:predict", {"instances": [{"image": "aGk="}], "extra": 1}, None, 400),
    (f"/v1/models/{AES}:predict", [1, 2], None, 400),
    (f"/v1/models/{AES}:predict", b'{"instances": ', None, 400),
    (f"/v1/models/{AES}:predict", b"\x89PNG....", "image/png", 415),
    (f"/v1/models/{AES}:predict", {"instances": [{"image": "aGk="}] * 65}, None, 413),
    (f"/v2/models/{AES}/infer", {"inputs": [{"name": "image", "datatype": "BYTES",
                                             "shape": [2], "data": ["aGk="]}]}, None, 400),
    (f"/v2/models/{AES}/infer", {"inputs": [{"name": "pixels", "datatype": "BYTES",
                                             "shape": [1], "data": ["aGk="]}]}, None, 400),
    (f"/v2/models/{AES}/infer", {"inputs": [{"name": "image", "datatype": "FP32",
                                             "shape": [1], "data": [1.0]}]}, None, 400),
    (f"/v2/models/{AES}/infer", {"inputs": "nope"}, None, 400),
    (f"/v2/models/{AES}/infer", b"{not json", None, 400),
])
def test_malformed_requests_get_fixed_4xx(stack, path, body, content_type, status):
    got, doc = post(stack, path, body, creds(stack), content_type or "application/json")
    assert got == status
    assert isinstance(doc, dict) and set(doc) == {"error", "status"} and doc["status"] == status
    assert doc["error"] in (BAD_IMAGE["error"], TOO_LARGE["error"],
                            'send image bytes or JSON {"image": base64}')


def test_oversized_body_is_refused_before_reading_it(stack):
    big = {"instances": [{"image": "A" * (12 * 1024 * 1024)}]}
    try:
        status, doc = post(stack, f"/v1/models/{AES}:predict", big, creds(stack))
    except (ConnectionError, http.client.HTTPException):
        return  # the server answered 413 and closed while the client was still sending
    assert (status, doc) == (413, TOO_LARGE)


def test_oversized_chunked_body_is_refused_while_reading(stack):
    # No Content-Length: the limit is counted on the bytes as they arrive.
    conn = http.client.HTTPConnection("127.0.0.1", stack.ks.port, timeout=30)
    chunks = (b'{"instances": [{"image": "' if i == 0 else b"A" * (1 << 20) for i in range(14))
    try:
        conn.request("POST", f"/v1/models/{AES}:predict", body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/json", **creds(stack)})
        resp = conn.getresponse()
        assert resp.status == 413 and json.loads(resp.read()) == TOO_LARGE
    except (ConnectionError, http.client.HTTPException):
        pass  # answered and closed while the client was still sending
    finally:
        conn.close()
    assert v1(stack, AES, stack.images[:1], creds(stack))[0] == 200


def test_explain_and_repository_changes_are_not_served(stack):
    body = {"instances": [{"image": {"b64": b64(stack.images[0])}}]}
    for model in (AES, PLAIN):
        status, doc = post(stack, f"/v1/models/{model}:explain", body, creds(stack))
        assert (status, doc) == (405, {"error": "only predictions are served", "status": 405})
    for action in ("unload", "load"):
        status, _ = post(stack, f"/v2/repository/models/{AES}/{action}", {}, {})
        assert status == 405
    assert v1(stack, AES, stack.images[:1], creds(stack))[0] == 200  # still loaded


def test_no_plaintext_features_in_any_encrypted_response(stack):
    # Runs after the tests above (file order): every body any of them received from the
    # encrypted models, plus fresh ones, must hold neither feature values nor their bytes.
    for send in (v1, v2):
        send(stack, AES, stack.images, creds(stack))
        send(stack, HPKE, stack.images[:1], {"X-Featurelock-Tenant": "acme",
                                             "X-Featurelock-Token": stack.hpke_token})
    features = stack.ref(stack.images)
    needles = [row.tobytes()[:16] for row in features]
    texts = {f"{x:.6f}"[:8] for x in features[:, :4].ravel()}
    checked = 0
    for path, raw in stack.bodies:
        if PLAIN in path:
            continue
        checked += 1
        assert b"features" not in raw and b"Traceback" not in raw
        blobs = [raw]
        try:
            doc = json.loads(raw)
            for p in doc.get("predictions", []):
                blobs.append(base64.b64decode(p["envelope"]))
            for out in doc.get("outputs", []):
                blobs += [base64.b64decode(d) for d in out["data"]]
        except (ValueError, AttributeError):
            pass
        for blob in blobs:
            assert not any(n in blob for n in needles)
        assert not any(t.encode() in raw for t in texts)
    assert checked >= 20


# -- operations ------------------------------------------------------------------------------
def _metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_featurelock_series_on_kserve_metrics(stack):
    v1(stack, AES, stack.images[:1], creds(stack))
    v1(stack, AES, stack.images[:1], {})
    text = http.client.HTTPConnection("127.0.0.1", stack.ks.port, timeout=10)
    text.request("GET", "/metrics")
    body = text.getresponse().read().decode()
    base = {"model": AES, "scheme": "aes-256-gcm"}
    assert _metric(body, "featurelock_requests_total", outcome="ok", **base) >= 1
    assert _metric(body, "featurelock_requests_total", outcome="unauthenticated", **base) >= 1
    assert _metric(body, "featurelock_requests_total", outcome="bad_input", **base) >= 1
    for stage in ("decode", "preprocess", "inference", "encrypt", "handler"):
        assert _metric(body, "featurelock_stage_duration_seconds_count", stage=stage, **base) >= 1
    assert _metric(body, "featurelock_response_bytes_total", **base) > 0
    assert _metric(body, "featurelock_key_registry_generation", model=AES) >= 1
    assert _metric(body, "featurelock_requests_total", model=HPKE, scheme="hpke-x25519",
                   outcome="ok") >= 1


def test_new_tenant_is_served_live(stack):
    token = add_tenant(stack.reg, "initech", "aes-256-gcm", stack.kek)
    headers = {"X-Featurelock-Tenant": "initech", "X-Featurelock-Token": token}
    deadline = time.monotonic() + 15
    while True:
        status, doc = v1(stack, AES, stack.images[:1], headers)
        if status == 200 or time.monotonic() > deadline:
            break
        assert status == 403
        time.sleep(0.2)
    assert status == 200
    got = read_all([doc["predictions"][0]["envelope"]],
                   keyset(stack.reg, stack.kek, "initech"), AES, "initech")
    assert_same_features(got, stack.ref(stack.images[:1]))


def test_scan_target_over_kserve_urls(stack):
    import io

    from PIL import Image

    images = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))
                       for b in stack.images[:2]])
    for route in ("/v1/models/{}:predict", "/v2/models/{}/infer"):
        plain = HttpTarget(stack.ks.url + route.format(PLAIN), tenant="acme",
                           token=stack.tokens["acme"], inference_key=None, workers=1)
        sealed = HttpTarget(stack.ks.url + route.format(AES), tenant="acme",
                            token=stack.tokens["acme"], inference_key=None, workers=1)
        try:
            rows = plain.query(images)
            assert plain.scheme == "plaintext"
            # one image per request: the reference at batch 1 too
            assert_same_features(np.stack(rows), np.concatenate(
                [stack.ref([b]) for b in stack.images[:2]]))
            envelopes = sealed.query(images)
            assert sealed.scheme == "aes-256-gcm"
            assert all(isinstance(e, bytes) and e[:3] == b"FLK" for e in envelopes)
        finally:
            plain.close()
            sealed.close()


def test_refuses_to_start_without_its_keys(stack, tmp_path):
    # The one-model command line the ServingRuntime runs, with no KEK: exit 2, one line.
    import os
    import subprocess

    env = {**os.environ, "FEATURELOCK_KEY_REGISTRY": str(stack.reg), "FEATURELOCK_KEK": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "featurelock.handlers.kserve_server", "--model-dir",
         str(stack.export), "--scheme", "aes-256-gcm", "--name", "x",
         "--port", "9"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "kserve_server: no key-encryption key: $FEATURELOCK_KEK is not set")
    assert "Traceback" not in proc.stderr + proc.stdout


def test_loopback_only_and_no_secrets_in_logs(stack):
    port = f"{stack.ks.port:04X}"
    listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[1].endswith(":" + port) and line.split()[3] == "0A"]
    assert listening and all(f[1] == f"0100007F:{port}" for f in listening)
    tcp6 = Path("/proc/net/tcp6")
    if tcp6.exists():
        assert not any(line.split()[1].endswith(":" + port) and line.split()[3] == "0A"
                       for line in tcp6.read_text().splitlines()[1:])
    logs = stack.ks.logs()
    assert "featurelock: serving ks-aes" in logs
    for token in (*stack.tokens.values(), stack.hpke_token):
        assert token not in logs
    kek_b64 = Path(stack.kek.removeprefix("file:")).read_text().strip()
    assert kek_b64 not in logs
    assert not re.search(r"Traceback[\s\S]*featurelock\.middleware\.errors", logs)


# -- credentials before the body; v2 binary tensors (issue 22) --------------------------------
def _binary(images, **change):
    """A v2 binary-tensor request's (body, headers); `change` breaks one part of it."""
    from featurelock.handlers.kserve_protocol import client_binary_request

    body, headers = client_binary_request(images)
    split = int(headers["Inference-Header-Content-Length"])
    doc = json.loads(body[:split])
    doc["inputs"][0].update(change.pop("tensor", {}))
    head = json.dumps(doc).encode()
    body = head + body[split:] + change.pop("tail", b"")
    headers["Inference-Header-Content-Length"] = change.pop("json_length", str(len(head)))
    assert not change
    return body, headers


def _malformed(png: bytes) -> list[tuple[str, bytes, dict]]:
    """(path, body, headers) of requests no model can serve: bodies kserve or we must refuse."""
    v1p, v2p = f"/v1/models/{AES}:predict", f"/v2/models/{AES}/infer"
    json_ct = {"Content-Type": "application/json"}
    size = len(png) + 4
    return [
        (v1p, b'{"instances": ', json_ct),
        (v1p, b"", json_ct),
        (v1p, b"\x89PNG....", {"Content-Type": "image/png"}),
        (v2p, b"{not json", json_ct),
        (v2p, b'{"inputs": "nope"}', json_ct),
        (f"/v2/models/{AES}/versions/1/infer", b"{not json", json_ct),
        (f"/v1/models/{AES}:explain", b"[", json_ct),
        (v2p, *_binary([png], json_length="abc")),
        (v2p, *_binary([png], json_length="999999999")),
        (v2p, *_binary([png], json_length="7")),
        (v2p, *_binary([png], json_length="0")),
        (v2p, *_binary([png], tail=b"\xff\xff")),  # binary_data_size no longer matches
        (v2p, *_binary([png], tensor={"parameters": {"binary_data_size": size + 100}})),
        (v2p, *_binary([png], tensor={"datatype": "FP32"})),
        (v2p, *_binary([png], tensor={"shape": [2]})),
        (v2p, *_binary([png], tensor={"shape": "1"})),
        (v2p, *_binary([png], tensor={"name": "pixels"})),
        (v2p, *_binary([png[:-5]], tensor={"parameters": {"binary_data_size": size}})),
        (v2p, *_binary([b"\xff" * 64])),  # well-formed tensor, not an image
    ]


def test_no_credentials_is_401_before_the_body_is_parsed(stack):
    """Every malformed body, binary v2 included, without credentials: 401; with a wrong
    token: 403. Never the parser's 400, never a 5xx."""
    for path, body, headers in _malformed(stack.images[0]):
        got = post(stack, path, body, headers, headers.get("Content-Type", "application/json"))
        assert got == (401, UNAUTHENTICATED), (path, body[:60])
        wrong = {**headers, **creds(stack, token="x" * 43)}
        assert post(stack, path, body, wrong, headers.get("Content-Type"))[0] == 403


def test_malformed_bodies_with_credentials_are_4xx_with_a_reason(stack):
    for path, body, headers in _malformed(stack.images[0]):
        status, doc = post(stack, path, body, {**headers, **creds(stack)},
                           headers.get("Content-Type"))
        assert 400 <= status < 500 and isinstance(doc, dict), (path, body[:60], status, doc)
        assert doc["status"] == status and doc["error"]
        if "Inference-Header-Content-Length" in headers and status == 400 \
                and body[-64:] != b"\xff" * 64:
            assert doc["error"].startswith("malformed v2 binary request"), doc


def test_v2_binary_tensor_png_is_served_and_decrypts(stack):
    """Two PNGs as a v2 binary BYTES tensor: the envelopes decrypt to the features the same
    server gives for the same images sent base64 in JSON (same process and batch, so the same
    arithmetic: compared exactly)."""
    images = stack.images[:2]
    body, headers = _binary(images)
    status, doc = post(stack, f"/v2/models/{AES}/infer", body, {**headers, **creds(stack)},
                       headers["Content-Type"])
    assert status == 200, doc
    (output,) = doc["outputs"]
    assert output["name"] == "envelope" and output["shape"] == [2]
    keys = keyset(stack.reg, stack.kek, "acme")
    binary = read_all(output["data"], keys, AES)
    status, doc = v2(stack, AES, images, creds(stack))
    assert status == 200
    np.testing.assert_array_equal(binary, read_all(doc["outputs"][0]["data"], keys, AES))


def test_no_5xx_and_no_traceback_over_malformed_requests(stack):
    for path, body, headers in _malformed(stack.images[0]):
        for extra in ({}, creds(stack)):
            status, _ = post(stack, path, body, {**headers, **extra}, headers.get("Content-Type"))
            assert status < 500, (path, body[:60], extra)
    time.sleep(0.2)  # the server's log lines reach the file
    logs = stack.ks.logs()
    assert "Traceback" not in logs and "Exception in ASGI" not in logs
