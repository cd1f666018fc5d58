"""End-to-end: `featurelock scan` machinery against a real TorchServe over HTTP."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ts")
from featurelock.attack_harness.data import synthetic_data  # noqa: E402
from featurelock.attack_harness.reference import ZooEvaluator  # noqa: E402
from featurelock.attack_harness.report import write_reports  # noqa: E402
from featurelock.attack_harness.scan import ScanConfig, run_scan  # noqa: E402
from featurelock.attack_harness.targets import HttpTarget  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SCHEMES = ("plaintext", "aes-256-gcm", "shufflebits", "shufflebits-otp", "hpke-x25519")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from featurelock.handlers.stack import Stack

    with Stack.build(tmp_path_factory.mktemp("scan-e2e"), SCHEMES, tenant="attacker") as stack:
        yield stack.ts, {s: e.token for s, e in stack.endpoints.items()}


def test_small_scan_over_http(server, tmp_path):
    ts, tokens = server
    targets = {s: HttpTarget(f"{ts.inference_url}/predictions/ts-{s}", tenant="attacker",
                             token=tokens[s], inference_key=ts.inference_key, name=s)
               for s in SCHEMES}
    evaluator = ZooEvaluator()  # the same weights export_default_model served
    data = synthetic_data(64, 8, 4, seed=5)
    config = ScanConfig(budget=64, progress=False, representations=("float", "bits", "columns"),
                        rmle_steps=5, n_boot=200, rate_limit=500.0)
    try:
        # Over HTTP, the plaintext endpoint answers what the local model computes.
        served = targets["plaintext"].query(data.victim_images[:4])
        assert np.allclose(np.stack(served), evaluator.embed(data.victim_images[:4]), atol=1e-4)
        result = run_scan(targets, config, data, evaluator)
    finally:
        for t in targets.values():
            t.close()
    assert {n: v["scheme"] for n, v in result.verdicts.items()} == {s: s for s in SCHEMES}
    assert result.control == "plaintext"  # the endpoint's plaintext twin
    assert all(t["queries_charged"] == 64 for t in result.targets.values())
    assert not result.verdicts["aes-256-gcm"]["leak"]
    assert not result.verdicts["hpke-x25519"]["leak"]  # sealed to a key the server never held
    assert result.targets["plaintext"]["attacks"]["rmle"]["status"] == "ran"
    # Over HTTP too: the served shufflebits key falls to the insider's known pairs, and the
    # same image sent twice comes back identical.
    sb = result.verdicts["shufflebits"]["columns"]
    assert sb["key recovery"]["status"] == "leak" and sb["equality"]["status"] == "leak"
    # A fresh permutation per message: the bytes differ, the canonical forms do not, whatever
    # last bits the server's batching changed.
    otp = [t for t in result.tests if t["target"] == "shufflebits-otp" and t["leak"]
           and t["column"] == "equality"]
    assert [t["what"] for t in otp] == ["equal canonical forms"]
    for sealed in ("aes-256-gcm", "hpke-x25519"):
        assert result.verdicts[sealed]["columns"]["equality"]["status"] == "within chance"
    paths = write_reports(result, tmp_path)
    assert paths["html"].stat().st_size > 10_000
