"""Loader for a local copy of Market-1501 (and its attribute annotations), nothing downloaded.

Layout (as distributed):
    root/bounding_box_train/0002_c1s1_000451_03.jpg   <pid>_c<cam>s<seq>_<frame>_<box>.jpg
    root/query/...            root/bounding_box_test/...
Identity -1 marks junk boxes (ignored, as in the benchmark); identity 0 marks distractors
(kept in the gallery unless drop_distractors). Cameras are returned 0-based (c1 -> 0).

Attributes come from market_attribute.mat (Lin et al., "Improving person re-identification by
attribute and identity learning"): struct market_attribute.{train,test} with 1/2-coded fields
(age 1..4) per identity and image_index naming the identities. They are mapped to
featurelock.models.synthetic.ATTRIBUTES (0-based); -1 where unknown (distractors, unlabelled,
or a colour group with no "yes").
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import ModelError
from .synthetic import ATTRIBUTES, LOWER_COLORS, UPPER_COLORS, PedestrianSet, ReidSplits

__all__ = ["parse_name", "load_folder", "load_market_attributes", "load_market1501", "SUBDIRS"]

SUBDIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
_NAME = re.compile(r"^(-1|\d+)_c(\d+)s\d+_\d+_\d+\.(?:jpg|jpeg|png)$", re.IGNORECASE)
# Our attribute name -> Market field; binary fields are coded 1 (no / first class), 2 (yes).
_BINARY = {"gender": "gender", "hair_length": "hair", "sleeve_length": "up",
           "lower_length": "down", "lower_type": "clothes", "hat": "hat",
           "backpack": "backpack", "bag": "bag", "handbag": "handbag"}


def parse_name(name: str) -> tuple[int, int] | None:
    """'0002_c1s1_000451_03.jpg' -> (2, 0); None for names that are not Market crops."""
    m = _NAME.match(name)
    return (int(m.group(1)), int(m.group(2)) - 1) if m else None


def load_folder(folder: str | Path, size: tuple[int, int] = (128, 64),
                drop_distractors: bool = False, max_images: int | None = None,
                attributes: dict[int, np.ndarray] | None = None) -> PedestrianSet:
    """Every crop in one Market folder, sorted by file name, resized to size=(H, W)."""
    root = Path(folder)
    if not root.is_dir():
        raise ModelError(f"Market-1501 folder not found: {root}")
    entries = []
    for path in sorted(root.iterdir()):
        parsed = parse_name(path.name)
        if parsed is None or parsed[0] == -1 or (drop_distractors and parsed[0] == 0):
            continue
        entries.append((path, *parsed))
        if max_images is not None and len(entries) >= max_images:
            break
    h, w = size
    images = np.empty((len(entries), h, w, 3), dtype=np.uint8)
    for i, (path, _, _) in enumerate(entries):
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            images[i] = np.asarray(rgb if rgb.size == (w, h) else rgb.resize((w, h), Image.BILINEAR))
    ids = np.array([e[1] for e in entries], dtype=np.int64)
    cams = np.array([e[2] for e in entries], dtype=np.int64)
    unknown = np.full(len(ATTRIBUTES), -1, dtype=np.int64)
    table = attributes or {}
    attrs = np.stack([table.get(int(i), unknown) for i in ids]) if len(ids) else \
        np.zeros((0, len(ATTRIBUTES)), dtype=np.int64)
    return PedestrianSet(images, ids, cams, attrs)


def load_market_attributes(mat_path: str | Path) -> dict[str, dict[int, np.ndarray]]:
    """{'train': {pid: row}, 'test': {pid: row}} with rows in ATTRIBUTES order."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(mat_path), squeeze_me=True, struct_as_record=False)
        root = mat["market_attribute"]
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"not a Market-1501 attribute file: {mat_path} ({type(exc).__name__})") from None
    return {split: _split_attributes(getattr(root, split)) for split in ("train", "test")}


def _split_attributes(split: object) -> dict[int, np.ndarray]:
    pids = [int(str(p)) for p in np.atleast_1d(getattr(split, "image_index"))]
    n = len(pids)
    columns: dict[str, np.ndarray] = {}
    for ours, field in _BINARY.items():
        columns[ours] = np.atleast_1d(getattr(split, field)).astype(np.int64) - 1
    columns["age"] = np.atleast_1d(getattr(split, "age")).astype(np.int64) - 1
    for ours, prefix, names in (("upper_color", "up", UPPER_COLORS),
                                ("lower_color", "down", LOWER_COLORS)):
        yes = np.stack([np.atleast_1d(getattr(split, prefix + c)) == 2 for c in names], axis=1)
        columns[ours] = np.where(yes.any(axis=1), yes.argmax(axis=1), -1)
    for name, col in columns.items():
        if col.shape != (n,):
            raise ModelError(f"attribute {name!r} has {col.shape[0]} values for {n} identities")
    table = np.stack([columns[name] for name in ATTRIBUTES], axis=1)
    return {pid: table[i] for i, pid in enumerate(pids)}


def load_market1501(root: str | Path, attributes_mat: str | Path | None = None,
                    size: tuple[int, int] = (128, 64), drop_distractors: bool = False,
                    max_images: int | None = None) -> ReidSplits:
    """Train / query / gallery from a Market-1501 directory, with attributes if given."""
    base = Path(root)
    attrs = load_market_attributes(attributes_mat) if attributes_mat else {"train": {}, "test": {}}
    return ReidSplits(
        train=load_folder(base / SUBDIRS["train"], size, True, max_images, attrs["train"]),
        query=load_folder(base / SUBDIRS["query"], size, True, max_images, attrs["test"]),
        gallery=load_folder(base / SUBDIRS["gallery"], size, drop_distractors, max_images,
                            attrs["test"]),
    )
