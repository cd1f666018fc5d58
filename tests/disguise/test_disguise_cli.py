"""`featurelock keys create --scheme disguise`, `featurelock disguise` a folder and back."""

from __future__ import annotations

import numpy as np
from PIL import Image

from featurelock.middleware.cli import main
from featurelock.models.synthetic import make_pedestrians


def test_disguise_a_folder_and_back(tmp_path, capsys):
    keyset = tmp_path / "owner.keyset.json"
    kek = f"file:{tmp_path / 'kek'}"
    assert main(["keys", "new-kek", "--kek", kek]) == 0
    assert main(["keys", "create", "--scheme", "disguise", "--keyset", str(keyset),
                 "--kek", kek]) == 0
    src = tmp_path / "in"
    src.mkdir()
    images = make_pedestrians(3, 3, seed=1).images
    for i, im in enumerate(images):
        Image.fromarray(im).save(src / f"p{i}.png")
    opts = ["--keyset", str(keyset), "--kek", kek, "--variant", "aes", "--block", "8"]
    assert main(["disguise", *opts, str(src), str(tmp_path / "d")]) == 0
    assert main(["disguise", *opts, "--undisguise", str(tmp_path / "d"), str(tmp_path / "b")]) == 0
    for i, im in enumerate(images):
        disguised = np.asarray(Image.open(tmp_path / "d" / f"p{i}.png"))
        assert not np.array_equal(disguised, im)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "b" / f"p{i}.png")), im)
    capsys.readouterr()
    # Feature encryption refuses the disguise keyset, with one line and status 1.
    np.save(tmp_path / "f.npy", np.ones((1, 4), np.float32))
    assert main(["encrypt", "--keyset", str(keyset), "--kek", kek, str(tmp_path / "f.npy"),
                 str(tmp_path / "f.env")]) == 1
    assert "cannot encrypt" in capsys.readouterr().err
    assert not (tmp_path / "f.env").exists()
    assert keyset.read_bytes().count(b"material") == 0  # wrapped under the KEK, not cleartext


def test_train_the_digits_lenet_on_disguised_digits(tmp_path, capsys):
    import json

    from featurelock.middleware import Keyset
    from featurelock.middleware.storage import save_keyset
    from featurelock.models.model_files import load_state_dict

    keyset = Keyset.generate("disguise")
    path = tmp_path / "owner.keyset.json"
    save_keyset(path, keyset, None, "default", insecure_cleartext=True)
    out = tmp_path / "lenet.pt"
    assert main(["train", "--digits", "--disguise", "--variant", "rmt", "--block", "4",
                 "--epochs", "10", "--keyset", str(path), "--insecure-cleartext", "--out", str(out),
                 "--metrics-json", str(tmp_path / "m.json")]) == 0
    summary = json.loads((tmp_path / "m.json").read_text())
    meta = json.loads(out.with_name("lenet.pt.disguise.json").read_text())
    assert meta["key_id"] == keyset.primary_id and meta["spec"]["channels"] == 1
    assert summary["accuracy"] > 0.6 > 0.3 > summary["plain_inputs_accuracy"]  # chance 0.1
    assert "conv1.weight" in load_state_dict(out)
    assert keyset._keys[keyset.primary_id].material.hex() not in out.with_name(
        "lenet.pt.disguise.json").read_text()


def test_scan_disguise_command_writes_its_report(tmp_path, capsys):
    import json

    assert main(["scan-disguise", "--noise", "0.05", "--compare", "aes", "--attacks",
                 "known-plaintext,jigsaw", "--known-pairs", "8,32", "--victim-ids", "6",
                 "--public-images", "60", "--report", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "known-plaintext" in table and "jigsaw" in table
    doc = json.loads((tmp_path / "report.json").read_text())
    assert set(doc["targets"]) == {"rmt (scanned spec)", "aes"}
    assert doc["targets"]["aes"]["columns"]["known-plaintext"]["status"] in ("resists", "inconclusive")
    assert list(tmp_path.glob("picture_*.png"))
