"""Locust users for featurelock endpoints: the plaintext baseline and every encrypted scheme.

    FL_LOAD_CONFIG=run.json locust -f load_tests/locustfile.py --headless -u 4 -r 4 -t 10s \
        --host http://127.0.0.1:8080 PlaintextUser|EncryptedUser

run.json: written by load_tests/run.py; its format is printed by
`python -m load_tests.run --help` (CONFIG_FORMAT there). TorchServe's route and bodies also
serve Ray Serve; the KServe protocols wrap each image in JSON and carry the answer in base64.

Every response is validated (status, content type, body shape); one in `sample_every`
is fully checked: the envelope decrypts with the client SDK (FeatureReader) to a (1, D)
float32 array, or the plaintext JSON parses to (1, D). Anything else is a locust failure.
Exact per-request latencies (locust's own percentiles are rounded to whole milliseconds) and the
number of fully checked responses are written to `latency_out` when the run stops.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from locust import FastHttpUser, constant, events, task

from featurelock.handlers.kserve_protocol import (TORCHSERVE, client_request, client_result,
                                                  request_path)

_STATE: dict = {}


def _config() -> dict:
    if "config" not in _STATE:
        path = os.environ.get("FL_LOAD_CONFIG")
        if not path:
            raise RuntimeError("FL_LOAD_CONFIG must name the run's JSON config")
        cfg = json.loads(Path(path).read_text())
        cfg["image_bytes"] = [Path(p).read_bytes() for p in cfg["images"]]
        _STATE["config"] = cfg
        _STATE["latencies"] = []
        _STATE["checked"] = 0
    return _STATE["config"]


def _reader() -> tuple:
    """The FeatureReader and context of the run's tenant, built once for every user."""
    if "reader" not in _STATE:
        from featurelock.handlers.stack import reader_keyset
        from featurelock.middleware import Context, FeatureReader

        cfg = _config()
        ep = cfg["endpoint"]
        _STATE["reader"] = (FeatureReader(reader_keyset({**ep, "tenant": cfg["tenant"]},
                                                        cfg["kek"])),
                            Context(ep["model"], ep["version"], cfg["tenant"]))
    return _STATE["reader"]


@events.init.add_listener
def _load(environment, **_kw) -> None:
    # Before the run-time clock starts: unwrapping a keyset can take seconds on a busy machine,
    # and a user's on_start would spend them out of a short run.
    if os.environ.get("FL_LOAD_CONFIG"):
        cfg = _config()
        if cfg["endpoint"].get("scheme") != "plaintext":
            _reader()


@events.request.add_listener
def _record(response_time, exception, **_kw) -> None:
    if exception is None and "latencies" in _STATE:
        _STATE["latencies"].append(response_time)


@events.quitting.add_listener
def _dump(environment, **_kw) -> None:
    cfg = _STATE.get("config")
    if not cfg or not cfg.get("latency_out"):
        return
    lat = np.asarray(_STATE.get("latencies", []), dtype=np.float64)
    doc = {"n": int(lat.size), "checked": int(_STATE.get("checked", 0))}
    if lat.size:
        doc.update(p50_ms=float(np.percentile(lat, 50)), p95_ms=float(np.percentile(lat, 95)),
                   mean_ms=float(lat.mean()))
    Path(cfg["latency_out"]).write_text(json.dumps(doc))


class _FeaturelockUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)  # closed loop: a fixed number of users, each back-to-back
    expected_type = ""

    def on_start(self) -> None:
        cfg = _config()
        ep = cfg["endpoint"]
        self.endpoint = ep
        self.images = cfg["image_bytes"]
        self.sample_every = max(1, int(cfg.get("sample_every", 20)))
        self.protocol = cfg.get("protocol", TORCHSERVE)
        self.path = request_path(self.protocol, ep["model"])
        kserve = self.protocol != TORCHSERVE
        if kserve:  # the JSON documents, built once: the load is the server's, not ours
            self.images = [client_request(self.protocol, image) for image in self.images]
        self.headers = {"Content-Type": "application/json" if kserve else "application/octet-stream",
                        "Accept": "application/json" if kserve else self.expected_type,
                        "X-Featurelock-Tenant": cfg["tenant"],
                        "X-Featurelock-Token": ep["token"]}
        if cfg.get("inference_key"):
            self.headers["Authorization"] = f"Bearer {cfg['inference_key']}"
        self.dim = cfg.get("dim")  # expected feature dimension, when known
        self.n = 0
        self.prepare(cfg)

    def prepare(self, cfg: dict) -> None:
        pass

    @task
    def embed(self) -> None:
        self.n += 1
        image = self.images[self.n % len(self.images)]
        with self.client.post(self.path, data=image, headers=self.headers,
                              name=self.endpoint["scheme"], catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
                return
            ctype = (resp.headers.get("content-type") or "").split(";")[0].strip()
            body = resp.content
            if self.protocol != TORCHSERVE:  # the one result inside KServe's JSON answer
                unwrapped = client_result(self.protocol, body) if ctype == "application/json" \
                    else None
                if unwrapped is None:
                    resp.failure("not a one-image KServe answer")
                    return
                body, ctype = unwrapped
            if ctype != self.expected_type:
                resp.failure(f"content type {ctype!r}")
                return
            full = self.n % self.sample_every == 0
            error = self.check(body, full=full)
            if error:
                resp.failure(error)
            else:
                _STATE["checked"] += int(full)
                resp.success()

    def check(self, body: bytes, full: bool) -> str | None:
        raise NotImplementedError


class PlaintextUser(_FeaturelockUser):
    """The baseline: raw features as a JSON list of floats."""

    expected_type = "application/json"

    def check(self, body: bytes, full: bool) -> str | None:
        if not body.startswith(b'{"features"'):
            return "not a features document"
        if full:
            doc = json.loads(body)
            arr = np.asarray(doc["features"], dtype=np.float32)
            if arr.ndim != 2 or arr.shape[0] != 1 or list(arr.shape) != doc["shape"] \
                    or (self.dim and arr.shape[1] != self.dim):
                return f"features of shape {arr.shape}"
        return None


class EncryptedUser(_FeaturelockUser):
    """An encrypted scheme: binary envelope; a sample is decrypted with FeatureReader."""

    expected_type = "application/octet-stream"

    def prepare(self, cfg: dict) -> None:
        self.reader, self.fl_context = _reader()

    def check(self, body: bytes, full: bool) -> str | None:
        from featurelock.middleware.errors import DecryptionError

        if not body.startswith(b"FLK"):
            return "not a featurelock envelope"
        if full:
            try:
                arr = self.reader.read(body, self.fl_context)
            except DecryptionError:
                return "envelope does not decrypt"
            if arr.ndim != 2 or arr.shape[0] != 1 or arr.dtype != np.float32 \
                    or (self.dim and arr.shape[1] != self.dim):
                return f"decrypted to {arr.dtype} {arr.shape}"
        return None
