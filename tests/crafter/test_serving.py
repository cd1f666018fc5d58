"""`scheme: crafter` in the one serving pipeline: crafted JSON features, a craft stage, the
tenant token still required, and no plaintext when crafting fails."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from featurelock.attack_harness.targets import png_bytes
from featurelock.handlers.errors import ServerConfigError
from featurelock.handlers.pipeline import Request, ServingPipeline, load_crafter
from featurelock.handlers.serving_config import ServingConfig
from featurelock.handlers.serving_state import ServingState
from featurelock.handlers.tenant_tokens import TenantTokens
from featurelock.middleware.metrics import HistogramState
from featurelock.models.crafter import save_craftnet
from featurelock.models.crafter.amortised import CraftNet
from featurelock.models.profiles import REID_128x64
from featurelock.models.synthetic import make_pedestrians

DIM = 12


class _Fixed:
    def __init__(self, state):
        self.state = state

    def current(self):
        return self.state


def _runner(x: torch.Tensor) -> torch.Tensor:
    """A deterministic stand-in model: per-channel means of 4 horizontal bands, unit norm."""
    bands = torch.stack([b.mean(dim=(2, 3)) for b in x.chunk(4, dim=2)], 1).flatten(1)
    return torch.nn.functional.normalize(bands, dim=1)


def _config(**over) -> ServingConfig:
    doc = {"scheme": "crafter", "model": "reid", "version": "1", "model_file": "m.pt",
           "backend": "torchscript", "profile": REID_128x64.to_dict(),
           "crafter_file": "craft.pt", "beta": 2.0, **over}
    return ServingConfig.from_model_yaml({"featurelock": doc})


@pytest.fixture
def served(tmp_path):
    tokens = TenantTokens(tmp_path)
    token = tokens.issue("acme")
    torch.manual_seed(0)
    net = CraftNet(DIM, 16, beta=2.0)
    with torch.no_grad():
        net.net[-1].weight.mul_(20)  # a visible perturbation from an untrained net
    save_craftnet(net, tmp_path / "craft.pt")
    rec = HistogramState("reid", "crafter")
    pipe = ServingPipeline(_config(), _Fixed(ServingState(1, tokens, {})), _runner, rec,
                           load_crafter(_config(), tmp_path))
    creds = {"X-Featurelock-Tenant": "acme", "X-Featurelock-Token": token}
    img = make_pedestrians(2, 2, seed=3).images
    return pipe, creds, [png_bytes(i) for i in img], rec


def test_crafter_answers_crafted_marked_json_and_records_a_craft_stage(served):
    pipe, creds, pngs, rec = served
    out = pipe.serve([Request(creds, {"body": pngs[0]}), Request({}, {"body": pngs[1]})])
    assert [r.status for r in out] == [200, 401]  # the token is still required
    doc = json.loads(out[0].body)
    assert doc["scheme"] == "crafter" and doc["beta"] == 2.0
    crafted = np.asarray(doc["features"], np.float32)
    batch = pipe.decode([Request(creds, {"body": pngs[0]})])
    plain = _runner(batch.inputs).numpy()
    assert crafted.shape == plain.shape
    assert np.abs(crafted - plain).max() > 1e-2  # what left the worker is not the plaintext
    stages = {labels[2] for name, labels, _ in rec.drain() if name.endswith("_sum")}
    assert {"inference", "craft"} <= stages and "encrypt" not in stages


def test_a_failing_crafter_answers_500_without_features(served):
    pipe, creds, pngs, _ = served

    def broken(f):
        return f * float("nan")  # non-finite: refused, like any exception

    pipe.crafter = broken
    out = pipe.serve([Request(creds, {"body": p}) for p in pngs])
    assert [r.status for r in out] == [500, 500]
    assert all("features" not in json.loads(r.body) for r in out)


def test_crafter_config_and_file_are_checked(tmp_path):
    with pytest.raises(ServerConfigError, match="crafter_file"):
        _config(crafter_file="")
    with pytest.raises(ServerConfigError, match="beta"):
        _config(beta=-1)
    with pytest.raises(ServerConfigError, match="crafter only"):
        _config(scheme="aes-256-gcm")
    save_craftnet(CraftNet(DIM, 16, beta=5.0), tmp_path / "craft.pt")
    with pytest.raises(ServerConfigError, match="beta 5"):
        load_crafter(_config(), tmp_path)
    with pytest.raises(ServerConfigError, match="required"):
        ServingPipeline(_config(), _Fixed(None), _runner)
