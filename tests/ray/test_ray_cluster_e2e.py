"""A real Ray cluster of three raylets on loopback (ray.cluster_utils.Cluster) serving the
default model through featurelock's Ray Serve deployment: one replica per node, responses that
decrypt (bit-exactly the replica's features) to local inference within CROSS_PROCESS_TOL, the TorchServe statuses, Ray's metrics, no key bytes
anywhere Ray keeps things, and a replica killed under load."""

from __future__ import annotations

import base64
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.serve")

from featurelock.handlers.client import EndpointClient  # noqa: E402
from featurelock.handlers.packaging import resolve_model  # noqa: E402
from featurelock.middleware import Context, FeatureReader  # noqa: E402
from featurelock.middleware.errors import DecryptionError  # noqa: E402
from featurelock.models.profiles import InputProfile  # noqa: E402

from fl_serving_helpers import (BYO, BYO_TOL, Reference, assert_same_features,  # noqa: E402
                                byo_reference, export_default_model, face_pngs, file_kek,
                                keyset, make_registry, pedestrian_pngs, user_models)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

NODES = 3
MODEL = "reid-ray"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from featurelock.handlers.ray_local import LocalRayCluster
    from featurelock.handlers.ray_serve import RayModel, RayOptions

    root = tmp_path_factory.mktemp("ray-e2e")
    export_default_model(root / "export")
    kek = file_kek(root)
    tokens = make_registry(root / "reg", "aes-256-gcm", kek, tenants=("acme", "globex"))
    env = {"FEATURELOCK_KEK": kek, "FEATURELOCK_KEY_REGISTRY": str(root / "reg")}
    source = resolve_model(root / "export", "torchscript")
    model = RayModel.from_export(root / "export", "aes-256-gcm", MODEL, backend="torchscript")
    with LocalRayCluster(nodes=NODES, cpus_per_node=1, env=env) as cluster:
        # Batches of one, like the reference: the rows then differ from it only by the
        # replica's thread count (float reduction order), within CROSS_PROCESS_TOL.
        url = cluster.deploy(model, RayOptions(num_replicas=NODES, num_cpus=1, max_batch_size=1,
                                               max_ongoing_requests=4, identify_node=True))
        yield {"cluster": cluster, "url": url, "tokens": tokens, "kek": kek, "root": root,
               "reg": root / "reg", "images": pedestrian_pngs(6),
               "ref": Reference(source.model_file, "torchscript",
                                InputProfile.from_dict(source.profile))}


def _client(served, tenant="acme", token=None) -> EndpointClient:
    token = served["tokens"][tenant] if token is None else token
    return EndpointClient(served["cluster"].url, MODEL, tenant, token, None)


def _replica_nodes() -> dict[str, str]:
    from featurelock.handlers.ray_local import LocalRayCluster

    return LocalRayCluster.replica_nodes(MODEL)


def test_one_replica_per_node_each_decrypts_to_local_inference(served):
    nodes = _replica_nodes()
    assert len(nodes) == NODES and len(set(nodes.values())) == NODES  # spread: 1 CPU per node
    assert set(nodes.values()) == set(served["cluster"].node_ids())
    ks = keyset(served["reg"], served["kek"], "acme")
    images = served["images"]
    expected = [served["ref"]([image]) for image in images]

    def send(worker: int) -> list[tuple[str, int, np.ndarray]]:
        client, out = _client(served), []
        for i in range(12):
            k = (worker + i) % len(images)
            r = client.embed(images[k])
            assert r.status == 200 and r.body[:3] == b"FLK"
            out.append((r.headers["x-featurelock-node"], k, client.read(r, ks)))
        return out

    # Concurrent clients: Ray's router prefers the proxy's own node while it keeps up.
    with ThreadPoolExecutor(6) as pool:
        answers = [a for batch in pool.map(send, range(6)) for a in batch]
    for _node, k, got in answers:
        assert_same_features(got, expected[k])
    # One replica per node is asserted above; which replicas answer is the router's choice
    # (it prefers the proxy's own node while that keeps up), so only a spread is required.
    seen = {node for node, _, _ in answers}
    assert seen <= set(nodes.values()) and len(seen) >= 2, \
        f"answered by {len(seen)} of {NODES} nodes"


def test_statuses_match_torchserve(served):
    good = served["images"][0]
    assert _client(served, token="wrong").embed(good).status == 403
    anon = EndpointClient(served["cluster"].url, MODEL, None, None, None)
    assert anon.embed(good).status == 401
    # credentials before the body: a malformed or oversized body without them is a 401 too
    assert anon.embed(b"{not json", headers={"Content-Type": "application/json"}).status == 401
    assert anon.embed(b"x" * (9 * 1024 * 1024 * 4 // 3)).status == 401
    r = _client(served).embed(b"\x89PNG not really")
    assert r.status == 400 and r.json() == {"error": "input is not a valid image", "status": 400}
    r = _client(served).embed(b"x" * (9 * 1024 * 1024 * 4 // 3))  # over max_body_bytes
    assert r.status == 413 and r.json()["error"] == "request too large"
    r = _client(served).embed(good, json=True)  # {"image": base64} in, JSON envelope out
    assert r.status == 200 and r.content_type == "application/json"
    ks = keyset(served["reg"], served["kek"], "acme")
    assert_same_features(_client(served).read(r, ks), served["ref"]([good]))
    r = _client(served).embed(good, headers={"explain": "True"})
    assert r.status == 405
    # A tenant's envelope does not open under another tenant's keys or context.
    r = _client(served, "globex").embed(good)
    with pytest.raises(DecryptionError):
        FeatureReader(ks).read(r.body, Context(MODEL, "1", "globex"))


def _ray_series() -> list[str]:
    import ray

    text = ""
    for node in ray.nodes():
        port = node.get("MetricsExportPort")
        if node["Alive"] and port:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                text += resp.read().decode()
    return [line for line in text.splitlines() if line.startswith("ray_featurelock_")]


def test_ray_metrics_carry_featurelock_series(served):
    # Replicas publish every second; Ray's agents export on their own period.
    deadline, lines = time.monotonic() + 45, []
    while time.monotonic() < deadline:
        lines = _ray_series()
        if any('outcome="unauthenticated"' in line for line in lines):
            break
        time.sleep(1)
    assert any(line.startswith("ray_featurelock_requests_total{") and 'outcome="ok"' in line
               for line in lines)
    assert any('outcome="unauthenticated"' in line for line in lines)
    for stage in ("decode", "inference", "encrypt", "handler"):
        assert any(line.startswith("ray_featurelock_stage_duration_seconds_bucket_total{")
                   and f'stage="{stage}"' in line and f'model="{MODEL}"' in line for line in lines)
    assert any(line.startswith("ray_featurelock_key_registry_generation{") for line in lines)
    assert not any("tenant" in line for line in lines)  # low-cardinality labels only


def test_no_key_bytes_in_ray_logs_kv_or_arguments(served):
    """Ray keeps logs per session, the deployment's arguments and state in its internal KV
    store (GCS): none of them may hold key material, the KEK or a token."""
    import ray
    from ray.experimental import internal_kv

    secrets = [token for token in served["tokens"].values()]
    secrets.append(Path(served["kek"].removeprefix("file:")).read_text().strip())
    for tenant in ("acme", "globex"):
        ks = keyset(served["reg"], served["kek"], tenant)
        for key in ks._keys.values():
            secrets += [key.material.hex(), base64.b64encode(key.material).decode()]
    raw = [s.encode() for s in secrets] + [key.material for t in ("acme", "globex")
                                           for key in keyset(served["reg"], served["kek"],
                                                             t)._keys.values()]
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    scanned = 0
    for path in session.rglob("*"):
        if path.is_file() and path.stat().st_size < 64 * 1024 * 1024:
            data = path.read_bytes()
            scanned += 1
            assert not any(s in data for s in raw), f"key material in {path}"
    assert scanned > 10
    for namespace in (None, "serve"):
        for key in internal_kv._internal_kv_list("", namespace=namespace):
            value = internal_kv._internal_kv_get(key, namespace=namespace) or b""
            assert not any(s in value for s in raw), f"key material in GCS KV {key!r}"


def test_killed_replica_is_replaced_and_nothing_leaks(served):
    """Kill one replica while clients send: every response is a decryptable envelope or an
    error body (never features), the failures are counted, and the replica comes back."""
    import ray

    ks = keyset(served["reg"], served["kek"], "acme")
    results: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def send() -> None:
        client = _client(served)
        n = 0
        while not stop.is_set() and n < 400:
            r = client.embed(served["images"][n % len(served["images"])])
            results.append((r.status, r.body))
            n += 1

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    victim = sorted(_replica_nodes())[0]
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    killed = time.monotonic()
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(60)
    failed = 0
    for status, body in results:
        if status == 200:
            features = FeatureReader(ks).read(body, Context(MODEL, "1", "acme"))
            assert features.shape[0] == 1
        else:
            failed += 1
            assert b"features" not in body and b"FLK" not in body
            assert 500 <= status < 600
    assert len(results) > 20 and failed < len(results) // 2
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(_replica_nodes()) < NODES:
        time.sleep(0.2)
    print(f"\nkilled {victim}: {len(results)} responses, {failed} failed (5xx, no features); "
          f"{NODES} replicas alive again {time.monotonic() - killed:.1f} s after the kill")
    assert len(_replica_nodes()) == NODES and victim not in _replica_nodes()
    r = _client(served).embed(served["images"][0])
    assert r.status == 200


def test_the_scan_harness_queries_the_ray_endpoint(served):
    """`featurelock scan --endpoint http://host:port/predictions/<model>` on Ray: the black-box
    target sees envelopes, identifies the scheme, and the keyed consumer reads them."""
    from featurelock.attack_harness.targets import HttpTarget
    from featurelock.models.synthetic import make_pedestrians

    target = HttpTarget(served["url"], tenant="acme", token=served["tokens"]["acme"],
                        inference_key=None, name="ray")
    try:
        images = make_pedestrians(4, n_ids=4, seed=3).images
        answers = target.query(images)
    finally:
        target.close()
    assert target.scheme == "aes-256-gcm" and all(a[:3] == b"FLK" for a in answers)
    ks = keyset(served["reg"], served["kek"], "acme")
    for answer in answers:
        assert FeatureReader(ks).read(answer, Context(MODEL, "1", "acme")).shape == (1, 256)


def test_an_onnx_model_serves_beside_it(served):
    """The ONNX backend on Ray: its own application on the same cluster, equal to local
    onnxruntime within CROSS_PROCESS_TOL. num_cpus=0: the TorchScript replicas hold every node's one CPU."""
    from featurelock.handlers.ray_serve import RayModel, RayOptions

    model = RayModel.from_export(served["root"] / "export", "aes-256-gcm", "reid-ray-onnx",
                                 backend="onnx")
    url = served["cluster"].deploy(model, RayOptions(num_cpus=0))
    source = resolve_model(served["root"] / "export", "onnx")
    ref = Reference(source.model_file, "onnx", InputProfile.from_dict(source.profile))
    client = EndpointClient(served["cluster"].url, "reid-ray-onnx", "acme",
                            served["tokens"]["acme"], None)
    ks = keyset(served["reg"], served["kek"], "acme")
    assert url.endswith("/predictions/reid-ray-onnx")
    for image in served["images"][:3]:
        r = client.embed(image)
        assert r.status == 200
        assert_same_features(client.read(r, ks), ref([image]))


def test_user_models_serve_with_their_profiles(served):
    """Bring your own model on Ray: a user's 512-d re-ID TorchScript and 128-d face ONNX files,
    each with its profile (test-run before deploying), decrypt to local inference (BYO_TOL)."""
    from featurelock.handlers.ray_serve import RayModel, RayOptions

    models = user_models(served["root"] / "byo")
    ks = keyset(served["reg"], served["kek"], "acme")
    for key, profile in BYO.items():
        name = f"ray-byo-{key}"
        served["cluster"].deploy(RayModel.from_export(models[key], "aes-256-gcm", name,
                                                      profile=profile), RayOptions(num_cpus=0))
        client = EndpointClient(served["cluster"].url, name, "acme", served["tokens"]["acme"],
                                None)
        ref = byo_reference(models, key)
        for image in (face_pngs(2) if key == "face128" else served["images"][:2]):
            r = client.embed(image)
            assert r.status == 200
            got = client.read(r, ks)
            assert got.shape == (1, 512 if key == "reid512" else 128)
            np.testing.assert_allclose(got, ref([image]), rtol=0, atol=BYO_TOL)


def test_autoscaling_from_config_adds_a_replica_under_load(served):
    """RayOptions.autoscaling is Ray Serve's autoscaling_config: one replica at rest, a second
    once six clients keep more requests in flight than the target."""
    from featurelock.handlers.ray_local import LocalRayCluster
    from featurelock.handlers.ray_serve import RayModel, RayOptions

    name = "reid-ray-auto"
    model = RayModel.from_export(served["root"] / "export", "aes-256-gcm", name,
                                 backend="torchscript")
    served["cluster"].deploy(model, RayOptions(num_cpus=0, autoscaling={
        "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
        "upscale_delay_s": 1}))
    assert len(LocalRayCluster.replica_nodes(name)) == 1
    stop, statuses = threading.Event(), []

    def send() -> None:
        client = EndpointClient(served["cluster"].url, name, "acme", served["tokens"]["acme"], None)
        while not stop.is_set() and len(statuses) < 3000:
            statuses.append(client.embed(served["images"][0]).status)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(LocalRayCluster.replica_nodes(name)) < 2:
            time.sleep(0.5)
        replicas = len(LocalRayCluster.replica_nodes(name))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert replicas == 2 and set(statuses) == {200}
