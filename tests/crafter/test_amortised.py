"""The distilled CraftNet, the weights files and the training chain's determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from featurelock.models.crafter import (CrafterTrainConfig, DistillConfig, GanConfig,
                                        InverterConfig, distill, load_craftnet, load_prior,
                                        save_craftnet, train_crafter)
from featurelock.models.crafter.amortised import CraftNet
from featurelock.models.crafter.crafting import CraftConfig
from featurelock.models.errors import ModelError, UnsafeModelFileError


def test_distilled_network_learns_the_optimisers_mapping_and_keeps_its_beta(tmp_path):
    g = torch.Generator().manual_seed(0)
    f0 = F.normalize(torch.randn(256, 32, generator=g), dim=1)
    rot = torch.linalg.qr(torch.randn(32, 32, generator=g))[0]
    target = F.normalize(f0 @ rot + 0.3, dim=1)  # a fixed smooth map the net must learn
    net = distill(f0, target, beta=2.5, config=DistillConfig(epochs=60, batch=32), seed=0)
    with torch.no_grad():
        err = ((net(f0) - target) ** 2).sum(1).mean().item()
    identity = ((f0 - target) ** 2).sum(1).mean().item()
    assert err < 0.2 * identity
    back = load_craftnet(save_craftnet(net, tmp_path / "c.pt"))
    assert back.beta.item() == 2.5
    with torch.no_grad():
        assert torch.allclose(back(f0), net(f0), atol=1e-2)  # float16 on disk


def test_weights_files_refuse_what_they_are_not(tmp_path):
    torch.save({"x": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ModelError):
        load_craftnet(tmp_path / "other.pt")
    with pytest.raises(ModelError):
        load_prior(tmp_path / "other.pt")
    torch.save(CraftNet(8), tmp_path / "pickled.pt")  # a whole module: a pickle, refused
    with pytest.raises(UnsafeModelFileError):
        load_craftnet(tmp_path / "pickled.pt")


def test_training_chain_is_deterministic_for_a_seed(tmp_path):
    from featurelock.attack_harness.reference import PixelEmbedder

    torch.set_num_threads(1)
    enc = PixelEmbedder(dim=32).torch_forward
    cfg = CrafterTrainConfig(public_images=16, distill_images=8, betas=(1.0,),
                             gan=GanConfig(steps=2, critic_steps=1, batch=8, width=8),
                             inverter=InverterConfig(steps=2, batch=8),
                             craft=CraftConfig(outer_steps=2, critic_steps=1, refine=1),
                             distill=DistillConfig(epochs=2), craft_batch=8)
    runs = [train_crafter(enc, 32, tmp_path / str(i), cfg) for i in range(2)]
    for name in ("prior.pt", "craft-beta1.pt"):
        a, b = (torch.load(tmp_path / str(i) / name, weights_only=True) for i in range(2))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0]["betas"]["1"]["optimiser_seconds_per_batch"] > 0


def test_crafter_train_command_writes_the_prior_and_a_network(tmp_path):
    from featurelock.middleware.cli import main

    code = main(["crafter", "train", "--out", str(tmp_path), "--betas", "2", "--public-images",
                 "16", "--distill-images", "8", "--gan-steps", "1", "--inverter-steps", "1",
                 "--craft-steps", "1", "--distill-epochs", "1", "--no-progress"])
    assert code == 0
    assert load_craftnet(tmp_path / "craft-beta2.pt").beta.item() == 2.0
    G, inv = load_prior(tmp_path / "prior.pt")
    assert G.latent == inv.net[-1].out_features
