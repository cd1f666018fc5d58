"""A short run of `make loadtest` (tens of seconds), so the locustfile and runner cannot rot,
and proof that the locust users really mark bad responses as failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # load_tests/ is not an installed package

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(420)]


def _require(*modules: str) -> None:
    """Skip without locust/TorchServe, WITHOUT importing them: locust monkey-patches the
    interpreter with gevent at import, which deadlocks a process that already runs threads
    (as the rest of the suite leaves behind). locust always runs in its own process here."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def test_short_ab_load_run_writes_csv_and_a_summary(tmp_path):
    _require("locust", "ts")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "load_tests.run", "--users", "2", "--duration", "3",
         "--rounds", "1", "--schemes", "aes-256-gcm", "shufflebits-otp", "--sample-every", "5",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "summary.json").read_text())
    assert [r["scheme"] for r in doc["runs"]] == ["plaintext", "aes-256-gcm", "plaintext",
                                                  "shufflebits-otp", "plaintext"]
    assert doc["failures"] == 0 and all(r["requests"] > 0 for r in doc["runs"])
    for scheme in ("aes-256-gcm", "shufflebits-otp"):
        entry = doc["summary"][scheme]
        assert entry["throughput"] > 0 and entry["p50"] > 0 and entry["p95"] > 0
        assert 0 < entry["encrypt_share"] < 1 and 0 < entry["encrypt_p50_s"] < 0.05
    assert (out / "01-aes-256-gcm_stats.csv").is_file()
    assert (out / "01-aes-256-gcm_stats_history.csv").is_file()
    assert "throughput ratio" in proc.stdout or "thr ratio" in proc.stdout
    assert "encrypt share" in proc.stdout or "enc share" in proc.stdout
    assert not list(out.glob("*.config.json"))  # the run configs name the KEK file: removed


@pytest.mark.parametrize("engine", ["ray", "kserve"])
def test_load_run_on_scale_out_engines(tmp_path, engine):
    """The same runner against Ray Serve and KServe: every response validated (sampled ones
    decrypted), and the encrypt share read back from the engine's own metrics pages."""
    _require("locust", "ray" if engine == "ray" else "kserve")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "load_tests.run", "--engine", engine, "--users", "2",
         "--duration", "2", "--rounds", "1", "--schemes", "aes-256-gcm", "--sample-every", "3",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "summary.json").read_text())
    assert doc["engine"] == engine and doc["failures"] == 0
    assert [r["scheme"] for r in doc["runs"]] == ["plaintext", "aes-256-gcm", "plaintext"]
    assert all(r["requests"] > 0 for r in doc["runs"])
    entry = doc["summary"]["aes-256-gcm"]
    assert 0 < entry["encrypt_share"] < 1 and 0 < entry["encrypt_p50_s"] < 0.05


def test_responses_that_do_not_decrypt_are_locust_failures(tmp_path):
    """One TorchServe for three checks: the locust user marks envelopes that do not decrypt as
    failures; `load_tests.run --endpoint` load-tests that running endpoint from the outside,
    decrypting a sample with the tenant's keyset; and with another tenant's keyset it stops at
    the first answer with one line."""
    _require("locust", "ts")
    from featurelock.handlers.stack import Stack

    with Stack.build(tmp_path / "stack", ("plaintext", "aes-256-gcm")) as stack:
        images = []
        from featurelock.handlers.stack import TENANT, sample_images

        for i, img in enumerate(sample_images(2)):
            images.append(str(tmp_path / f"{i}.png"))
            Path(images[-1]).write_bytes(img)
        aes = stack.endpoints["aes-256-gcm"]
        # The aes endpoint, checked with the plaintext endpoint's registry: a different keyset.
        wrong = dict(aes.__dict__, registry=stack.endpoints["plaintext"].registry)
        cfg = {"endpoint": wrong, "kek": stack.kek, "tenant": TENANT, "dim": 256,
               "inference_key": stack.ts.inference_key, "images": images, "sample_every": 1,
               "latency_out": str(tmp_path / "lat.json")}
        (tmp_path / "cfg.json").write_text(json.dumps(cfg))
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(REPO / "load_tests" / "locustfile.py"),
             "--headless", "-u", "1", "-r", "1", "-t", "2s", "--host", stack.ts.inference_url,
             "--csv", str(tmp_path / "bad"), "--only-summary", "EncryptedUser"],
            env=dict(os.environ, FL_LOAD_CONFIG=str(tmp_path / "cfg.json")),
            capture_output=True, text=True, timeout=120)

        def endpoint_run(registry: str, out: Path) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "load_tests.run", "--endpoint",
                 f"{stack.url}/predictions/{aes.model}", "--tenant", TENANT, "--registry",
                 registry, "--kek", stack.kek, "--users", "1", "--duration", "2",
                 "--sample-every", "2", "--out", str(out)],
                cwd=REPO, capture_output=True, text=True, timeout=180,
                env=dict(os.environ, FEATURELOCK_TOKEN=aes.token,
                         FEATURELOCK_INFERENCE_KEY=stack.ts.inference_key))

        good = endpoint_run(aes.registry, tmp_path / "ep")
        bad = endpoint_run(stack.endpoints["plaintext"].registry, tmp_path / "ep-bad")
    failures = (tmp_path / "bad_failures.csv").read_text()
    assert "envelope does not decrypt" in failures, proc.stderr[-2000:]
    assert proc.returncode == 1  # locust exits 1 when any request failed
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    doc = json.loads((tmp_path / "ep" / "summary.json").read_text())
    assert doc["scheme"] == "aes-256-gcm" and doc["dim"] == 256 and doc["failures"] == 0
    assert doc["requests"] > 0 and doc["decrypted"] >= 1
    assert not list((tmp_path / "ep").glob("*.config.json"))  # it names the KEK: removed
    assert bad.returncode == 1 and not (tmp_path / "ep-bad" / "summary.json").exists()
    assert bad.stderr.strip().splitlines()[-1] == ("load_tests.run: the endpoint's envelope "
                                                   "does not decrypt with this tenant's keyset")


def test_endpoint_mode_documents_itself():
    proc = subprocess.run([sys.executable, "-m", "load_tests.run", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for text in ("--endpoint URL", "--registry DIR", "--keyset FILE", "$FL_LOAD_CONFIG",
                 '"sample_every"', '"consumer_keyset"', "PlaintextUser|EncryptedUser"):
        assert text in proc.stdout
