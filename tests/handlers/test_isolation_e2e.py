"""End-to-end: no request can change how the others in its batch are served (issue 9, item 4).

One real TorchServe on 127.0.0.1, one model batching up to 8 requests for 200 ms so that
concurrent requests share batches. Explanation and describe requests, and bodies in formats
the profile does not take, each get their own 4xx; every good batch-mate gets 200 and
decrypts. The workflow API registers nothing. Beside it, a user's own models (bring your own
model: 512-d re-ID TorchScript, 128-d face ONNX) packaged with their profiles.
"""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from featurelock.handlers.client import EndpointClient, Response
from featurelock.handlers.packaging import build_mar, check_mar, resolve_model
from featurelock.handlers.server import TorchServeProcess
from featurelock.models.profiles import InputProfile

from featurelock.middleware.cli import main as featurelock_cli

from fl_serving_helpers import (BYO, BYO_TOL, Reference, byo_reference, export_default_model,
                                face_pngs, file_kek, keyset, make_registry, pedestrian_pngs,
                                user_models)
from image_bodies import broken_jpeg_or_png, not_jpeg_or_png

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = "iso"
BATCH_TOL = 1e-5
REFUSED = {"error": "only predictions are served", "status": 405}


class Server:
    pass


def _workflow_archive(model_mar: str) -> bytes:
    """A well-formed .war whose DAG serves `model_mar`: what POST /workflows would register."""
    manifest = {"createdOn": "01/01/2026 00:00:00", "description": "", "archiverVersion": "0.2.15",
                "workflow": {"workflowName": "wf", "specFile": "spec.yaml",
                             "handler": "wf_handler.py"}}
    spec = (f"models:\n  min-workers: 1\n  max-workers: 1\n  {MODEL}:\n    url: {model_mar}\n"
            f"dag:\n  pre: [{MODEL}]\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("WAR-INF/MANIFEST.json", json.dumps(manifest))
        zf.writestr("spec.yaml", spec)
        zf.writestr("wf_handler.py", "def pre(data, context):\n    return data\n")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("isolation")
    s = Server()
    export_default_model(root / "export")
    s.kek = file_kek(root)
    s.registry = root / "reg"
    s.token = make_registry(s.registry, "aes-256-gcm", s.kek, tenants=("acme",))["acme"]
    source = resolve_model(root / "export", "torchscript")
    s.ref = Reference(source.model_file, "torchscript", InputProfile.from_dict(source.profile))
    s.store = root / "store"
    build_mar(source, "aes-256-gcm", MODEL, "1", s.store,
              serving={"key_registry_env": "FL_REG_ISO"}, batchSize=8, maxBatchDelay=200)
    # Where TorchServe looks for workflows by default (workflow_store = model_store).
    (s.store / "wf.war").write_bytes(_workflow_archive(f"{MODEL}.mar"))
    # Bring your own model, on this server: a user's 512-d re-ID TorchScript and 128-d face ONNX
    # files, each packaged by the CLI with its profile (test-run at build).
    s.byo = user_models(root / "byo")
    for key, profile in BYO.items():
        assert featurelock_cli(["package", "--model-dir", str(s.byo[key]), "--profile", profile,
                                "--name", f"byo-{key}", "--out", str(s.store),
                                "--key-registry-env", "FL_REG_ISO"]) == 0
    s.images = pedestrian_pngs(8)
    env = {"FL_REG_ISO": str(s.registry), "FEATURELOCK_KEK": s.kek}
    with TorchServeProcess(s.store, [f"{MODEL}.mar", *(f"byo-{k}.mar" for k in BYO)], env=env,
                           startup_timeout=240) as ts:
        s.ts = ts
        s.client = EndpointClient(ts.inference_url, MODEL, "acme", s.token, ts.inference_key,
                                  timeout=60)
        s.keys = keyset(s.registry, s.kek, "acme")
        yield s


def _headers(s, accept_json: bool = False, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/octet-stream",
            "Accept": "application/json" if accept_json else "application/octet-stream",
            "X-Featurelock-Tenant": "acme", "X-Featurelock-Token": s.token,
            "Authorization": f"Bearer {s.ts.inference_key}", **extra}


def _fire(s, calls: list[tuple[str, bytes, dict[str, str]]]) -> list[Response]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: s.client.post(*call), calls))


def _good_calls(s, n: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """n predictions; every other one asks for the JSON envelope and every third one sends a
    JSON body: Accept and Content-Type are per request too."""
    calls = []
    for i in range(n):
        image, headers = s.images[i % len(s.images)], _headers(s, i % 2 == 1)
        if i % 3 == 2:
            image = json.dumps({"image": base64.b64encode(image).decode()}).encode()
            headers["Content-Type"] = "application/json"
        calls.append((f"/predictions/{MODEL}", image, headers))
    return calls


def _image_of(body: bytes) -> bytes:
    return base64.b64decode(json.loads(body)["image"]) if body[:1] == b"{" else body


def _assert_good(s, calls, responses) -> None:
    for (_, body, headers), r in zip(calls, responses):
        image = _image_of(body)
        assert r.status == 200, r.body[:200]
        wants_json = headers["Accept"] == "application/json"
        assert r.content_type.startswith("application/json" if wants_json else
                                         "application/octet-stream")
        assert np.abs(s.client.read(r, s.keys) - s.ref([image])).max() <= BATCH_TOL


def _mixed_batches(s) -> int:
    """Logged batches of more than one request where some but not all were valid."""
    sizes = re.findall(r"featurelock batch: (\d+) requests, (\d+) valid", s.ts.logs())
    return sum(1 for n, valid in sizes if int(n) > 1 and 0 < int(valid) < int(n))


def test_explanations_fail_alone_in_shared_batches(server):
    s = server
    before = _mixed_batches(s)
    for _ in range(3):
        good = _good_calls(s, 12)
        explain = [(f"/explanations/{MODEL}", s.images[i], _headers(s)) for i in range(4)]
        responses = _fire(s, good + explain)
        _assert_good(s, good, responses[:len(good)])
        for r in responses[len(good):]:
            assert r.status == 405 and r.json() == REFUSED
    assert _mixed_batches(s) > before, "explain and predict requests never shared a batch"


def test_kserve_explain_path_is_refused(server):
    """TorchServe also maps /v1/models/<m>:explain to an explain request (frontend or 405)."""
    s = server
    r = s.client.post(f"/v1/models/{MODEL}:explain", s.images[0], _headers(s))
    assert 400 <= r.status < 500 and b"FLK" not in r.body


# On /predictions the frontend adds its own `explain: False`, which wins over the client's copy:
# that request is a plain prediction. Nothing overrides a client's `describe: True`.
@pytest.mark.parametrize("marker, status", [({"explain": "True"}, 200), ({"describe": "True"}, 405)])
def test_client_sent_control_headers_fail_alone(server, marker, status):
    s = server
    good = _good_calls(s, 12)
    marked = [(f"/predictions/{MODEL}", s.images[0], _headers(s, **marker)) for _ in range(4)]
    responses = _fire(s, marked + good)  # the marked ones first: they head their batches
    if status == 200:
        _assert_good(s, marked, responses[:len(marked)])
    else:
        assert all(r.status == 405 and r.json() == REFUSED for r in responses[:len(marked)])
    _assert_good(s, good, responses[len(marked):])


def test_other_formats_and_broken_images_fail_alone(server):
    s = server
    bodies = {**not_jpeg_or_png(), **broken_jpeg_or_png()}
    bad = [(f"/predictions/{MODEL}", body, _headers(s)) for body in bodies.values()]
    good = _good_calls(s, 8)
    responses = _fire(s, bad + good)
    for name, r in zip(bodies, responses):
        assert r.status == 400, name
        assert r.json() == {"error": "input is not a valid image", "status": 400}, name
    _assert_good(s, good, responses[len(bad):])


# -- the workflow API registers nothing --------------------------------------------------------
def _management(s, method: str, path: str) -> tuple[int, bytes]:
    req = urllib.request.Request(s.ts.management_url + path, method=method,
                                 headers={"Authorization": f"Bearer {s.ts.management_key}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_post_workflows_registers_nothing(server):
    s = server
    store = s.store.resolve()
    for url in ("wf.war", f"file://{store}/wf.war", f"file://{store}/{MODEL}.mar",
                "http://127.0.0.1:9/wf.war"):
        status, body = _management(s, "POST", "/workflows?" + urllib.parse.urlencode({"url": url}))
        assert 400 <= status < 500, (url, status, body[:200])
    status, body = _management(s, "GET", "/workflows")
    assert status == 200 and json.loads(body)["workflows"] == []
    status, body = _management(s, "GET", "/models")
    assert sorted(m["modelName"] for m in json.loads(body)["models"]) == sorted(
        [MODEL, *(f"byo-{k}" for k in BYO)])  # the served ones, nothing from a workflow
    assert not any((s.ts.workdir / "no-workflows").iterdir())


@pytest.mark.parametrize("key", BYO)
def test_user_model_decrypts_to_local_inference(server, key):
    """A user's own model (512-d re-ID TorchScript, 128-d face ONNX) on TorchServe: envelopes
    decrypt to local inference of the same file under its profile (tolerance BYO_TOL)."""
    c = EndpointClient(server.ts.inference_url, f"byo-{key}", "acme", server.token,
                       server.ts.inference_key, timeout=60)
    ref = byo_reference(server.byo, key)
    dim = 512 if key == "reid512" else 128
    assert check_mar(server.store / f"byo-{key}.mar") == dim  # `serve --model-store`'s check
    for image in (face_pngs(3) if key == "face128" else server.images[:3]):
        got = c.read(c.embed(image), server.keys)
        assert got.shape == (1, dim)
        np.testing.assert_allclose(got, ref([image]), rtol=0, atol=BYO_TOL)
