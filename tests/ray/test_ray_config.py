"""The Ray Serve adapter without a cluster: options, the application builder, and the shipped
Serve configs checked against Ray Serve's own schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray.serve")

from featurelock.handlers.errors import BadInput  # noqa: E402
from featurelock.handlers.ray_serve import (RayModel, RayOptions, _payload,  # noqa: E402
                                            build_app)

from fl_serving_helpers import export_default_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_options_become_deployment_options():
    fixed = RayOptions(num_replicas=3, num_cpus=2, num_gpus=1).deployment_options()
    assert fixed["num_replicas"] == 3 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 1}
    scaling = RayOptions(autoscaling={"min_replicas": 1, "max_replicas": 4}).deployment_options()
    assert scaling["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4}
    assert "num_replicas" not in scaling  # Ray refuses both at once


def test_json_bodies_are_decoded_and_bad_json_is_a_400():
    assert _payload(b'{"image": "aGk="}', "application/json; charset=utf-8") == \
        {"body": {"image": "aGk="}}
    assert _payload(b"\x89PNG", "image/png") == {"body": b"\x89PNG"}
    with pytest.raises(BadInput):
        _payload(b"{not json", "application/json")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ray-config") / "export"
    export_default_model(out)
    return out


def test_builder_binds_no_keys_and_refuses_unknown_options(export_dir, monkeypatch):
    monkeypatch.setenv("FEATURELOCK_KEK", "file:/does/not/matter")
    app = build_app({"model_dir": str(export_dir), "scheme": "aes-256-gcm", "name": "reid",
                     "num_replicas": 2, "max_batch_size": 4})
    deployment = app._bound_deployment
    assert deployment.name == "reid" and deployment.num_replicas == 2
    section, model_path, max_batch, _wait, _identify = deployment.init_args
    assert section["scheme"] == "aes-256-gcm" and Path(model_path).is_file() and max_batch == 4
    # What Ray pickles into its GCS: plain values, no key material, not even the KEK URI.
    assert "file:/does/not/matter" not in repr(deployment.init_args)
    with pytest.raises(ValueError, match="unknown featurelock Ray options: replica"):
        build_app({"model_dir": str(export_dir), "scheme": "aes-256-gcm", "name": "reid",
                   "replica": 2})
    model = RayModel.from_export(export_dir, "plaintext", "reid-plain")
    assert model.config.plaintext and model.config.model == "reid-plain"


@pytest.mark.parametrize("path", ["serve_config/ray-serve.yaml",
                                  "serve_config/kuberay/rayservice.yaml"])
def test_shipped_serve_configs_match_ray_serves_schema(path):
    from ray.serve.schema import ServeDeploySchema

    doc = yaml.safe_load((REPO / path).read_text())
    if doc.get("kind") == "RayService":
        doc = yaml.safe_load(doc["spec"]["serveConfigV2"])
    schema = ServeDeploySchema.model_validate(doc)
    (app,) = schema.applications
    assert app.import_path == "featurelock.handlers.ray_serve:build_app"
    assert app.route_prefix == f"/predictions/{app.args['name']}"
    known = set(RayOptions.__dataclass_fields__) | {"model_dir", "scheme", "name", "version",
                                                    "backend", "serving"}
    assert set(app.args) <= known, set(app.args) - known
    assert not app.runtime_env  # nothing for Ray to store: keys come from the nodes


def test_rayservice_mounts_the_registry_and_kek_on_every_pod():
    doc = yaml.safe_load((REPO / "serve_config/kuberay/rayservice.yaml").read_text())
    cluster = doc["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + \
        [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:
        (container,) = pod["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["FEATURELOCK_KEK"].startswith("file:/var/run/featurelock/kek/")
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts[env["FEATURELOCK_KEY_REGISTRY"]]["readOnly"]
        assert all(v["secret"]["defaultMode"] == 0o400 for v in pod["volumes"])
