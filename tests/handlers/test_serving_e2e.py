"""End-to-end: a real TorchServe on 127.0.0.1 serving every scheme, TorchScript and ONNX.

One server per module (13 models: every scheme, plaintext, crafter, disguised inputs).
Exactness: a request served alone runs at batch 1 with the same file, decoder and
preprocessing as the local reference, so features must be BIT-EXACT.
When concurrent requests are batched, the conv kernels see a different batch size and may
reorder float sums: there we assert max |diff| <= 1e-5 on unit vectors (and that every
response is closest to its own image's reference).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import featurelock.models
from featurelock.handlers.client import EndpointClient
from featurelock.handlers.packaging import build_mar, check_no_keys, resolve_model
from featurelock.handlers.server import TorchServeProcess
from featurelock.middleware import FeatureReader, Keyset
from featurelock.middleware.cli import main as featurelock_cli
from featurelock.middleware.disguise import DisguiseSpec
from featurelock.middleware.errors import DecryptionError
from featurelock.models.profiles import InputProfile

from fl_serving_helpers import (SCHEMES, Reference, export_default_model, file_kek, keyset,
                                make_registry, pedestrian_pngs, png)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

BACKENDS = ("torchscript", "onnx")
SHORT = {"torchscript": "ts", "onnx": "onnx"}
BATCH_TOL = 1e-5
CRAFTNET = Path(featurelock.models.__file__).parent / "weights" / "crafter" / "craft-beta0.3.pt"


def reg_env(scheme: str) -> str:
    return "FL_REG_" + scheme.replace("-", "_").upper()


class Stack:
    pass


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    s = Stack()
    s.export = export_default_model(root / "export")
    s.kek = file_kek(root)
    s.regs, s.tokens, env = {}, {}, {}
    for scheme in SCHEMES:
        s.regs[scheme] = root / f"reg-{scheme}"
        s.tokens[scheme] = make_registry(s.regs[scheme], scheme, s.kek)
        env[reg_env(scheme)] = str(s.regs[scheme])
    env["FEATURELOCK_KEK"] = s.kek
    store = root / "store"
    s.refs = {}
    for backend in BACKENDS:
        source = resolve_model(root / "export", backend)
        s.refs[backend] = Reference(source.model_file, backend, InputProfile.from_dict(source.profile))
        for scheme in (*SCHEMES, "plaintext"):
            registry = reg_env("aes-256-gcm" if scheme == "plaintext" else scheme)
            build_mar(source, scheme, f"{SHORT[backend]}-{scheme}", "1", store,
                      serving={"key_registry_env": registry}, batchSize=8, maxBatchDelay=50)
    # A model whose output is float16: shufflebits cannot encrypt it -> must fail closed.
    fp16 = root / "fp16.pt"
    module = torch.jit.load(str(s.export.files["torchscript"]))

    class Half(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = module

        def forward(self, x):
            return self.m(x).half()

    torch.jit.save(torch.jit.trace(Half(), torch.zeros(1, 3, 128, 64)), str(fp16))
    build_mar(resolve_model(fp16, profile="reid-compact"), "shufflebits", "ts-fp16-shufflebits",
              "1", store, serving={"key_registry_env": reg_env("shufflebits")})
    # Crafter: readable crafted features, the committed CraftNet travelling in the .mar.
    s.craftnet = CRAFTNET
    build_mar(resolve_model(root / "export", "torchscript"), "crafter", "ts-crafter", "1", store,
              serving={"key_registry_env": reg_env("aes-256-gcm"), "crafter_file": str(CRAFTNET),
                       "beta": 0.3})
    # A model for disguised inputs, packaged from training's metadata by the CLI. The default
    # weights stand in for disguise-trained ones: these tests check the path, not utility.
    s.disguiser = Keyset.generate("disguise").disguiser(
        DisguiseSpec(128, 64, 3, 8, "rmt", noise=0.05))
    meta = root / "reid.pt.disguise.json"
    meta.write_text(json.dumps({"spec": s.disguiser.spec.to_dict(), "key_id": 1,
                                "key_fingerprint": s.disguiser.fingerprint}))
    assert featurelock_cli(["package", "--model-dir", str(root / "export"), "--name",
                            "ts-disguised", "--out", str(store), "--key-registry-env",
                            reg_env("aes-256-gcm"), "--disguise-metadata", str(meta)]) == 0
    s.store = store
    s.images = pedestrian_pngs(16)
    with TorchServeProcess(store, env=env, startup_timeout=240) as ts:
        s.ts = ts
        yield s


def client(s, model, scheme="aes-256-gcm", tenant="acme", token=None, **kw) -> EndpointClient:
    token = s.tokens[scheme][tenant] if token is None else token
    return EndpointClient(s.ts.inference_url, model, tenant, token, s.ts.inference_key, **kw)


# -- every scheme, both backends ----------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_scheme_roundtrip_bit_exact(stack, backend, scheme):
    c = client(stack, f"{SHORT[backend]}-{scheme}", scheme)
    ks = keyset(stack.regs[scheme], stack.kek, "acme")
    for image in stack.images[:3]:
        r = c.embed(image)
        assert r.status == 200 and r.content_type == "application/octet-stream"
        assert r.body[:3] == b"FLK"
        got = c.read(r, ks)
        expected = stack.refs[backend]([image])
        assert got.shape == (1, expected.shape[1]) and got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_plaintext_mode_returns_raw_features(stack, backend):
    c = client(stack, f"{SHORT[backend]}-plaintext")
    r = c.embed(stack.images[0])
    assert r.status == 200 and r.content_type.startswith("application/json")
    doc = r.json()
    got = np.asarray(doc["features"], dtype=np.float32)
    assert doc["shape"] == list(got.shape)
    np.testing.assert_array_equal(got, stack.refs[backend]([stack.images[0]]))
    assert "plaintext" in stack.ts.logs().lower()  # the WARNING at initialize


def test_crafter_serves_crafted_marked_features_and_still_authenticates(stack):
    from featurelock.models.crafter.files import load_craftnet

    c = client(stack, "ts-crafter")
    r = c.embed(stack.images[0])
    assert r.status == 200 and r.content_type.startswith("application/json")
    doc = r.json()
    assert doc["scheme"] == "crafter" and doc["beta"] == 0.3
    got = np.asarray(doc["features"], dtype=np.float32)
    plain = stack.refs["torchscript"]([stack.images[0]])
    with torch.inference_mode():
        expected = load_craftnet(stack.craftnet)(torch.from_numpy(plain)).numpy()
    assert got.shape == plain.shape and np.abs(got - expected).max() <= BATCH_TOL
    assert np.abs(got - plain).max() > 100 * BATCH_TOL  # crafted, not the plaintext
    assert client(stack, "ts-crafter", token="wrong-token").embed(stack.images[0]).status == 403


def test_disguised_model_takes_disguised_png_only_and_encrypts(stack):
    from featurelock.models.synthetic import make_pedestrians

    image = make_pedestrians(1, 1, seed=7).images[0]
    disguised = stack.disguiser.disguise(image)  # noise is fresh: disguise once, compare that
    ks = keyset(stack.regs["aes-256-gcm"], stack.kek, "acme")
    plain_client = client(stack, "ts-disguised")
    r = plain_client.embed_image(disguised)
    assert r.status == 200 and r.body[:3] == b"FLK"
    np.testing.assert_array_equal(plain_client.read(r, ks),
                                  stack.refs["torchscript"]([png(disguised)]))
    # The SDK disguises before sending: a disguised image of the profile's size is accepted.
    r = client(stack, "ts-disguised", disguiser=stack.disguiser).embed_image(image)
    assert r.status == 200 and plain_client.read(r, ks).shape == (1, 256)
    # JPEG would destroy the disguise, and a resize would misplace its blocks: both refused.
    jpeg = io.BytesIO()
    Image.fromarray(disguised).save(jpeg, "JPEG")
    assert plain_client.embed(jpeg.getvalue()).status == 400
    assert plain_client.embed_image(np.ascontiguousarray(disguised[::2, ::2])).status == 400


def test_json_request_and_json_envelope(stack):
    c = client(stack, "ts-aes-256-gcm")
    r = c.embed(stack.images[1], json=True)
    assert r.status == 200 and r.content_type.startswith("application/json")
    doc = r.json()
    assert doc["scheme"] == "aes-256-gcm" and doc["shape"] == [1, 256]
    got = FeatureReader(keyset(stack.regs["aes-256-gcm"], stack.kek, "acme")).read(doc, c.context)
    np.testing.assert_array_equal(got, stack.refs["torchscript"]([stack.images[1]]))
    # binary body, JSON envelope asked for with Accept only
    r = c.embed(stack.images[1], accept_json=True)
    assert r.content_type.startswith("application/json") and json.loads(r.body)["featurelock"] == 2


# -- batching -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_requests_batched_each_gets_its_own_answer(stack, backend):
    model = f"{SHORT[backend]}-shufflebits-otp"
    c = client(stack, model, "shufflebits-otp")
    ks = keyset(stack.regs["shufflebits-otp"], stack.kek, "acme")
    images = stack.images
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(c.embed, images))
    assert all(r.status == 200 for r in responses)
    got = np.concatenate([c.read(r, ks) for r in responses])
    expected = stack.refs[backend](images)
    assert np.abs(got - expected).max() <= BATCH_TOL
    nearest = np.argmax(got @ expected.T, axis=1)
    assert list(nearest) == list(range(len(images)))
    sizes = [int(m) for m in re.findall(r"featurelock batch: (\d+) requests", stack.ts.logs())]
    assert max(sizes) > 1, "requests were never batched"


def test_one_bad_item_in_a_batch_fails_alone(stack):
    c = client(stack, "ts-aes-256-gcm")
    ks = keyset(stack.regs["aes-256-gcm"], stack.kek, "acme")
    bodies = stack.images[:7] + [b"not an image at all"]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(c.embed, bodies))
    assert responses[-1].status == 400
    for image, r in zip(bodies[:7], responses[:7]):
        assert r.status == 200
        assert np.abs(c.read(r, ks) - stack.refs["torchscript"]([image])).max() <= BATCH_TOL


# -- bad input ------------------------------------------------------------------------------
def _bad_inputs(images):
    good = images[0]
    big = np.zeros((4100, 4100, 3), np.uint8)  # 16.8 Mpx > max_pixels (16 M)
    return {
        "not-an-image": (b"hello world, definitely not a png", 400),
        "truncated-png": (good[: len(good) // 2], 400),
        "empty-body": (b"", 400),
        "over-handler-limit": (b"\x89PNG" + b"\0" * (9 * 1024 * 1024), 413),
        "over-frontend-limit": (b"\0" * (11 * 1024 * 1024), 413),
        "too-many-pixels": (png(big), 413),
    }


@pytest.mark.parametrize("case", ["not-an-image", "truncated-png", "empty-body",
                                  "over-handler-limit", "over-frontend-limit", "too-many-pixels"])
def test_bad_input_gets_4xx_and_worker_keeps_serving(stack, case):
    body, status = _bad_inputs(stack.images)[case]
    c = client(stack, "ts-aes-256-gcm")
    r = c.embed(body)
    assert r.status == status
    assert b"Traceback" not in r.body and b"Error" not in r.body and b"/tmp" not in r.body
    if case != "over-frontend-limit":  # that one is answered by TorchServe's frontend
        assert r.json() == {"error": r.json()["error"], "status": status}
        assert r.json()["error"] in ("input is not a valid image", "request too large")
    assert c.embed(stack.images[0]).status == 200


@pytest.mark.parametrize("doc", [b'{"image": "***not base64***"}', b'{"images": ["aGk="]}',
                                 b'{"image": ', b'[1, 2]', b'{"image": ""}'])
def test_bad_json_bodies(stack, doc):
    c = client(stack, "ts-aes-256-gcm")
    r = c.embed(doc, headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["status"] == 400
    assert c.embed(stack.images[0]).status == 200


# -- tenants --------------------------------------------------------------------------------
def test_missing_credentials_401(stack):
    base = client(stack, "ts-aes-256-gcm")
    for tenant, token in ((None, None), ("acme", None), (None, base.token)):
        c = EndpointClient(stack.ts.inference_url, "ts-aes-256-gcm", tenant, token,
                           stack.ts.inference_key)
        r = c.embed(stack.images[0])
        assert r.status == 401 and r.json() == {"error": "tenant credentials required", "status": 401}


def test_wrong_token_or_unknown_tenant_403(stack):
    tokens = stack.tokens["aes-256-gcm"]
    for tenant, token in (("acme", "x" * 43), ("acme", tokens["globex"]), ("nobody", tokens["acme"])):
        c = EndpointClient(stack.ts.inference_url, "ts-aes-256-gcm", tenant, token,
                           stack.ts.inference_key)
        r = c.embed(stack.images[0])
        assert r.status == 403 and b"FLK" not in r.body and b"features" not in r.body


def test_torchserve_token_still_required(stack):
    c = client(stack, "ts-aes-256-gcm")
    c.inference_key = None
    r = c.embed(stack.images[0])
    assert r.status in (400, 401) and b"FLK" not in r.body


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tenant_a_response_does_not_decrypt_for_tenant_b(stack, scheme):
    model = f"ts-{scheme}"
    acme = client(stack, model, scheme, "acme")
    r = acme.embed(stack.images[0])
    assert r.status == 200
    globex_keys = keyset(stack.regs[scheme], stack.kek, "globex")
    with pytest.raises(DecryptionError):
        acme.read(r, globex_keys)  # globex's keys, acme's context
    globex = client(stack, model, scheme, "globex")
    with pytest.raises(DecryptionError):
        globex.read(r, globex_keys)
    with pytest.raises(DecryptionError):  # acme's keys but the wrong tenant in the context
        globex.read(r, keyset(stack.regs[scheme], stack.kek, "acme"))


# -- fail closed ----------------------------------------------------------------------------
def test_encryption_failure_is_500_without_features(stack):
    c = client(stack, "ts-fp16-shufflebits", "shufflebits")
    r = c.embed(stack.images[0])
    assert r.status == 500
    assert r.json() == {"error": "features could not be protected", "status": 500}
    assert c.embed(stack.images[0], accept_json=True).status == 500


def test_mar_holds_no_keys(stack):
    for mar in stack.store.glob("*.mar"):
        check_no_keys(mar)
        with zipfile.ZipFile(mar) as zf:
            names = set(zf.namelist())
        assert {"model-config.yaml", "featurelock_handler.py"} <= names
        assert not any("keyset" in n or "tenants" in n or n.endswith("kek") for n in names)
