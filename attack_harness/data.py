"""The attacker's auxiliary images and the victims' images, with disjoint identities.

    synthetic            featurelock.models.make_splits: the train identities are the
                         attacker's, the test identities (query + gallery) are the victims'
    synthetic-faces      featurelock.models.make_face_splits: aligned 112x112 faces (for face
                         models such as face-compact), split the same way
    market1501:PATH      a local Market-1501 copy: bounding_box_train for the attacker,
                         query + bounding_box_test for the victims; attributes from
                         PATH/market_attribute.mat (or PATH/../) when present
    folder:PATH          your own images, one subfolder per identity, optional cameras.csv
                         and attributes.csv (`folder_data`)

Images from files are fitted to `size`, the model's input (height, width), as the server
decodes a request; the synthetic pedestrians are always 128x64.

Victim images are split Market-style into a query part (the images whose leaked outputs the
identity-leakage test reconstructs) and a gallery (the identities it must find).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError

__all__ = ["AttackData", "load_dataset", "synthetic_data", "synthetic_faces_data",
           "market1501_data", "DATASETS", "default_dataset", "check_domain"]

DATASETS = ("synthetic", "synthetic-faces", "market1501:PATH", "folder:PATH")


@dataclass(frozen=True)
class AttackData:
    aux_images: np.ndarray  # (Na, H, W, 3) uint8: what the attacker queries
    aux_ids: np.ndarray
    aux_attributes: np.ndarray  # (Na, A) int64 class indices, -1 unknown
    victim_images: np.ndarray  # (Nv, H, W, 3) uint8: whose outputs leaked
    victim_ids: np.ndarray
    victim_cams: np.ndarray
    victim_attributes: np.ndarray
    victim_is_query: np.ndarray  # (Nv,) bool
    attribute_names: tuple[str, ...]
    attribute_classes: tuple[int, ...]
    description: str

    def __post_init__(self) -> None:
        shared = np.intersect1d(self.aux_ids, self.victim_ids)
        if shared.size:
            raise DatasetError(f"attacker and victim identities overlap ({shared.size} shared)")

    # What attacks may need (Attack.needs) -> why this data set lacks it.
    NEEDS = ("attributes", "linkable victims")

    def lacks(self, need: str) -> str | None:
        """Why this data set cannot serve an attack that needs `need`, else None."""
        if need == "attributes":
            return None if self.attribute_names else "no attribute labels in the data set"
        if need == "linkable victims":
            return None if self.victim_is_query.any() else (
                "no victim has images from two cameras")
        raise ValueError(f"unknown need {need!r}; known: {', '.join(self.NEEDS)}")

    def summary(self) -> dict:
        return {"description": self.description, "aux_images": int(len(self.aux_images)),
                "aux_identities": int(np.unique(self.aux_ids).size),
                "victim_images": int(len(self.victim_images)),
                "victim_identities": int(np.unique(self.victim_ids).size),
                "victim_queries": int(self.victim_is_query.sum()),
                "image_shape": list(self.aux_images.shape[1:]),
                "attributes": dict(zip(self.attribute_names, self.attribute_classes))}


def synthetic_data(budget: int, n_victim_ids: int = 40, images_per_id: int = 4,
                   seed: int = 0) -> AttackData:
    """make_splits with enough attacker identities for `budget` queries."""
    from featurelock.models.synthetic import ATTRIBUTES, make_splits

    return _synthetic(make_splits, ATTRIBUTES, "synthetic pedestrians", budget, n_victim_ids,
                      images_per_id, seed)


def synthetic_faces_data(budget: int, n_victim_ids: int = 40, images_per_id: int = 4,
                         seed: int = 0) -> AttackData:
    """make_face_splits (112x112 faces) with enough attacker identities for `budget` queries;
    the victims' `cams` are capture sessions."""
    from featurelock.models.synthetic_faces import FACE_ATTRIBUTES, make_face_splits

    return _synthetic(make_face_splits, FACE_ATTRIBUTES, "synthetic faces", budget,
                      n_victim_ids, images_per_id, seed)


def _synthetic(make, attributes: dict[str, int], what: str, budget: int, n_victim_ids: int,
               images_per_id: int, seed: int) -> AttackData:
    if budget < 2 * images_per_id:
        raise ValueError(f"budget must be >= {2 * images_per_id} queries, got {budget}")
    n_train_ids = math.ceil(budget / images_per_id)
    s = make(seed=seed, n_train_ids=n_train_ids, n_test_ids=n_victim_ids,
             images_per_id=images_per_id)
    train = s.train.subset(np.arange(budget))
    victims_images = np.concatenate([s.query.images, s.gallery.images])
    return AttackData(
        aux_images=train.images, aux_ids=train.ids, aux_attributes=train.attributes,
        victim_images=victims_images,
        victim_ids=np.concatenate([s.query.ids, s.gallery.ids]),
        victim_cams=np.concatenate([s.query.cams, s.gallery.cams]),
        victim_attributes=np.concatenate([s.query.attributes, s.gallery.attributes]),
        victim_is_query=np.r_[np.ones(len(s.query), bool), np.zeros(len(s.gallery), bool)],
        attribute_names=tuple(s.train.attribute_names),
        attribute_classes=tuple(attributes[n] for n in s.train.attribute_names),
        description=f"{what} (seed {seed}): {n_train_ids} attacker identities, "
                    f"{n_victim_ids} victim identities, {images_per_id} images each")


def market1501_data(root: str | Path, budget: int, n_victims: int = 600,
                    seed: int = 0, size: tuple[int, int] = (128, 64)) -> AttackData:
    """A local Market-1501 copy; `budget` attacker images drawn from bounding_box_train."""
    from featurelock.models.market1501 import load_market1501
    from featurelock.models.synthetic import ATTRIBUTES

    root = Path(root)
    mat = next((p for p in (root / "market_attribute.mat", root.parent / "market_attribute.mat")
                if p.is_file()), None)
    try:
        splits = load_market1501(root, mat, size=size, drop_distractors=True)
    except Exception as exc:  # translate loader failures at the boundary
        raise DatasetError(f"cannot load Market-1501 from {root}: {exc}") from None
    rng = np.random.default_rng(seed)
    if len(splits.train) < budget:
        raise DatasetError(f"{root}: {len(splits.train)} training images, budget is {budget}")
    train = splits.train.subset(np.sort(rng.choice(len(splits.train), budget, replace=False)))
    # Victims: whole identities (query + their gallery images), up to n_victims images.
    ids = rng.permutation(np.unique(splits.query.ids))
    q_keep, g_keep, total = [], [], 0
    for pid in ids:
        q = np.flatnonzero(splits.query.ids == pid)
        g = np.flatnonzero(splits.gallery.ids == pid)
        if total + q.size + g.size > n_victims and total:
            break
        q_keep.extend(q)
        g_keep.extend(g)
        total += q.size + g.size
    query, gallery = splits.query.subset(np.array(q_keep)), splits.gallery.subset(np.array(g_keep))
    return AttackData(
        aux_images=train.images, aux_ids=train.ids, aux_attributes=train.attributes,
        victim_images=np.concatenate([query.images, gallery.images]),
        victim_ids=np.concatenate([query.ids, gallery.ids]),
        victim_cams=np.concatenate([query.cams, gallery.cams]),
        victim_attributes=np.concatenate([query.attributes, gallery.attributes]),
        victim_is_query=np.r_[np.ones(len(query), bool), np.zeros(len(gallery), bool)],
        attribute_names=tuple(train.attribute_names),
        attribute_classes=tuple(ATTRIBUTES[n] for n in train.attribute_names),
        description=f"Market-1501 at {root} ({'with' if mat else 'without'} attributes)")


# The synthetic sets' image sizes: a model whose input profile has the other set's size is
# from the other domain (a face model fed resized pedestrians measures nothing).
_SYNTHETIC_SHAPES = {"synthetic": (128, 64), "synthetic-faces": (112, 112)}


def default_dataset(profile) -> str:
    """synthetic-faces for a model that takes 112x112 input, else synthetic pedestrians."""
    size = None if profile is None else (profile.height, profile.width)
    return "synthetic-faces" if size == _SYNTHETIC_SHAPES["synthetic-faces"] else "synthetic"


def check_domain(spec: str, profile, model: str) -> None:
    """Refuse a synthetic set of the other domain than the model's (ValueError)."""
    if profile is None or spec not in _SYNTHETIC_SHAPES:
        return
    size = (profile.height, profile.width)
    other = next((name for name, shape in _SYNTHETIC_SHAPES.items()
                  if shape == size and name != spec), None)
    if other is not None:
        h, w = _SYNTHETIC_SHAPES[spec]
        raise ValueError(f"--dataset {spec} draws {h}x{w} images but {model} takes "
                         f"{size[0]}x{size[1]} ones (another domain): use --dataset {other}")


def load_dataset(spec: str, budget: int, seed: int = 0, n_victim_ids: int = 40,
                 images_per_id: int = 4, size: tuple[int, int] = (128, 64)) -> AttackData:
    """'synthetic', 'synthetic-faces', 'market1501:PATH' or 'folder:PATH'; `size`: the
    model's input (H, W), to which own images are fitted."""
    from .folder_data import folder_data

    if spec == "synthetic":
        return synthetic_data(budget, n_victim_ids, images_per_id, seed)
    if spec == "synthetic-faces":
        return synthetic_faces_data(budget, n_victim_ids, images_per_id, seed)
    kind, _, path = spec.partition(":")
    if kind == "market1501" and path:
        return market1501_data(path, budget, n_victims=n_victim_ids * 15, seed=seed, size=size)
    if kind == "folder" and path:
        return folder_data(path, budget, n_victim_ids, seed, size)
    raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {spec!r}")
