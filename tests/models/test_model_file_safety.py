"""Model files load only through weights_only / TorchScript / ONNX; pickles are refused."""

import pickle

import pytest
import torch

from featurelock.models.errors import ModelError, UnsafeModelFileError
from featurelock.models.model_files import load_state_dict, load_torchscript
from featurelock.models.reid_compact import ReidCompact
from featurelock.models.zoo import load_model


class _Exploit:
    """Unpickling this would call print(...): a stand-in for os.system."""

    def __reduce__(self):
        return (print, ("code ran during unpickling",))


def test_full_module_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "model.pt"
    torch.save(ReidCompact(), path)  # a whole pickled module, not a state dict
    with pytest.raises(UnsafeModelFileError, match="weights-only"):
        load_state_dict(path)
    with pytest.raises(UnsafeModelFileError):
        load_model("reid-compact", path=path)


def test_malicious_pickle_is_refused_without_running(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"weight": _Exploit()}, path)
    with pytest.raises(UnsafeModelFileError):
        load_state_dict(path)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(UnsafeModelFileError):
        load_state_dict(raw)
    assert "code ran" not in capsys.readouterr().out


def test_pickles_given_as_torchscript_face_models_are_refused(tmp_path, capsys):
    for name, obj in (("module.pt", ReidCompact()), ("evil.pt", {"w": _Exploit()})):
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(ModelError, match="not a TorchScript archive"):
            load_model("face", path=path)
    assert "code ran" not in capsys.readouterr().out


def test_non_tensor_values_are_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"weight": [1, 2, 3]}, path)
    with pytest.raises(UnsafeModelFileError, match="tensors"):
        load_state_dict(path)


def test_state_dict_round_trip_and_float16_upcast(tmp_path):
    state = {"a": torch.randn(3).half(), "n": torch.tensor(4)}
    path = tmp_path / "ok.pt"
    torch.save(state, path)
    loaded = load_state_dict(path)
    assert loaded["a"].dtype == torch.float32 and torch.equal(loaded["n"], state["n"])


def test_missing_and_wrong_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_state_dict(tmp_path / "absent.pt")
    path = tmp_path / "sd.pt"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match="TorchScript"):
        load_torchscript(path)
    with pytest.raises(ModelError, match="do not fit"):
        load_model("reid-compact", path=path)


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model"):
        load_model("resnet-9000")
