"""Synthetic pedestrians: a deterministic, Market-1501-shaped re-ID data set drawn with numpy.

Why synthetic: featurelock must train, test and attack re-ID models offline, without downloading
a data set. Each identity has a fixed appearance (build, skin, hair, garments, pattern, shoes,
bags, hat) and Market-1501-style attribute labels; each image varies pose, view, scale, crop,
background clutter, lighting, camera colour cast, occlusion, blur and noise.

Rendering is vectorised over a chunk of images (every shape is a boolean mask over the whole
chunk), so thousands of 128x64 images take a few seconds on one core. Same seed, same bytes.

Attribute labels are 0-based class indices; see ATTRIBUTES for the classes. Splits follow
Market-1501: train identities are disjoint from test identities; the test identities are
divided into a query set (one image per identity and camera) and a gallery (the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ATTRIBUTES",
    "UPPER_COLORS",
    "LOWER_COLORS",
    "IMAGE_SHAPE",
    "PedestrianSet",
    "ReidSplits",
    "make_splits",
    "make_pedestrians",
]

IMAGE_SHAPE = (128, 64, 3)
H, W = IMAGE_SHAPE[:2]

# Market-1501 attribute colour order (market_attribute.mat: upblack..upgreen, downblack..downbrown).
UPPER_COLORS = ("black", "white", "red", "purple", "yellow", "gray", "blue", "green")
LOWER_COLORS = ("black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown")
_RGB = {
    "black": (25, 25, 28), "white": (228, 228, 222), "red": (190, 30, 35),
    "purple": (110, 45, 140), "yellow": (225, 200, 40), "gray": (125, 125, 125),
    "blue": (35, 60, 170), "green": (40, 130, 55), "pink": (230, 140, 170),
    "brown": (115, 75, 40),
}

# name -> number of classes. Class meanings (index: meaning):
#   gender 0 male 1 female | age 0 young 1 teenager 2 adult 3 old | hair_length 0 short 1 long
#   sleeve_length 0 long 1 short | lower_length 0 long 1 short | lower_type 0 dress/skirt 1 pants
#   hat/backpack/bag/handbag 0 no 1 yes | upper_color UPPER_COLORS | lower_color LOWER_COLORS
ATTRIBUTES: dict[str, int] = {
    "gender": 2,
    "age": 4,
    "hair_length": 2,
    "sleeve_length": 2,
    "lower_length": 2,
    "lower_type": 2,
    "hat": 2,
    "backpack": 2,
    "bag": 2,
    "handbag": 2,
    "upper_color": len(UPPER_COLORS),
    "lower_color": len(LOWER_COLORS),
}
_ATTR_NAMES = tuple(ATTRIBUTES)

_N_PATTERNS = 5  # solid, horizontal stripes, vertical stripes, checks, chest logo
_CHUNK = 256  # images rendered at once: keeps the (chunk, 128, 64) temporaries cache-friendly


@dataclass(frozen=True)
class PedestrianSet:
    """Images (N, 128, 64, 3) uint8 RGB, with identity, camera and attribute labels."""

    images: np.ndarray
    ids: np.ndarray  # (N,) int64 identity labels
    cams: np.ndarray  # (N,) int64 camera index, 0-based
    attributes: np.ndarray  # (N, len(attribute_names)) int64 class indices
    attribute_names: tuple[str, ...] = _ATTR_NAMES

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def subset(self, index: np.ndarray) -> "PedestrianSet":
        return PedestrianSet(self.images[index], self.ids[index], self.cams[index],
                             self.attributes[index], self.attribute_names)

    def attribute(self, name: str) -> np.ndarray:
        return self.attributes[:, self.attribute_names.index(name)]


@dataclass(frozen=True)
class ReidSplits:
    """Market-1501-style splits: train ids are disjoint from the ids shared by query/gallery."""

    train: PedestrianSet
    query: PedestrianSet
    gallery: PedestrianSet


def make_splits(seed: int = 0, n_train_ids: int = 300, n_test_ids: int = 100,
                images_per_id: int = 12, n_cams: int = 6) -> ReidSplits:
    """Draw a train / query / gallery split; the same arguments always give the same arrays.

    Train identities are 0..n_train_ids-1, test identities follow. For every test identity the
    query holds one image per camera that saw it at least twice; the gallery holds the rest.
    """
    _check_positive(n_train_ids=n_train_ids, n_test_ids=n_test_ids, n_cams=n_cams)
    if images_per_id < 3:
        raise ValueError(f"images_per_id must be >= 3 (query and gallery), got {images_per_id}")
    seeds = np.random.SeedSequence(seed).spawn(3)
    n_ids = n_train_ids + n_test_ids
    idents = _sample_identities(np.random.default_rng(seeds[0]), n_ids)
    scenes = _sample_scenes(np.random.default_rng(seeds[1]), n_cams)
    rng = np.random.default_rng(seeds[2])
    ids = np.repeat(np.arange(n_ids), images_per_id)
    cams = _cameras_per_image(rng, n_ids, images_per_id, n_cams)
    everything = _render_set(rng, idents, scenes, ids, cams)
    train = everything.subset(np.flatnonzero(ids < n_train_ids))
    test_index = np.flatnonzero(ids >= n_train_ids)
    is_query = _query_mask(ids[test_index], cams[test_index])
    return ReidSplits(train, everything.subset(test_index[is_query]),
                      everything.subset(test_index[~is_query]))


def make_pedestrians(n_images: int, n_ids: int, seed: int = 0, n_cams: int = 6) -> PedestrianSet:
    """Draw n_images of n_ids identities (ids cycle 0..n_ids-1) for attack and load tests."""
    _check_positive(n_images=n_images, n_ids=n_ids, n_cams=n_cams)
    seeds = np.random.SeedSequence(seed).spawn(3)
    idents = _sample_identities(np.random.default_rng(seeds[0]), n_ids)
    scenes = _sample_scenes(np.random.default_rng(seeds[1]), n_cams)
    rng = np.random.default_rng(seeds[2])
    ids = np.arange(n_images) % n_ids
    cams = rng.integers(0, n_cams, n_images)
    return _render_set(rng, idents, scenes, ids, cams)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _cameras_per_image(rng: np.random.Generator, n_ids: int, per_id: int, n_cams: int) -> np.ndarray:
    # Images 0 and 1 of an identity share a camera and image 2 is from another one, so every
    # identity has a query (a camera with two images) with a cross-camera true match.
    cams = rng.integers(0, n_cams, (n_ids, per_id))
    cams[:, 1] = cams[:, 0]
    if n_cams > 1:
        cams[:, 2] = (cams[:, 0] + rng.integers(1, n_cams, n_ids)) % n_cams
    return cams.reshape(-1)


def _query_mask(ids: np.ndarray, cams: np.ndarray) -> np.ndarray:
    """First image of each (identity, camera) pair seen at least twice: the rest stay in the
    gallery, so each query has a gallery match from every other camera of its identity."""
    _, first, counts = np.unique(np.stack([ids, cams], axis=1), axis=0, return_index=True,
                                 return_counts=True)
    mask = np.zeros(ids.shape[0], dtype=bool)
    mask[first[counts >= 2]] = True
    return mask


# ---------------------------------------------------------------- identities and scenes


def _jitter_colors(rng: np.random.Generator, names: tuple[str, ...], cls: np.ndarray,
                   amount: float = 22.0) -> np.ndarray:
    base = np.array([_RGB[n] for n in names], dtype=np.float32)[cls]
    return np.clip(base + rng.normal(0, amount, base.shape), 0, 255).astype(np.float32)


def _sample_identities(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-identity appearance and labels. Correlations loosely follow Market-1501's."""
    female = rng.random(n) < 0.45
    age = rng.choice(4, n, p=[0.05, 0.2, 0.65, 0.1])
    long_hair = rng.random(n) < np.where(female, 0.75, 0.08)
    skirt = rng.random(n) < np.where(female, 0.45, 0.0)
    short_lower = rng.random(n) < np.where(skirt, 0.6, 0.25)
    short_sleeve = rng.random(n) < 0.45
    upper_cls = rng.integers(0, len(UPPER_COLORS), n)
    lower_cls = rng.choice(len(LOWER_COLORS), n,
                           p=[0.3, 0.06, 0.04, 0.04, 0.03, 0.15, 0.24, 0.04, 0.10])
    skin_tone = rng.uniform(0.0, 1.0, n)
    skin = np.stack([255 - 120 * skin_tone, 205 - 120 * skin_tone, 175 - 115 * skin_tone], 1)
    hair_base = np.array([[20, 18, 15], [70, 45, 25], [150, 110, 60], [200, 170, 110]], np.float32)
    hair = hair_base[rng.choice(4, n, p=[0.5, 0.3, 0.12, 0.08])]
    hair = np.where((age == 3)[:, None], np.float32([175, 175, 170]), hair)
    hair = hair + rng.normal(0, 10, (n, 3))
    return {
        "labels": np.stack([
            female, age, long_hair, short_sleeve, short_lower, ~skirt,
            rng.random(n) < 0.12,                          # hat
            rng.random(n) < 0.3,                           # backpack
            rng.random(n) < 0.18,                          # bag (shoulder bag)
            rng.random(n) < np.where(female, 0.2, 0.06),   # handbag
            upper_cls, lower_cls,
        ], axis=1).astype(np.int64),
        "build": rng.uniform(0.8, 1.2, n) * np.where(female, 0.92, 1.0),
        "height": rng.uniform(0.88, 1.0, n) * np.where(age == 1, 0.93, 1.0),
        "skin": np.clip(skin + rng.normal(0, 8, (n, 3)), 0, 255),
        "hair": np.clip(hair, 0, 255),
        "upper": _jitter_colors(rng, UPPER_COLORS, upper_cls),
        "upper2": rng.uniform(0, 255, (n, 3)),
        "pattern": rng.choice(_N_PATTERNS, n, p=[0.45, 0.15, 0.12, 0.13, 0.15]),
        "period": rng.uniform(3.0, 7.0, n),
        "jacket": rng.random(n) < 0.25,  # open jacket: a strip of shirt colour down the front
        "lower": _jitter_colors(rng, LOWER_COLORS, lower_cls),
        "shoes": rng.choice([0, 1, 2], n, p=[0.55, 0.3, 0.15]),
        "shoe_rgb": rng.uniform(0, 255, (n, 3)),
        "hat_rgb": rng.uniform(0, 255, (n, 3)),
        "bag_rgb": rng.uniform(0, 200, (n, 3)),
        "bag_side": rng.choice([-1.0, 1.0], n),
    }


def _sample_scenes(rng: np.random.Generator, n_cams: int) -> dict[str, np.ndarray]:
    """Per-camera look: background colours, fixed clutter layout, colour cast, exposure."""
    k = 3  # fixed clutter blocks per camera (doors, pillars, windows)
    return {
        "wall": rng.uniform(60, 200, (n_cams, 3)),
        "floor": rng.uniform(40, 160, (n_cams, 3)),
        "horizon": rng.uniform(85, 110, n_cams),
        "block_x": rng.uniform(-10, W, (n_cams, k)),
        "block_w": rng.uniform(6, 24, (n_cams, k)),
        "block_y": rng.uniform(0, 60, (n_cams, k)),
        "block_h": rng.uniform(20, 90, (n_cams, k)),
        "block_rgb": rng.uniform(0, 255, (n_cams, k, 3)),
        "cast": rng.uniform(0.82, 1.18, (n_cams, 3)),
        "exposure": rng.uniform(0.75, 1.2, n_cams),
    }


# ---------------------------------------------------------------- rendering


def _render_set(rng: np.random.Generator, idents: dict[str, np.ndarray],
                scenes: dict[str, np.ndarray], ids: np.ndarray, cams: np.ndarray) -> PedestrianSet:
    n = ids.shape[0]
    images = np.empty((n, H, W, 3), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        images[sl] = _render_chunk(rng, idents, scenes, ids[sl], cams[sl])
    ids = ids.astype(np.int64)
    return PedestrianSet(images, ids, cams.astype(np.int64), idents["labels"][ids].copy())


class _Canvas:
    """A chunk of float images plus the pixel grids that shape masks are built from."""

    def __init__(self, background: np.ndarray) -> None:
        self.img = background
        self.yy = np.arange(H, dtype=np.float32)[None, :, None]
        self.xx = np.arange(W, dtype=np.float32)[None, None, :]

    def rect(self, x0, x1, y0, y1) -> np.ndarray:
        # Outer product of a row test and a column test: cheaper than a full (B, H, W) compare.
        rows = (self.yy >= _col(y0)) & (self.yy < _col(y1))
        cols = (self.xx >= _col(x0)) & (self.xx < _col(x1))
        return rows & cols

    def ellipse(self, cx, cy, rx, ry) -> np.ndarray:
        dx = (self.xx - _col(cx)) / _col(rx)
        dy = (self.yy - _col(cy)) / _col(ry)
        return dx * dx + dy * dy <= 1.0

    def trapezoid(self, cx, y0, y1, half_top, half_bottom) -> np.ndarray:
        t = np.clip((self.yy - _col(y0)) / np.maximum(_col(y1) - _col(y0), 1e-3), 0, 1)
        half = _col(half_top) + t * (_col(half_bottom) - _col(half_top))
        return (np.abs(self.xx - _col(cx)) <= half) & (self.yy >= _col(y0)) & (self.yy < _col(y1))

    def paint(self, mask: np.ndarray, rgb: np.ndarray, where: np.ndarray | None = None) -> None:
        if where is not None:
            mask = mask & np.asarray(where, dtype=bool).reshape(-1, 1, 1)
        np.copyto(self.img, np.asarray(rgb, np.float32)[:, None, None, :], where=mask[..., None])


def _col(v) -> np.ndarray:
    """Per-image scalar(s) -> shape (B, 1, 1) for broadcasting against the pixel grids."""
    return np.asarray(v, dtype=np.float32).reshape(-1, 1, 1)


def _render_chunk(rng: np.random.Generator, idents: dict[str, np.ndarray],
                  scenes: dict[str, np.ndarray], ids: np.ndarray, cams: np.ndarray) -> np.ndarray:
    b = ids.shape[0]
    p = {k: v[ids] for k, v in idents.items()}
    s = {k: v[cams] for k, v in scenes.items()}
    lab = p["labels"]
    canvas = _Canvas(_background(rng, s, b))

    # Geometry: person of height ph with top at y_top, centred on cx; u is "one head" of height.
    ph = H * p["height"] * rng.uniform(0.8, 1.0, b)
    u = ph / 8.0
    cx = W / 2 + rng.normal(0, 3.5, b)
    y_top = rng.uniform(1, 6, b) + (H - 4 - ph) * rng.uniform(0.2, 0.9, b)
    view = rng.choice(3, b, p=[0.4, 0.4, 0.2])  # 0 front, 1 back, 2 side
    side = view == 2
    build = p["build"] * np.where(side, 0.62, 1.0)
    step = np.sin(rng.uniform(0, 2 * np.pi, b)) * np.where(side, 0.55, 0.18) * u
    front, back = view == 0, view == 1
    facing = rng.choice([-1.0, 1.0], b)

    shoulder, waist, knee, ankle = (y_top + f * u for f in (1.15, 3.9, 5.9, 7.55))
    torso_half = 0.78 * u * build
    head_cy, head_ry, head_rx = y_top + 0.55 * u, 0.55 * u, 0.42 * u

    # Behind the body: long hair seen from the front, backpack seen from the side.
    hair_back = canvas.rect(cx - 0.5 * u, cx + 0.5 * u, head_cy, y_top + 2.4 * u)
    canvas.paint(hair_back, p["hair"], where=(lab[:, 2] == 1) & ~back)
    pack_x = cx - facing * torso_half * 1.6
    canvas.paint(canvas.rect(pack_x - 0.35 * u, pack_x + 0.35 * u, shoulder + 0.2 * u,
                             waist - 0.2 * u), p["bag_rgb"], where=(lab[:, 7] == 1) & side)

    # Legs (skin), then lower garment over them.
    knee_x = (cx - 0.32 * u * build + step, cx + 0.32 * u * build - step)
    leg_half = 0.27 * u * build
    legs = canvas.rect(knee_x[0] - leg_half, knee_x[0] + leg_half, waist, ankle) | \
        canvas.rect(knee_x[1] - leg_half, knee_x[1] + leg_half, waist, ankle)
    canvas.paint(legs, p["skin"])
    lower_end = np.where(lab[:, 4] == 1, knee, ankle)
    pants = (lab[:, 5] == 1)
    canvas.paint(legs & (canvas.yy < _col(lower_end)), p["lower"], where=pants)
    skirt = canvas.trapezoid(cx, waist - 0.1 * u, lower_end, torso_half * 0.95,
                             torso_half * 1.25 + np.abs(step))
    canvas.paint(skirt, p["lower"], where=~pants)
    shoe_rgb = np.where((p["shoes"] == 0)[:, None], 30.0,
                        np.where((p["shoes"] == 1)[:, None], 225.0, p["shoe_rgb"]))
    for kx in knee_x:
        toe = kx + facing * np.where(side, 0.25 * u, 0.0)
        canvas.paint(canvas.rect(toe - 0.33 * u, toe + 0.33 * u, ankle, ankle + 0.42 * u), shoe_rgb)

    # Torso with pattern, open jacket, arms with sleeves.
    torso = canvas.trapezoid(cx, shoulder, waist + 0.15 * u, torso_half, torso_half * 0.9)
    canvas.paint(torso, p["upper"])
    rel_y = canvas.yy - _col(shoulder)
    rel_x = canvas.xx - _col(cx)
    period = _col(p["period"] * u / 8)
    stripes_h = (rel_y / period) % 2 < 1
    stripes_v = (rel_x / period) % 2 < 1
    checks = stripes_h ^ stripes_v
    logo = canvas.rect(cx - 0.3 * u, cx + 0.3 * u, shoulder + 0.7 * u, shoulder + 1.3 * u)
    pat = p["pattern"]
    for k, mask in ((1, stripes_h), (2, stripes_v), (3, checks), (4, logo)):
        canvas.paint(torso & mask, p["upper2"], where=(pat == k) & ~(back & (k == 4)))
    canvas.paint(torso & canvas.rect(cx - 0.16 * u, cx + 0.16 * u, shoulder, waist),
                 p["upper2"], where=p["jacket"] & front)
    swing = step * 0.8
    arm_half = 0.2 * u * np.where(side, 1.1, 1.0)
    sleeve_end = np.where(lab[:, 3] == 1, shoulder + 0.85 * u, waist)
    for sign in (-1.0, 1.0):
        ax = cx + sign * (torso_half + arm_half * 0.8) * np.where(side, 0.0, 1.0) + sign * swing
        arm = canvas.rect(ax - arm_half, ax + arm_half, shoulder + 0.1 * u, waist + 0.25 * u)
        canvas.paint(arm, p["skin"])
        canvas.paint(arm & (canvas.yy < _col(sleeve_end)), p["upper"])
        if sign > 0:  # the handbag hangs from one hand
            canvas.paint(canvas.rect(ax - 0.35 * u, ax + 0.35 * u, waist + 0.1 * u,
                                     waist + 0.85 * u), p["bag_rgb"], where=lab[:, 9] == 1)

    # Backpack from the back covers the torso; from the front only its straps show.
    canvas.paint(canvas.rect(cx - torso_half * 0.7, cx + torso_half * 0.7, shoulder + 0.3 * u,
                             waist - 0.3 * u), p["bag_rgb"], where=(lab[:, 7] == 1) & back)
    for sign in (-1.0, 1.0):
        sx = cx + sign * torso_half * 0.55
        canvas.paint(canvas.rect(sx - 0.1 * u, sx + 0.1 * u, shoulder, shoulder + 1.6 * u),
                     p["bag_rgb"], where=(lab[:, 7] == 1) & front)
    # Shoulder bag: a diagonal strap and a bag at the hip.
    strap = np.abs((rel_x - _col(p["bag_side"] * torso_half * 0.6)) +
                   _col(p["bag_side"]) * rel_y * 0.55) < _col(0.12 * u)
    canvas.paint(torso & strap, p["bag_rgb"], where=(lab[:, 8] == 1) & ~side)
    bx = cx + p["bag_side"] * torso_half * 1.05
    canvas.paint(canvas.rect(bx - 0.4 * u, bx + 0.4 * u, waist - 0.4 * u, waist + 0.45 * u),
                 p["bag_rgb"], where=lab[:, 8] == 1)

    # Head, hair cap (the whole head from behind), hat.
    canvas.paint(canvas.ellipse(cx, head_cy, head_rx, head_ry), p["skin"])
    cap = canvas.ellipse(cx, head_cy - 0.1 * u, head_rx * 1.12, head_ry * 1.02) & \
        (canvas.yy < _col(head_cy - 0.12 * u + back * 0.9 * u))
    canvas.paint(cap, p["hair"])
    canvas.paint(canvas.rect(cx - head_rx * 1.2, cx + head_rx * 1.2, y_top - 0.15 * u,
                             head_cy - 0.2 * u), p["hat_rgb"], where=lab[:, 6] == 1)

    _occlude(rng, canvas, b)
    return _camera(rng, canvas.img, s, b)


def _background(rng: np.random.Generator, s: dict[str, np.ndarray], b: int) -> np.ndarray:
    yy = np.arange(H, dtype=np.float32)[None, :, None, None]
    horizon = (s["horizon"] + rng.normal(0, 4, b))[:, None, None, None]
    img = np.where(yy < horizon, s["wall"][:, None, None, :], s["floor"][:, None, None, :])
    img = np.broadcast_to(img, (b, H, W, 3)).astype(np.float32)
    canvas = _Canvas(img)
    shift = rng.normal(0, 4, b)
    for k in range(s["block_x"].shape[1]):
        x0 = s["block_x"][:, k] + shift
        y0 = s["block_y"][:, k]
        canvas.paint(canvas.rect(x0, x0 + s["block_w"][:, k], y0, y0 + s["block_h"][:, k]),
                     s["block_rgb"][:, k])
    for _ in range(2):  # per-image clutter: passers-by, signs, litter
        x0, y0 = rng.uniform(-8, W, b), rng.uniform(0, H, b)
        canvas.paint(canvas.rect(x0, x0 + rng.uniform(3, 14, b), y0, y0 + rng.uniform(3, 30, b)),
                     rng.uniform(0, 255, (b, 3)))
    return canvas.img


def _occlude(rng: np.random.Generator, canvas: _Canvas, b: int) -> None:
    # Partial occlusion of about one image in five: from below (railings, cars) or the side.
    kind = rng.choice(3, b, p=[0.8, 0.1, 0.1])
    top = rng.uniform(0.65, 0.85, b) * H
    side_w = rng.uniform(0.2, 0.4, b) * W
    left = rng.random(b) < 0.5
    x0 = np.where(kind == 1, 0.0, np.where(left, 0.0, W - side_w))
    x1 = np.where(kind == 1, W, np.where(left, side_w, W))
    y0 = np.where(kind == 1, top, 0.0)
    canvas.paint(canvas.rect(x0, x1, y0, H), rng.uniform(20, 235, (b, 3)), where=kind > 0)


def _camera(rng: np.random.Generator, img: np.ndarray, s: dict[str, np.ndarray], b: int) -> np.ndarray:
    gain = s["cast"] * s["exposure"][:, None] * rng.uniform(0.8, 1.2, (b, 1))
    gain = gain * rng.uniform(0.95, 1.05, (b, 3))
    img *= gain[:, None, None, :].astype(np.float32)
    blur = rng.random(b) < 0.35
    if blur.any():  # separable 3x3 box blur (motion / defocus) on the chosen images
        sub = np.pad(img[blur], ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        rows = sub[:, :-2] + sub[:, 1:-1] + sub[:, 2:]
        img[blur] = (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0
    # Sensor noise: uniform with the variance of N(0, sigma^2); uniform draws are 5x cheaper.
    sigma = rng.uniform(1.0, 7.0, b).astype(np.float32)[:, None, None, None]
    noise = rng.random(img.shape, dtype=np.float32)
    noise -= 0.5
    noise *= sigma * np.float32(np.sqrt(12.0))
    img += noise
    return np.clip(img, 0, 255).astype(np.uint8)
