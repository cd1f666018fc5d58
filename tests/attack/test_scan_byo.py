"""Scanning YOUR endpoint: your model file at any output size, your folder of images, verdicts
that say what was shown, and reports that survive an interrupt.

The model is a tiny untrained TorchScript network made here (an 8x4 thumbnail through a
random Linear to 512-d: not 256, and it carries identity the way any injective-ish map of the
image does); budgets and the decoder grid are small, so the file runs in seconds.
"""

from __future__ import annotations

import csv
import json
import os
import signal

import numpy as np
import pytest
import torch
from torch import nn

from featurelock.attack_harness.attack import ATTACKS, Attack, Finding, Outcome
from featurelock.attack_harness.attacks import attack_names
from featurelock.attack_harness.data import load_dataset, synthetic_data
from featurelock.attack_harness.errors import DatasetError, ScanError
from featurelock.attack_harness.metrics import Interval
from featurelock.attack_harness.reconstruction import DecoderConfig
from featurelock.attack_harness.reference import FileEvaluator, resolve_profile
from featurelock.attack_harness.report import summary_table, write_reports
from featurelock.attack_harness.scan import (EXIT_INCONCLUSIVE, ScanConfig, ScanResult, _gate,
                                             _verdicts, run_scan)
from featurelock.attack_harness.targets import local_targets
from featurelock.middleware.cli import main

DIM = 512
SMALL_GRID = DecoderConfig(lambdas=(1.0, 10.0), blurs=(0.0, 3.0), shrinks=(0.5, 1.0))


class _Thumbnail(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((8, 4))
        self.fc = nn.Linear(3 * 8 * 4, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared machine a second one mostly spins (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        path = tmp_path_factory.mktemp("byo") / "my_model.pt"
        torch.jit.script(_Thumbnail().eval()).save(str(path))
    finally:
        torch.random.set_rng_state(state)
    return path


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """16 identities x 4 PNG images, with cameras.csv and a per-identity attributes.csv."""
    from featurelock.attack_harness.targets import png_bytes
    from featurelock.models.synthetic import make_pedestrians

    root = tmp_path_factory.mktemp("people")
    s = make_pedestrians(64, 16, seed=4)
    rows, attrs = [["file", "camera"]], {}
    for i, (img, pid, cam) in enumerate(zip(s.images, s.ids, s.cams)):
        (root / f"p{pid:02d}").mkdir(exist_ok=True)
        name = f"p{pid:02d}/{i:03d}.png"
        (root / name).write_bytes(png_bytes(img[::2, ::2]))  # 64x32 on disk: fitted on load
        rows.append([name, f"cam{(i // 16) % 2}"])  # two cameras per person
        attrs[f"p{pid:02d}"] = ["man" if s.attribute("gender")[i] else "woman"]
    with (root / "cameras.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with (root / "attributes.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["identity", "gender"], *[[k, *v] for k, v in attrs.items()]])
    return root


# ------------------------------------------------------------------ bring your own data

def test_folder_dataset_splits_identities_and_fits_images_to_the_profile(people):
    data = load_dataset(f"folder:{people}", 24, seed=1, n_victim_ids=40, size=(128, 64))
    assert not set(data.aux_ids) & set(data.victim_ids)  # whole identities, never images
    assert len(data.aux_images) >= 24 and data.aux_images.shape[1:] == (128, 64, 3)
    assert data.victim_images.shape[1:] == (128, 64, 3)
    assert len(np.unique(data.victim_ids)) == 16 - len(np.unique(data.aux_ids))
    assert data.attribute_names == ("gender",) and data.attribute_classes == (2,)
    assert set(np.unique(data.victim_attributes)) <= {0, 1}
    q = data.victim_is_query
    assert q.sum() == len(np.unique(data.victim_ids[q]))  # one query per linkable victim
    for i in np.flatnonzero(q):  # each query has a true match in another camera
        same = (data.victim_ids == data.victim_ids[i]) & ~q
        assert (data.victim_cams[same] != data.victim_cams[i]).any()
    faces = load_dataset(f"folder:{people}", 24, seed=1, size=(112, 112))
    assert faces.aux_images.shape[1:] == (112, 112, 3)
    assert np.array_equal(faces.aux_ids, data.aux_ids)  # the seed, not the size, splits


def test_folder_dataset_refusals_name_the_problem(people, tmp_path):
    with pytest.raises(DatasetError, match="lower --budget"):
        load_dataset(f"folder:{people}", 62)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}", 8)
    bad = tmp_path / "bad"
    for person in ("alice", "bob", "carol"):
        (bad / person).mkdir(parents=True)
        for i in range(2):
            (bad / person / f"{i}.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot decode .*/0.png"):
        load_dataset(f"folder:{bad}", 2)
    (people / "cameras.csv").rename(tmp_path / "cams.csv")
    try:
        (people / "cameras.csv").write_text("file,camera\np00/000.png,a\n")
        with pytest.raises(DatasetError, match="no camera for"):
            load_dataset(f"folder:{people}", 24)
    finally:
        (tmp_path / "cams.csv").replace(people / "cameras.csv")


# ------------------------------------------------------------------ verdict words

def _finding(column, what, score, se, chance=0.5):
    return Finding(column, what, Interval(score, score - 2 * se, score + 2 * se, 0.95, se),
                   chance, 100, "float", summary=True)


def _judge(same_model=True, fail_if="protected-leak", not_applicable=None):
    attack = ATTACKS["linkability"](ScanConfig())
    found = {"ctl": [(attack, _finding("linkability", "zero-query", 0.9, 0.02, 0.01)),
                     (attack, _finding("attributes", "gender", 0.52, 0.05))],
             "aes": [(attack, _finding("linkability", "zero-query", 0.01, 0.01, 0.01)),
                     (attack, _finding("attributes", "gender", 0.50, 0.05))]}
    raw = {"ctl": {"scheme": "plaintext", "control": True},
           "aes": {"scheme": "aes-256-gcm", "control": False,
                   "not_applicable": not_applicable or {}}}
    config = ScanConfig(fail_if=fail_if)
    tests = _gate(found, config)
    verdicts = _verdicts(raw, tests, "ctl", same_model=same_model)
    return ScanResult(config, {}, "", "ctl", raw, tests, verdicts, {}, {}, 0.0)


def test_verdicts_lead_with_what_was_shown_and_fail_if_inconclusive():
    r = _judge(not_applicable={"identity": "no victim query has a true match"})
    aes = r.verdicts["aes"]
    assert aes["status"] == "INCONCLUSIVE" and not aes["leak"]
    assert aes["verdict"] == ("INCONCLUSIVE (no power for: attributes); within chance (power "
                              "shown for: linkability); not applicable: identity")
    assert aes["columns"]["identity"] == {"status": "not applicable",
                                          "reason": "no victim query has a true match"}
    assert r.exit_status() == 0  # the default gate fails on leaks only
    assert _judge(fail_if="inconclusive").exit_status() == EXIT_INCONCLUSIVE
    assert r.verdicts["ctl"]["verdict"] == "LEAKS"
    table = summary_table(r)
    assert "not applicable: no victim query has a true match" in table


def test_a_control_of_another_model_shows_no_power():
    r = _judge(same_model=False)
    aes = r.verdicts["aes"]
    assert aes["powered"] == [] and aes["columns"]["linkability"]["status"] == "inconclusive"
    assert aes["verdict"].startswith("INCONCLUSIVE (no power for: linkability, attributes)")


def test_a_remote_endpoint_without_your_model_is_never_within_chance():
    """The in-process control stands in for the endpoint's model only when it is that model."""
    from featurelock.attack_harness.reference import PixelEmbedder

    evaluator = PixelEmbedder()
    data = synthetic_data(48, 8, 4, seed=2)
    targets = local_targets(["aes-256-gcm"], evaluator.embed)
    config = ScanConfig(budget=48, progress=False, n_boot=100, attacks=("equality",),
                        representations=("float",))
    honest = run_scan(targets, config, data, evaluator, same_model=False)
    assert honest.control_note and honest.verdicts["aes-256-gcm"]["status"] == "INCONCLUSIVE"
    assert "NOTE: no control of the endpoints' model" in summary_table(honest)
    trusted = run_scan(targets, config, data, evaluator)
    assert trusted.verdicts["aes-256-gcm"]["verdict"] == \
        "within chance (power shown for: equality)"


# ------------------------------------------------------------------ any output dimension

@pytest.fixture(scope="module")
def scan_512(model_file, people):
    evaluator = FileEvaluator(model_file, resolve_profile("reid-128x64", model_file))
    assert evaluator.output_dim == DIM
    data = load_dataset(f"folder:{people}", 32, seed=0, size=(128, 64))
    targets = local_targets(["plaintext", "shufflebits", "aes-256-gcm"], evaluator.embed,
                            shufflebits_seed=1)
    config = ScanConfig(budget=32, progress=False, n_boot=100, rmle_steps=5, rmle_victims=2,
                        decoder=SMALL_GRID, attacks=attack_names(), inversion_steps=2,
                        representations=("float", "columns"))
    return run_scan(targets, config, data, evaluator)


@pytest.mark.parametrize("attack", attack_names())
def test_every_attack_runs_or_says_why_at_512_dimensions(scan_512, attack):
    for name, entry in scan_512.targets.items():
        details = entry["attacks"][attack]
        if details.get("status") == "not applicable":
            assert details["reason"], (name, attack)
        for column in ATTACKS[attack].columns:  # every column: scored, or not applicable
            assert column in scan_512.verdicts[name]["columns"], (name, attack, column)
    plain = scan_512.targets["plaintext"]["attacks"][attack]
    if attack == "rmle":
        assert plain["status"] == "ran"  # the insider inverts the 512-d TorchScript model
    if attack == "gan-inversion":  # the packaged prior inverts 256-d features only
        assert "256-d" in plain.get("reason", "256-d")


def test_the_512_d_plaintext_control_shows_power(scan_512):
    ctl = scan_512.verdicts["plaintext"]
    assert ctl["control"] and ctl["status"] == "LEAKS"
    for column in ("equality", "key recovery"):
        assert ctl["columns"][column]["status"] == "leak", column
    # Eight victims cannot show more after the correction over every test; the column is
    # scored (its reading of 512-d features ran), which is what this test is about.
    assert ctl["columns"]["linkability"]["status"] in ("leak", "inconclusive")
    assert scan_512.verdicts["shufflebits"]["columns"]["key recovery"]["status"] == "leak"
    assert not scan_512.verdicts["aes-256-gcm"]["leak"]


def test_model_file_needs_a_profile_and_must_run_on_it(model_file, tmp_path):
    with pytest.raises(ScanError, match="needs --profile"):
        resolve_profile(None, model_file)
    from featurelock.models.errors import ModelError

    flat = tmp_path / "flat.pt"
    torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(3 * 128 * 64, 8))).save(str(flat))
    with pytest.raises(ModelError, match="does not run on the profile 'arcface-112'"):
        FileEvaluator(flat, resolve_profile("arcface-112", flat))


# ------------------------------------------------------------------ partial reports

class _Interrupting(Attack):
    """Stands in for a user's Ctrl-C (or a SIGTERM) in the middle of a scan."""

    name = "interrupt-me"
    holds = "nothing"
    columns = ()
    how = "SIGINT"

    def run(self, view) -> Outcome:
        if self.how == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
        raise KeyboardInterrupt


@pytest.mark.parametrize("how,status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_scan_keeps_a_partial_report(how, status, model_file, people,
                                                     tmp_path, monkeypatch, capsys):
    interrupting = type("Interrupting", (_Interrupting,), {"how": how})
    monkeypatch.setitem(ATTACKS, "interrupt-me", interrupting)
    previous = signal.getsignal(signal.SIGTERM)
    code = main(["scan", "--local", "plaintext", "--local", "aes-256-gcm", "--model-file",
                 str(model_file), "--profile", "reid-128x64", "--dataset", f"folder:{people}",
                 "--budget", "24", "--representations", "float", "--attacks",
                 "equality,linkability,interrupt-me,attributes", "--report", str(tmp_path),
                 "--no-progress"])
    assert code == status
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is put back
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["partial"] and doc["progress"]["interrupted"] == how
    assert "attributes on local-aes-256-gcm" in doc["progress"]["attacks_pending"]
    done = doc["targets"]["local-aes-256-gcm"]["attacks"]
    assert set(done) == {"equality", "linkability"}
    assert doc["verdicts"]["local-aes-256-gcm"]["columns"]["equality"]["status"] == \
        "within chance"
    assert "my_model.pt (TorchScript" in doc["evaluator"]
    table = (tmp_path / "report.txt").read_text()
    assert table.startswith("PARTIAL REPORT") and "local-aes-256-gcm" in table
    assert (tmp_path / "report.html").is_file()
    assert "partial report" in capsys.readouterr().err


def test_cli_scans_a_folder_with_your_model_and_reports_not_applicable(model_file, people,
                                                                      tmp_path, capsys):
    (people / "attributes.csv").rename(tmp_path / "attributes.csv")
    try:
        code = main(["scan", "--local", "plaintext", "--local", "aes-256-gcm", "--model-file",
                     str(model_file), "--profile", "reid-128x64", "--dataset",
                     f"folder:{people}", "--budget", "24", "--representations", "float",
                     "--attacks", "equality,attributes", "--fail-if", "inconclusive",
                     "--report", str(tmp_path / "r"), "--no-progress"])
    finally:
        (tmp_path / "attributes.csv").replace(people / "attributes.csv")
    out = capsys.readouterr().out
    assert code == 0, out  # equality shown, attributes not applicable: nothing inconclusive
    assert "not applicable: no attribute labels in the data set" in out
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    assert not doc["partial"]
    aes = doc["verdicts"]["local-aes-256-gcm"]
    assert aes["verdict"] == ("within chance (power shown for: equality); not applicable: "
                              "attributes")
    assert doc["targets"]["local-aes-256-gcm"]["attacks"]["attributes"]["status"] == \
        "not applicable"
    assert "not applicable: no attribute labels" in (tmp_path / "r" / "report.html").read_text()


def test_ssim_against_fixed_victims_is_batch_ssim_bit_for_bit():
    """The scan scores every reading of every target against the same victims: their SSIM
    statistics are filtered once, and the numbers must not change."""
    from featurelock.attack_harness.metrics import SsimTruth, batch_ssim

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (6, 24, 16, 3), dtype=np.uint8)
    recon = rng.integers(0, 256, (6, 24, 16, 3), dtype=np.uint8)
    mean = truth.mean(axis=0).astype(np.uint8)
    cached = SsimTruth(truth)
    assert np.array_equal(cached(recon), batch_ssim(recon, truth))
    assert np.array_equal(cached(mean), batch_ssim(truth, mean))
    assert np.array_equal(cached(mean), batch_ssim(truth, mean))  # memoised: the same


def test_an_onnx_model_file_embeds_at_its_size_and_has_no_white_box(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from featurelock.attack_harness.attacks.rmle import WhiteBoxRmle

    path = tmp_path / "face.onnx"
    torch.onnx.export(_Thumbnail().eval(), (torch.zeros(1, 3, 112, 112),), str(path),
                      input_names=["input"], output_names=["embedding"],
                      dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
                      dynamo=False)
    evaluator = FileEvaluator(path, resolve_profile("arcface-112", path))
    out = evaluator.embed(np.zeros((3, 90, 70, 3), np.uint8))  # fitted to 112x112
    assert out.shape == (3, DIM) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert not hasattr(evaluator, "torch_forward") and "ONNX" in evaluator.description

    class _View:  # what rmle reads before it decides
        scheme, data = "plaintext", None

    view = _View()
    view.evaluator = evaluator
    outcome = WhiteBoxRmle(ScanConfig()).run(view)
    assert outcome.not_applicable and "ONNX" in outcome.not_applicable
