"""Your own labelled images as a scan's data set: `--dataset folder:PATH`.

    PATH/
      <identity>/*.jpg|*.jpeg|*.png   one subfolder per person; the folder name is the label
      cameras.csv      optional   file,camera         (file relative to PATH: alice/001.jpg)
      attributes.csv   optional   identity,ATTR1,...  (one row per person; or `file,ATTR1,...`
                                                       for one row per image)

Every image is decoded as the server decodes a request (JPEG/PNG, RGB, bilinear resize to the
model's input profile), so the attacker's images are what the model sees. Attribute values are
any text; each column's distinct values become its classes (an empty cell: unknown).

Identities are split, never images: a seeded permutation gives the attacker whole identities
until it holds `budget` images (people with one image first: they cannot be linked anyway),
and the victims are the next identities with at least two images (up to `n_victim_ids`). Per
victim, one image is the query whose leaked output the linkability and identity tests try to
match; the rest are its gallery. Without cameras.csv every image counts as its own camera
(any other image of the person is a true match); with it, the query is the first image with
a match in another camera, as in Market-1501.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .errors import DatasetError

__all__ = ["folder_data", "IMAGE_SUFFIXES", "CAMERAS_CSV", "ATTRIBUTES_CSV"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CAMERAS_CSV = "cameras.csv"
ATTRIBUTES_CSV = "attributes.csv"
MIN_VICTIM_IDS = 2


def _images_by_identity(root: Path) -> dict[str, list[Path]]:
    people = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            people[folder.name] = files
    return people


def _read_csv(path: Path, key: str | tuple[str, ...]) -> tuple[str, list[str], list[list[str]]]:
    """(key column name, other column names, rows); the first column must be one of `key`."""
    keys = (key,) if isinstance(key, str) else key
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            table = [[c.strip() for c in row] for row in csv.reader(fh) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {path.name} ({type(exc).__name__})") from None
    if not table or table[0][0] not in keys:
        raise DatasetError(f"{path.name}: the header's first column must be "
                           f"{' or '.join(repr(k) for k in keys)}")
    header = table[0]
    for i, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise DatasetError(f"{path.name} line {i}: {len(row)} cells, the header has "
                               f"{len(header)}")
    return header[0], header[1:], table[1:]


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _cameras(root: Path, files: list[Path]) -> np.ndarray | None:
    path = root / CAMERAS_CSV
    if not path.is_file():
        return None
    _, cols, rows = _read_csv(path, "file")
    if cols != ["camera"]:
        raise DatasetError(f"{CAMERAS_CSV}: columns must be file,camera")
    table = {r[0]: r[1] for r in rows}
    missing = [_relative(f, root) for f in files if _relative(f, root) not in table]
    if missing:
        raise DatasetError(f"{CAMERAS_CSV} names no camera for {missing[0]} "
                           f"({len(missing)} images)")
    names = sorted({table[_relative(f, root)] for f in files})
    return np.array([names.index(table[_relative(f, root)]) for f in files], np.int64)


def _attributes(root: Path, files: list[Path], labels: list[str]
                ) -> tuple[np.ndarray, tuple[str, ...], tuple[int, ...]]:
    path = root / ATTRIBUTES_CSV
    if not path.is_file():
        return np.zeros((len(files), 0), np.int64), (), ()
    key, names, rows = _read_csv(path, ("identity", "file"))
    if not names:
        raise DatasetError(f"{ATTRIBUTES_CSV}: no attribute columns after {key!r}")
    table = {r[0]: r[1:] for r in rows}
    keys = labels if key == "identity" else [_relative(f, root) for f in files]
    cells = [table.get(k, [""] * len(names)) for k in keys]
    out = np.full((len(files), len(names)), -1, np.int64)
    classes = []
    for a in range(len(names)):
        values = sorted({c[a] for c in cells if c[a]})
        classes.append(max(len(values), 1))
        for i, c in enumerate(cells):
            if c[a]:
                out[i, a] = values.index(c[a])
    return out, tuple(names), tuple(classes)


def _decode(path: Path, size: tuple[int, int]) -> np.ndarray:
    from featurelock.models.imaging import decode_image
    from featurelock.models.profiles import InputProfile

    profile = InputProfile("dataset", size[0], size[1], (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    try:
        return decode_image(path.read_bytes(), profile)
    except Exception as exc:  # one unreadable file names itself, not a traceback
        raise DatasetError(f"cannot decode {path.parent.name}/{path.name} "
                           f"({type(exc).__name__})") from None


def _query_mask(ids: np.ndarray, cams: np.ndarray) -> np.ndarray:
    """One query per identity: its first image with a same-identity image in another camera."""
    mask = np.zeros(len(ids), bool)
    for pid in np.unique(ids):
        rows = np.flatnonzero(ids == pid)
        for r in rows:
            if (cams[rows] != cams[r]).any():
                mask[r] = True
                break
    return mask


def folder_data(root: str | Path, budget: int, n_victim_ids: int = 40, seed: int = 0,
                size: tuple[int, int] = (128, 64)):
    """An AttackData from a folder of identity subfolders (module docstring)."""
    from .data import AttackData

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    people = _images_by_identity(root)
    if not people:
        raise DatasetError(f"{root}: no identity subfolders with .jpg/.jpeg/.png images")
    labels = list(people)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    order = np.r_[[i for i in order if len(people[labels[i]]) == 1],
                  [i for i in order if len(people[labels[i]]) > 1]].astype(int)
    attacker, held = [], 0
    for i in order:
        if held >= budget:
            break
        attacker.append(int(i))
        held += len(people[labels[i]])
    if held < budget:
        raise DatasetError(f"{root}: {sum(len(v) for v in people.values())} images of "
                           f"{len(labels)} identities cannot give the attacker {budget} images "
                           "and leave victims: lower --budget or add identities")
    victims = [int(i) for i in order[len(attacker):] if len(people[labels[i]]) > 1]
    victims = victims[:n_victim_ids]
    if len(victims) < MIN_VICTIM_IDS:
        raise DatasetError(f"{root}: after {budget} attacker images ({len(attacker)} identities) "
                           f"{len(victims)} identities with >= 2 images are left for victims; "
                           f"need >= {MIN_VICTIM_IDS}: lower --budget or add identities")
    chosen = [*attacker, *victims]
    files = [f for i in chosen for f in people[labels[i]]]
    ids = np.array([i for i in chosen for _ in people[labels[i]]], np.int64)
    cams = _cameras(root, files)
    has_cameras = cams is not None
    if cams is None:
        cams = np.arange(len(files), dtype=np.int64)  # every image its own camera
    attrs, names, classes = _attributes(root, files, [labels[i] for i in ids])
    images = np.stack([_decode(f, size) for f in files])
    is_aux = np.isin(ids, attacker)
    v = ~is_aux
    return AttackData(
        aux_images=images[is_aux], aux_ids=ids[is_aux], aux_attributes=attrs[is_aux],
        victim_images=images[v], victim_ids=ids[v], victim_cams=cams[v],
        victim_attributes=attrs[v], victim_is_query=_query_mask(ids[v], cams[v]),
        attribute_names=names, attribute_classes=classes,
        description=(f"folder {root.name}: {len(attacker)} attacker identities ({held} images), "
                     f"{len(victims)} victim identities ({int(v.sum())} images), "
                     f"{'cameras.csv' if has_cameras else 'no cameras'}, "
                     f"{len(names)} attributes, fitted to {size[0]}x{size[1]}"))
