"""End-to-end fail closed: a model whose keys are missing or wrong never becomes ready.

One TorchServe with four broken models; each worker's initialize must raise, so the model
never reaches READY and no request gets features.
"""

from __future__ import annotations

import time

import pytest

from featurelock.handlers.client import EndpointClient
from featurelock.handlers.packaging import build_mar, resolve_model
from featurelock.handlers.server import TorchServeProcess
from featurelock.handlers.tenant_tokens import TenantTokens

from fl_serving_helpers import export_default_model, file_kek, make_registry, pedestrian_pngs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# model name -> (featurelock serving keys, log text its worker must print)
BROKEN = {
    "no-registry": ({"key_registry_env": "FL_REG_UNSET"}, "no key registry"),
    "no-kek": ({"key_registry_env": "FL_REG_GOOD", "kek_env": "FL_KEK_UNSET"},
               "no key-encryption key"),
    "wrong-kek": ({"key_registry_env": "FL_REG_GOOD", "kek_env": "FL_KEK_WRONG"},
                  "cannot load the key registry"),
    "scheme-mismatch": ({"key_registry_env": "FL_REG_GOOD"}, "the model is configured for"),
    "missing-keyset": ({"key_registry_env": "FL_REG_ORPHAN"}, "tenants without a keyset"),
}


@pytest.fixture(scope="module")
def broken_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("failclosed")
    export_default_model(root / "export")
    kek = file_kek(root)
    (root / "other").mkdir()
    wrong = file_kek(root / "other")
    tokens = make_registry(root / "good", "aes-256-gcm", kek, tenants=("acme",))
    orphan = TenantTokens(root / "orphan")  # a token without a keyset
    orphan.issue("ghost")
    orphan.save()
    source = resolve_model(root / "export", "torchscript")
    for name, (serving, _) in BROKEN.items():
        scheme = "shufflebits" if name == "scheme-mismatch" else "aes-256-gcm"
        build_mar(source, scheme, name, "1", root / "store", serving=serving)
    env = {"FL_REG_GOOD": str(root / "good"), "FL_REG_ORPHAN": str(root / "orphan"),
           "FEATURELOCK_KEK": kek, "FL_KEK_WRONG": wrong}
    with TorchServeProcess(root / "store", env=env, wait_for_models=False) as ts:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not all(
                text in ts.logs() for _, text in BROKEN.values()):
            time.sleep(0.5)
        yield ts, tokens["acme"]


@pytest.mark.parametrize("name", list(BROKEN))
def test_model_refuses_to_load(broken_server, name):
    ts, token = broken_server
    assert BROKEN[name][1] in ts.logs()
    assert "READY" not in ts.model_status(name)


def test_requests_to_an_unloaded_model_get_no_features(broken_server):
    """TorchServe queues them (no worker) or refuses them; either way no envelope comes back."""
    ts, token = broken_server
    client = EndpointClient(ts.inference_url, "scheme-mismatch", "acme", token,
                            ts.inference_key, timeout=3)
    try:
        r = client.embed(pedestrian_pngs(1)[0])
    except TimeoutError:
        return
    assert r.status >= 500 and b"FLK" not in r.body and b"features" not in r.body


def test_key_material_never_logged(broken_server):
    ts, token = broken_server
    logs = ts.logs()
    assert token not in logs
