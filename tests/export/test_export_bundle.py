"""Export to TorchScript + ONNX: files, checker, dynamic batch, parity gate, sidecar."""

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from featurelock.export.bundle import check_parity, export_model, export_model_file, parity_inputs
from featurelock.export.errors import ExportError, ParityError
from featurelock.export.parity import compare, require
from featurelock.export.sidecar import REPORT_NAME, SIDECAR_NAME, profile_of, read_sidecar
from featurelock.models.errors import ProfileError
from featurelock.models.profiles import ARCFACE_112, REID_128x64
from featurelock.models.zoo import load_model


@pytest.fixture(scope="module")
def reid_export(tmp_path_factory):
    model = load_model("reid-compact")
    return model, export_model(model, tmp_path_factory.mktemp("reid"))


def _assert_passed(result, n_backends=2):
    assert {(r.backend, r.batch_size) for r in result.parity} == {
        (b, n) for b in ("torchscript", "onnxruntime")[:n_backends] for n in (1, 8)}
    for r in result.parity:
        assert r.passed and r.min_cosine >= 0.9999, r


def test_reid_export_passes_parity_and_writes_sidecar(reid_export):
    model, result = reid_export
    _assert_passed(result)
    sidecar = read_sidecar(result.out_dir)  # also verifies the files' sha256
    assert sidecar["model"] == "reid-compact" and sidecar["output"]["dim"] == 256
    assert sidecar["output"]["l2_normalized"] is True
    assert profile_of(sidecar) == REID_128x64
    report = json.loads((result.out_dir / REPORT_NAME).read_text())
    assert report["passed"] is True and len(report["results"]) == 4


def test_onnx_file_is_valid_with_dynamic_batch(reid_export):
    _, result = reid_export
    proto = onnx.load(str(result.files["onnx"]))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(result.files["onnx"]), providers=["CPUExecutionProvider"])
    for n in (1, 8):
        out = session.run(None, {"input": np.random.default_rng(n).normal(
            size=(n, 3, 128, 64)).astype(np.float32)})[0]
        assert out.shape == (n, 256)
        assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_torchscript_file_runs_any_batch(reid_export):
    _, result = reid_export
    module = torch.jit.load(str(result.files["torchscript"]))
    assert module(torch.randn(5, 3, 128, 64)).shape == (5, 256)


def test_parity_fails_against_a_different_model(reid_export, tmp_path):
    _, result = reid_export
    torch.manual_seed(1)
    other = load_model("reid-compact", pretrained=False)
    x = parity_inputs(REID_128x64, 8)
    results = check_parity(other, "onnx", result.files["onnx"], x)
    assert not any(r.passed for r in results)
    with pytest.raises(ParityError, match="parity failed"):
        require(results)


def test_failed_parity_writes_report_but_no_sidecar(tmp_path):
    model = load_model("reid-compact")
    with pytest.raises(ParityError):
        export_model(model, tmp_path, formats_=("onnx",), min_cosine=1.5)  # unreachable bar
    assert not (tmp_path / SIDECAR_NAME).exists()
    assert json.loads((tmp_path / REPORT_NAME).read_text())["passed"] is False


def test_compare_rule():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    r = compare(a, np.array([[1.0, 0.0], [1.0, 1.0]]), "x")
    assert r.min_cosine == pytest.approx(2 ** -0.5) and r.max_abs_diff == 1.0 and not r.passed
    assert not compare(a, np.full_like(a, np.nan), "x").passed
    with pytest.raises(ParityError, match="shape"):
        compare(a, a[:1], "x")


def test_tampered_file_is_detected(tmp_path):
    result = export_model(load_model("reid-compact"), tmp_path, formats_=("onnx",))
    with open(result.files["onnx"], "ab") as fh:
        fh.write(b"\x00")
    with pytest.raises(ExportError, match="sha256"):
        read_sidecar(tmp_path)


def test_face_torchscript_export(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 64)).eval()
    path = tmp_path / "face.pt"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 112, 112)), str(path))
    result = export_model(load_model("face", path=path), tmp_path / "out")
    _assert_passed(result)
    sidecar = read_sidecar(result.out_dir)
    assert profile_of(sidecar) == ARCFACE_112 and sidecar["output"]["dim"] == 64


def _onnx(net, path, size=(112, 112), dynamic=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, 3, *size),), str(path), opset_version=17,
                          dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}} if dynamic else None)
    return path


def test_onnx_face_file_exports_as_is_with_a_sidecar(tmp_path):
    """An ONNX file cannot become TorchScript: it is test-run, checked and copied beside a
    sidecar naming its profile and output size; a batch-1-only graph is refused."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 128))
    with pytest.raises(ExportError, match="ONNX"):
        export_model(load_model("face", path=_onnx(net, tmp_path / "f.onnx")), tmp_path / "x")
    result = export_model_file(tmp_path / "f.onnx", "arcface-112", tmp_path / "out", name="face")
    sidecar = read_sidecar(result.out_dir)
    assert profile_of(sidecar) == ARCFACE_112 and sidecar["output"]["dim"] == 128
    assert list(sidecar["files"]) == ["onnx"] and (result.out_dir / "face.onnx").is_file()
    with pytest.raises(ExportError, match="TorchScript"):
        export_model_file(tmp_path / "f.onnx", "arcface-112", tmp_path / "o2", ("torchscript",))
    with pytest.raises(ProfileError, match="dynamic batch"):
        export_model_file(_onnx(net, tmp_path / "b1.onnx", dynamic=False), "arcface-112",
                          tmp_path / "o3")


def test_user_torchscript_reid_file_exports_at_512d(tmp_path):
    """A user's 512-d re-ID TorchScript file (which `--model face` and the zoo weights loader
    both refused) exports for the reid-128x64 profile, parity-checked, any output size."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 512)).eval()
    path = tmp_path / "my-reid.pt"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 128, 64)), str(path))
    result = export_model_file(path, "reid-128x64", tmp_path / "out")
    _assert_passed(result)
    sidecar = read_sidecar(result.out_dir)
    assert sidecar["model"] == "my-reid" and sidecar["output"]["dim"] == 512
    assert profile_of(sidecar) == REID_128x64 and set(sidecar["files"]) == {"torchscript", "onnx"}


def test_bad_arguments(tmp_path):
    model = load_model("reid-compact")
    with pytest.raises(ValueError, match="formats"):
        export_model(model, tmp_path, formats_=("tflite",))
    with pytest.raises(ValueError, match="opset"):
        export_model(model, tmp_path, formats_=("onnx",), opset=11)


@pytest.mark.slow
def test_mobilenetv2_export(tmp_path):
    result = export_model(load_model("mobilenetv2-deepsort"), tmp_path)
    _assert_passed(result)
    assert read_sidecar(tmp_path)["output"]["dim"] == 1280


@pytest.mark.slow
def test_fp16_export_on_cpu(tmp_path):
    result = export_model(load_model("reid-compact"), tmp_path, fp16=True)
    report = json.loads(result.report.read_text())["fp16"]
    assert set(report["files"]) == {"torchscript", "onnx"}
    onnx.checker.check_model(str(tmp_path / report["files"]["onnx"]))
    proto = onnx.load(str(tmp_path / report["files"]["onnx"]))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert len(report["parity"]) == 2
    assert set(read_sidecar(tmp_path)["fp16_files"]) == {"torchscript", "onnx"}  # hash-checked
