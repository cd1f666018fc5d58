"""serve_config/kserve/*.yaml against kserve 0.21's own API models, strictly.

Every key must be a field of the model at its place (kserve.models, or kubernetes.client.models
for the pod parts), checked through each model's attribute_map; an unknown or misspelt field
fails. Every object is then built through the model's constructor, so its own validation runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("featurelock.handlers._kserve_import")  # kserve, sys.argv shielded
kserve_models = pytest.importorskip("kserve.models")
k8s_models = pytest.importorskip("kubernetes.client.models")

CONFIG = Path(__file__).resolve().parents[2] / "serve_config" / "kserve"
_PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float),
               "ResourceQuantity": (str, int)}


def _model_class(name: str):
    for module in (kserve_models, k8s_models):
        cls = getattr(module, name, None)
        if cls is not None:
            return cls
    raise AssertionError(f"no API model named {name}")


def build(value, type_name: str, where: str):
    """`value` as an instance of the API type `type_name`; AssertionError on any unknown field."""
    if m := re.fullmatch(r"[lL]ist\[(.*)\]", type_name):
        assert isinstance(value, list), f"{where}: expected a list"
        return [build(v, m.group(1), f"{where}[{i}]") for i, v in enumerate(value)]
    if m := re.fullmatch(r"dict\(([^,]*), (.*)\)|Dict\[([^,]*), (.*)\]", type_name):
        assert isinstance(value, dict), f"{where}: expected a mapping"
        value_type = m.group(2) or m.group(4)
        return {k: build(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if type_name in _PRIMITIVES:
        assert isinstance(value, _PRIMITIVES[type_name]) and not (
            type_name != "bool" and isinstance(value, bool)), f"{where}: expected {type_name}"
        return value
    if type_name in ("datetime", "bytes"):  # never written in these manifests
        raise AssertionError(f"{where}: unexpected {type_name} field")
    if type_name == "object":
        return value
    cls = _model_class(type_name)
    assert isinstance(value, dict), f"{where}: expected a {type_name} mapping"
    by_json = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    unknown = sorted(set(value) - set(by_json))
    assert not unknown, f"{where}: {type_name} has no field(s) {unknown}"
    kwargs = {by_json[k]: build(v, cls.openapi_types[by_json[k]], f"{where}.{k}")
              for k, v in value.items()}
    return cls(**kwargs)


def load(name: str) -> dict:
    return yaml.safe_load((CONFIG / name).read_text(encoding="utf-8"))


def test_the_strict_check_refuses_unknown_fields():
    doc = load("servingruntime.yaml")
    doc["spec"]["containers"][0]["volumeMount"] = []  # misspelt
    with pytest.raises(AssertionError, match="volumeMount"):
        build(doc, "V1alpha1ServingRuntime", "runtime")


def test_servingruntime():
    doc = load("servingruntime.yaml")
    assert doc["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert doc["kind"] in ("ServingRuntime", "ClusterServingRuntime")
    runtime = build(doc, f"V1alpha1{doc['kind']}", "runtime")
    (container,) = runtime.spec.containers
    assert container.command[:3] == ["python", "-m", "featurelock.handlers.kserve_server"]
    args = container.args
    assert args[args.index("--model-dir") + 1] == "/mnt/models"
    assert "--host" not in args  # loopback, the default
    env = {e.name: e.value for e in container.env}
    kek = env["FEATURELOCK_KEK"]
    assert kek.startswith("file:") and env["FEATURELOCK_KEY_REGISTRY"].startswith("/")
    # keys come only from mounted Secrets, read-only, never from env values
    mounts = {m.mount_path: m for m in container.volume_mounts}
    volumes = {v.name: v for v in runtime.spec.volumes}
    registry = mounts[env["FEATURELOCK_KEY_REGISTRY"]]
    kek_mount = mounts[str(Path(kek.removeprefix("file:")).parent)]
    for mount in (registry, kek_mount):
        assert mount.read_only is True
        secret = volumes[mount.name].secret
        assert secret is not None and secret.default_mode == 0o400
    assert volumes[registry.name].secret.secret_name != volumes[kek_mount.name].secret.secret_name
    assert not any(e.value_from for e in container.env)
    ctx = container.security_context
    assert ctx.allow_privilege_escalation is False and ctx.read_only_root_filesystem is True
    assert ctx.capabilities.drop == ["ALL"]
    assert {"v1", "v2"} <= set(runtime.spec.protocol_versions)


def test_inferenceservice_uses_the_runtime():
    runtime = load("servingruntime.yaml")
    doc = load("inferenceservice.yaml")
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    isvc = build(doc, "V1beta1InferenceService", "isvc")
    model = isvc.spec.predictor.model
    assert model.runtime == runtime["metadata"]["name"]
    assert model.model_format.name in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert isvc.spec.transformer is None and isvc.spec.explainer is None
    text = (CONFIG / "inferenceservice.yaml").read_text()
    assert "FEATURELOCK_KEK" not in text and "secret" not in text.split("spec:", 1)[1].lower()
