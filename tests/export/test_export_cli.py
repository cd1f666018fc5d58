"""`featurelock export` through the console entry point."""

import json

from featurelock.middleware.cli import main


def test_export_cli_writes_model_sidecar_and_report(tmp_path, capsys):
    rc = main(["export", "--model", "reid-compact", "--out", str(tmp_path), "--format", "onnx"])
    assert rc == 0
    assert "onnxruntime" in capsys.readouterr().out
    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["files"]["onnx"]["path"] == "reid-compact.onnx"
    assert (tmp_path / "reid-compact.onnx").is_file()


def test_export_cli_fails_closed_on_parity(tmp_path, capsys):
    rc = main(["export", "--out", str(tmp_path), "--format", "onnx", "--min-cosine", "1.5"])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("featurelock export:") and "parity failed" in err and "\n" not in err
    assert not (tmp_path / "model.json").exists()


def test_export_cli_face_without_file_is_one_line_error(tmp_path, capsys):
    rc = main(["export", "--model", "face", "--out", str(tmp_path)])
    assert rc == 1 and "needs a path" in capsys.readouterr().err
