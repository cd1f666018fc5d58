"""Fast unit tests of the serving pieces that need no TorchServe process."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from featurelock.handlers import errors as E
from featurelock.handlers.embedding_handler import EmbeddingHandler, load_protectors
from featurelock.handlers.metrics_bridge import outcome_of
from featurelock.handlers.pipeline import ServingPipeline
from featurelock.handlers.packaging import PackageError, check_no_keys
from featurelock.handlers.request_parsing import header, image_bytes, wants_json
from featurelock.handlers.serving_config import ServingConfig
from featurelock.handlers.serving_state import ServingState
from featurelock.handlers.tenant_tokens import TenantTokens, verifier
from featurelock.handlers.ts_config import (EXAMPLE_METRICS_CONFIG, EXAMPLE_MODEL_STORE,
                                            METRICS_CONFIG, render_config)
from featurelock.middleware.errors import EncryptionError, KeyStoreError
from featurelock.models.errors import ImageDecodeError, ImageTooLarge
from featurelock.models.profiles import REID_128x64

from fl_serving_helpers import file_kek, keyset, make_registry, pedestrian_pngs

REPO = Path(__file__).resolve().parents[2]


# -- tokens ---------------------------------------------------------------------------------
def test_tokens_issue_verify_and_file_mode(tmp_path):
    tokens = TenantTokens(tmp_path)
    token = tokens.issue("acme")
    tokens.save()
    assert stat.S_IMODE((tmp_path / "tenants.json").stat().st_mode) == 0o600
    assert token not in (tmp_path / "tenants.json").read_text()
    assert verifier(token) in (tmp_path / "tenants.json").read_text()
    loaded = TenantTokens.load(tmp_path)
    assert loaded.authenticate("acme", token) == "acme"
    for tenant, tok, exc in ((None, token, E.MissingCredentials), ("acme", None, E.MissingCredentials),
                             ("acme", "", E.MissingCredentials), ("acme", token + "x", E.Forbidden),
                             ("other", token, E.Forbidden), ("acme", "t" * 10_000, E.Forbidden)):
        with pytest.raises(exc):
            loaded.authenticate(tenant, tok)


def test_tokens_missing_or_malformed_file(tmp_path):
    with pytest.raises(KeyStoreError):
        TenantTokens.load(tmp_path)
    assert TenantTokens.load(tmp_path, missing_ok=True).tenants() == []
    (tmp_path / "tenants.json").write_text('{"featurelock_tenants": 1, "tenants": []}')
    with pytest.raises(KeyStoreError):
        TenantTokens.load(tmp_path)


# -- error mapping --------------------------------------------------------------------------
@pytest.mark.parametrize("exc, status", [
    (E.MissingCredentials("secret detail /etc/x"), 401), (E.Forbidden("tenant acme token t0k"), 403),
    (E.BadInput("detail"), 400), (E.PayloadTooLarge("detail"), 413), (E.UnsupportedMedia("internal-detail-xyz"), 415),
    (ImageDecodeError("not a decodable image"), 400), (ImageTooLarge("image too large: 9x9"), 413), (ImageDecodeError("too large, says the text"), 400),
    (EncryptionError("key 123 failed"), 500), (RuntimeError("/srv/secret path"), 500),
    (KeyError("secret-key-name"), 500)])
def test_public_error_never_leaks_exception_text(exc, status):
    code, phrase, message = E.public_error(exc)
    assert code == status and phrase
    assert str(exc) not in message or not str(exc)
    body = json.loads(E.error_body(code, message))
    assert body == {"error": message, "status": code}


# -- request parsing ------------------------------------------------------------------------
def test_headers_case_insensitive_and_accept():
    headers = {"X-Featurelock-Tenant": "acme", "body": {"content-type": "image/png"},
               "accept": "text/html, application/json;q=0.9"}
    assert header(headers, "x-featurelock-tenant") == "acme"
    assert header(headers, "body") is None and header(None, "x") is None
    assert wants_json(headers) and not wants_json({"Accept": "application/octet-stream"})


def test_image_bytes_accepts_raw_and_json():
    assert image_bytes({"body": b"\x89PNG..."}, 100) == b"\x89PNG..."
    assert image_bytes({"data": bytearray(b"abc")}, 100) == b"abc"
    assert image_bytes({"body": {"image": base64.b64encode(b"img").decode()}}, 100) == b"img"
    assert image_bytes({"file": b"abc"}, 100) == b"abc"
    # JSON as bytes (TorchServe with decode_input_request=false): parsed here
    assert image_bytes({"body": b'{"image": "aW1n"}'}, 100) == b"img"


@pytest.mark.parametrize("request_, exc", [
    ({"body": b""}, E.BadInput), ({"body": b"x" * 101}, E.PayloadTooLarge),
    ({"body": "text"}, E.UnsupportedMedia), ({"body": [b"a"]}, E.BadInput),
    ({"body": {"image": "!!"}}, E.BadInput), ({"body": {"images": ["aGk="]}}, E.BadInput),
    ({"body": {"image": ""}}, E.BadInput), ({"body": {"image": "A" * 1000}}, E.PayloadTooLarge),
    ({"body": b'{"image": '}, E.BadInput), ({}, E.BadInput), ({"a": b"1", "b": b"2"}, E.BadInput),
    ({"body": 5}, E.BadInput), ({"body": b"[1, 2]"}, E.BadInput),
    ({"body": b'{"image": "' + b"A" * 2000 + b'"}'}, E.PayloadTooLarge)])
def test_image_bytes_rejects(request_, exc):
    with pytest.raises(exc):
        image_bytes(request_, 100)


# -- config ---------------------------------------------------------------------------------
def _section(**over):
    doc = {"scheme": "aes-256-gcm", "model": "reid", "version": 1, "model_file": "m.pt",
           "backend": "torchscript", "profile": REID_128x64.to_dict()}
    doc.update(over)
    return {"featurelock": doc}


def test_serving_config_validation():
    cfg = ServingConfig.from_model_yaml(_section())
    assert cfg.version == "1" and cfg.input_profile() == REID_128x64 and not cfg.plaintext
    for bad in (None, {}, _section(scheme="rot13"), _section(backend="tf"), _section(extra=1),
                _section(max_body_bytes=0), _section(model="")):
        with pytest.raises(E.ServerConfigError):
            ServingConfig.from_model_yaml(bad)


def test_rendered_config_is_hardened_and_matches_serve_config():
    text = render_config(EXAMPLE_MODEL_STORE, metrics_config=EXAMPLE_METRICS_CONFIG)
    assert (REPO / "serve_config" / "config.properties").read_text() == text
    assert METRICS_CONFIG.is_file() and f"metrics_config={METRICS_CONFIG}" in render_config("/m")
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    for key in ("inference_address", "management_address", "metrics_address"):
        assert props[key].startswith("http://127.0.0.1:")
    assert props["grpc_inference_address"] == props["grpc_management_address"] == "127.0.0.1"
    assert props["disable_token_authorization"] == "false"
    assert props["enable_model_api"] == "false"
    assert props["metrics_mode"] == "prometheus"
    assert props["allowed_urls"] == "(?!)"  # no URL may be fetched (workflows, issue 9)
    assert props["workflow_store"] == "/srv/featurelock/no-workflows"  # never the model store
    with pytest.raises(ValueError, match="workflow_store"):
        render_config("/srv/m", workflow_store="/srv/m/")


def test_model_configs_in_serve_config_parse():
    import yaml

    for path in (REPO / "serve_config").glob("model-config.*.yaml"):
        doc = yaml.safe_load(path.read_text())
        cfg = ServingConfig.from_model_yaml(doc)
        assert path.name == f"model-config.{cfg.scheme}.yaml"
        assert doc["minWorkers"] == doc["maxWorkers"] == 1


def test_check_no_keys_refuses_keysets(tmp_path):
    import zipfile

    mar = tmp_path / "x.mar"
    with zipfile.ZipFile(mar, "w") as zf:
        zf.writestr("model-config.yaml", "featurelock: {}")
    check_no_keys(mar)
    with zipfile.ZipFile(mar, "a") as zf:
        zf.writestr("extra/acme.keyset.json", "{}")
    with pytest.raises(PackageError):
        check_no_keys(mar)


# -- key loading ----------------------------------------------------------------------------
def test_load_protectors_fails_closed(tmp_path, monkeypatch):
    kek = file_kek(tmp_path)
    make_registry(tmp_path / "reg", "shufflebits", kek, tenants=("acme",))
    cfg = ServingConfig.from_model_yaml(_section(scheme="shufflebits"))
    monkeypatch.delenv("FEATURELOCK_KEK", raising=False)
    with pytest.raises(E.ServerConfigError, match="no key-encryption key"):
        load_protectors(cfg, str(tmp_path / "reg"), ["acme"])
    monkeypatch.setenv("FEATURELOCK_KEK", kek)
    assert set(load_protectors(cfg, str(tmp_path / "reg"), ["acme"])) == {"acme"}
    with pytest.raises(E.ServerConfigError, match="without a keyset"):
        load_protectors(cfg, str(tmp_path / "reg"), ["acme", "ghost"])
    with pytest.raises(E.ServerConfigError, match="configured for"):
        load_protectors(ServingConfig.from_model_yaml(_section()), str(tmp_path / "reg"), ["acme"])
    (tmp_path / "k2").mkdir()
    monkeypatch.setenv("FEATURELOCK_KEK", file_kek(tmp_path / "k2"))
    with pytest.raises(E.ServerConfigError, match="cannot load"):
        load_protectors(cfg, str(tmp_path / "reg"), ["acme"])


@pytest.mark.parametrize("scheme", ["shufflebits", "shufflebits-otp"])
def test_load_protectors_warns_per_tenant_with_a_leaky_primary(tmp_path, monkeypatch, caplog,
                                                               scheme):
    from featurelock.middleware.schemes import scheme_leak

    kek = file_kek(tmp_path)
    make_registry(tmp_path / "reg", scheme, kek)  # acme, globex
    monkeypatch.setenv("FEATURELOCK_KEK", kek)
    with caplog.at_level("WARNING", logger="featurelock.handlers.embedding_handler"):
        load_protectors(ServingConfig.from_model_yaml(_section(scheme=scheme)),
                        str(tmp_path / "reg"), ["acme", "globex"])
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    for tenant, message in zip(("acme", "globex"), warnings):
        assert tenant in message and scheme in message and scheme_leak(scheme) in message
        stored = keyset(tmp_path / "reg", kek, tenant)
        material = stored._keys[stored.primary_id].material
        assert material.hex() not in message and str(material) not in message


def test_load_protectors_is_quiet_for_a_non_leaky_primary(tmp_path, monkeypatch, caplog):
    kek = file_kek(tmp_path)
    make_registry(tmp_path / "reg", "aes-256-gcm", kek, tenants=("acme",))
    monkeypatch.setenv("FEATURELOCK_KEK", kek)
    with caplog.at_level("WARNING", logger="featurelock.handlers.embedding_handler"):
        load_protectors(ServingConfig.from_model_yaml(_section()), str(tmp_path / "reg"), ["acme"])
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


# -- handler stages with a fake TorchServe context -------------------------------------------
class FakeContext:
    def __init__(self, headers):
        self.headers = headers
        self.status, self.ctype = {}, {}

    def get_all_request_header(self, idx):
        return self.headers[idx]

    def get_request_header(self, idx, key):  # what BaseHandler's per-batch switches read
        return self.headers[idx].get(key)

    def set_response_status(self, code=200, phrase="", idx=0):
        self.status[idx] = code

    def set_response_content_type(self, idx, value):
        self.ctype[idx] = value


class FixedState:
    """Stands in for the RegistryWatcher: always the same state."""

    def __init__(self, state):
        self.state = state

    def current(self):
        return self.state


class FailingProtector:
    def protect(self, features, context):
        raise EncryptionError("boom with detail")


@pytest.fixture
def handler(tmp_path):
    tokens = TenantTokens(tmp_path)
    token = tokens.issue("acme")
    h = EmbeddingHandler()
    h.pipeline = ServingPipeline(ServingConfig.from_model_yaml(_section()),
                                 FixedState(ServingState(1, tokens, {"acme": FailingProtector()})),
                                 lambda x: torch.ones(x.shape[0], 4))
    h.token = token
    return h


def test_stages_isolate_bad_requests_and_fail_closed(handler):
    good = pedestrian_pngs(1)[0]
    creds = {"X-Featurelock-Tenant": "acme", "X-Featurelock-Token": handler.token}
    handler.context = FakeContext([creds, {}, creds, {**creds, "X-Featurelock-Token": "no"}])
    data = [{"body": good}, {"body": good}, {"body": b"junk"}, {"body": good}]
    out = handler.postprocess(handler.inference(handler.preprocess(data)))
    assert len(out) == 4
    assert [handler.context.status[i] for i in range(4)] == [500, 401, 400, 403]
    assert all(handler.context.ctype[i] == "application/json" for i in range(4))
    assert json.loads(out[0]) == {"error": "features could not be protected", "status": 500}
    assert all("detail" not in o and "1.0" not in o for o in out)


def test_plaintext_stage_output(handler):
    pipeline = handler.pipeline
    handler.pipeline = ServingPipeline(ServingConfig.from_model_yaml(_section(scheme="plaintext")),
                                       pipeline.registry, pipeline.runner)
    creds = {"x-featurelock-tenant": "acme", "x-featurelock-token": handler.token}
    handler.context = FakeContext([creds])
    out = handler.postprocess(handler.inference(handler.preprocess([{"body": pedestrian_pngs(1)[0]}])))
    assert json.loads(out[0]) == {"features": [[1.0, 1.0, 1.0, 1.0]], "shape": [1, 4]}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_runner_features_protected_on_device(tmp_path):
    from featurelock.handlers.runners import load_runner
    from featurelock.middleware import Context, FeatureProtector, FeatureReader, Keyset

    from fl_serving_helpers import export_default_model

    export = export_default_model(tmp_path / "export")
    runner = load_runner(export.files["torchscript"], "torchscript", 0, REID_128x64)
    x = torch.randn(2, 3, 128, 64)
    features = runner(x)
    assert features.is_cuda
    keyset = Keyset.generate("shufflebits-otp", allow_leaky=True)
    ctx = Context("reid", "1", "acme")
    envelope = FeatureProtector(keyset).protect(features, ctx)
    np.testing.assert_allclose(FeatureReader(keyset).read(envelope, ctx),
                               features.cpu().numpy(), rtol=0, atol=0)


# -- no request decides for its batch (issue 9, item 4) --------------------------------------
class _Timings:
    def add_time(self, *args, **kwargs):
        pass


@pytest.mark.parametrize("marker", [{"explain": "True"}, {"describe": "True"},
                                    {"Explain": "true", "explain": "False"}])
def test_explain_or_describe_in_request_0_fails_only_itself(handler, marker):
    """BaseHandler.handle switches the whole batch on request 0's headers; here it must not."""
    from featurelock.middleware import Context, FeatureProtector, FeatureReader, Keyset

    ks = Keyset.generate("aes-256-gcm")
    tokens = handler.pipeline.registry.current().tokens
    handler.pipeline.registry = FixedState(ServingState(1, tokens, {"acme": FeatureProtector(ks)}))
    creds = {"X-Featurelock-Tenant": "acme", "X-Featurelock-Token": handler.token}
    context = FakeContext([{**creds, **marker}, creds, {**creds, "Accept": "application/json"}])
    context.metrics = _Timings()
    good = pedestrian_pngs(1)[0]
    out = handler.handle([{"body": good}] * 3, context)
    assert len(out) == 3
    assert [context.status[i] for i in range(3)] == [405, 200, 200]
    assert json.loads(out[0]) == {"error": "only predictions are served", "status": 405}
    assert outcome_of(E.NotServed()) == "bad_input"  # the client's fault, not ours
    assert context.ctype == {0: "application/json", 1: "application/octet-stream",
                             2: "application/json"}
    ctx = Context(handler.pipeline.config.model, handler.pipeline.config.version, "acme")
    for body in out[1:]:
        np.testing.assert_array_equal(FeatureReader(ks).read(body, ctx), np.ones((1, 4), np.float32))


def test_control_headers_are_read_per_request():
    from featurelock.handlers.request_parsing import is_control_request

    assert is_control_request({"explain": "True"}) and is_control_request({"DESCRIBE": " true "})
    assert is_control_request({"explain": "False", "EXPLAIN": "True"})
    for headers in (None, {}, {"explain": "False"}, {"explain": {"content-type": "True"}},
                    {"x-explain": "True"}, {"accept": "True"}):
        assert not is_control_request(headers)


def test_failed_requests_leave_no_reference_cycles(handler, monkeypatch):
    """A kept exception's traceback held the stage's frame and so the whole batch in a cycle
    that only full collections free; the soak saw worker RSS climb. Nothing cyclic now."""
    import gc
    import logging

    # pytest keeps every log record, and with it the exception it names: that would make the
    # batch reachable and hide the cycle from gc.collect().
    monkeypatch.setattr(logging.getLogger("featurelock.handlers.pipeline"), "disabled", True)

    good = pedestrian_pngs(1)[0]
    creds = {"X-Featurelock-Tenant": "acme", "X-Featurelock-Token": handler.token}
    headers = [creds, {}, creds, {**creds, "X-Featurelock-Token": "no"}, {**creds, "explain": "True"}]
    data = [{"body": good}, {"body": good}, {"body": b"junk"}, {"body": good}, {"body": good}]
    for _ in range(2):  # the first round may create lasting caches; count the second
        gc.collect()
        gc.disable()
        try:
            handler.context = FakeContext(headers)
            out = handler.postprocess(handler.inference(handler.preprocess(data)))
            del out
            found = gc.collect()
        finally:
            gc.enable()
    assert [handler.context.status[i] for i in range(5)] == [500, 401, 400, 403, 405]
    assert found == 0
