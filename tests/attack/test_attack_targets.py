"""Targets: local responses as a client gets them, budget and rate limit, the HTTP client."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from featurelock.attack_harness.errors import BudgetExceeded, TargetError
from featurelock.attack_harness.targets import (CachedEmbedder, HttpTarget, LocalTarget,
                                                 MeteredTarget, local_targets, parse_endpoint)
from featurelock.middleware import Context, Envelope, FeatureProtector, Keyset


def embed(images):
    return images.reshape(len(images), -1)[:, :8].astype(np.float32) / 255.0


IMAGES = np.random.default_rng(0).integers(0, 256, (5, 4, 2, 3), dtype=np.uint8)


def test_plaintext_target_returns_feature_rows():
    out = LocalTarget(embed).query(IMAGES)
    assert len(out) == 5 and all(isinstance(r, np.ndarray) and r.shape == (8,) for r in out)


@pytest.mark.parametrize("scheme", ["aes-256-gcm", "shufflebits", "shufflebits-otp",
                                    "shufflebits-masked"])
def test_protected_target_returns_one_envelope_per_image(scheme):
    target = LocalTarget(embed, scheme)
    out = target.query(IMAGES)
    assert all(isinstance(r, bytes) for r in out)
    env = Envelope.from_bytes(out[0])
    assert env.scheme == scheme and env.shape == (1, 8)


def test_local_target_validates():
    with pytest.raises(ValueError, match="scheme"):
        LocalTarget(embed, "rot13")
    with pytest.raises(TypeError):
        LocalTarget("not callable")
    with pytest.raises(ValueError, match="no keyset"):
        LocalTarget(embed, "plaintext", keyset=Keyset.generate())
    with pytest.raises(TypeError, match="uint8"):
        LocalTarget(embed).query(IMAGES.astype(np.float32))


def test_cached_embedder_runs_the_model_once_per_image():
    calls = []

    def counting(images):
        calls.append(len(images))
        return embed(images)

    targets = local_targets(["plaintext", "aes-256-gcm"], counting)
    for t in targets.values():
        t.query(IMAGES)
    assert calls == [5]
    assert isinstance(CachedEmbedder(embed)(IMAGES), np.ndarray)


def test_budget_is_enforced_and_leaks_are_free():
    m = MeteredTarget(LocalTarget(embed), budget=6)
    m.query(IMAGES)
    m.query(IMAGES, charge=False)
    assert (m.used, m.total) == (5, 10)
    with pytest.raises(BudgetExceeded):
        m.query(IMAGES[:2])


def test_rate_limit_sleeps_with_an_injected_clock():
    now, slept = [0.0], []

    def sleep(s):
        slept.append(s)
        now[0] += s

    m = MeteredTarget(LocalTarget(embed), rate_limit=10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        m.query(IMAGES)  # 5 images at 10 q/s: 0.5 s apart
    assert slept == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError):
        MeteredTarget(LocalTarget(embed), rate_limit=0)


def test_parse_endpoint():
    assert parse_endpoint("http://127.0.0.1:8080/predictions/reid") == ("http://127.0.0.1:8080", "reid")
    with pytest.raises(ValueError):
        parse_endpoint("ftp://x/predictions/reid")
    with pytest.raises(ValueError):
        parse_endpoint("http://x:1/models/reid")


class _Fake(BaseHTTPRequestHandler):
    """Answers like the featurelock handler: plaintext JSON, or a binary/JSON envelope."""

    mode = "plaintext"
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        assert body[:8] == b"\x89PNG\r\n\x1a\n"
        feats = np.arange(4, dtype=np.float32)[None] / 7
        if self.mode == "plaintext":
            out, ctype = json.dumps({"features": feats.tolist(), "shape": [1, 4]}).encode(), "application/json"
        elif self.mode == "forbidden":
            out, ctype = b'{"code": 403}', "application/json"
        else:
            env = FeatureProtector(Keyset.generate("shufflebits", allow_leaky=True)).protect(
                feats, Context("m"))
            out = Envelope.from_bytes(env).to_json().encode() if self.mode == "json" else bytes(env)
            ctype = "application/json" if self.mode == "json" else "application/octet-stream"
        self.send_response(403 if self.mode == "forbidden" else 200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/predictions/reid"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode,scheme", [("plaintext", "plaintext"), ("binary", "shufflebits"),
                                         ("json", "shufflebits")])
def test_http_target_against_a_fake_endpoint(fake_server, mode, scheme):
    _Fake.mode, _Fake.seen = mode, []
    target = HttpTarget(fake_server, tenant="acme", token="tok", inference_key="ik", workers=2)
    try:
        out = target.query(IMAGES[:3])
    finally:
        target.close()
    assert len(out) == 3 and target.scheme == scheme
    if scheme == "plaintext":
        assert np.allclose(out[0], np.arange(4) / 7)
    else:
        assert Envelope.from_bytes(out[0]).shape == (1, 4)
    h = _Fake.seen[0]
    assert h["x-featurelock-tenant"] == "acme" and h["x-featurelock-token"] == "tok"
    assert h["authorization"] == "Bearer ik"


def test_http_target_reports_refusals_without_body_text(fake_server):
    _Fake.mode = "forbidden"
    target = HttpTarget(fake_server, tenant="acme", token="bad", inference_key=None)
    with pytest.raises(TargetError, match="HTTP 403"):
        target.query(IMAGES[:1])
    target.close()


def test_http_target_unreachable():
    target = HttpTarget("http://127.0.0.1:9/predictions/reid", tenant=None, token=None,
                        inference_key=None, timeout=2)
    with pytest.raises(TargetError, match="cannot reach"):
        target.query(IMAGES[:1])
    target.close()
