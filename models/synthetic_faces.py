"""Synthetic faces: a deterministic, aligned 112x112 face data set drawn with numpy.

Why synthetic: featurelock must train, test and attack a face embedder offline, without
downloading a face data set (none may be fetched at run time, and real faces carry consent
questions of their own). Each identity has a fixed face: shape (width, jaw, chin), skin tone,
hair (colour, style, hairline), eyes (spacing, size, iris colour), brows, nose, mouth, ears,
glasses, beard and age cues (wrinkles, grey hair), with labelled attributes. Each image varies
pose (small yaw, roll, scale and shift, as left after 5-point alignment), lighting (direction,
strength, colour cast, exposure), expression (smile, open mouth, blink), occlusion (a mask over
mouth and nose, or a hand/object), clothing, background, blur and sensor noise.

Rendering is vectorised over a chunk of images in face-normalised coordinates (u across the
face, v down it, the face spanning v in [-1, 1]); shapes are soft-edged (about one pixel of
anti-aliasing). Same seed, same bytes.

Labels follow the pedestrian set's conventions (`featurelock.models.synthetic`): 0-based class
indices in ATTRIBUTES order, and a per-image `cams` index — here the capture session (a
lighting/camera set-up) — so the Market-1501-style query/gallery split and the harness's
linkability protocol apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synthetic import _cameras_per_image, _query_mask

__all__ = ["FACE_ATTRIBUTES", "FACE_IMAGE_SHAPE", "FaceSet", "FaceSplits", "make_face_splits",
           "make_faces"]

FACE_IMAGE_SHAPE = (112, 112, 3)
H, W = FACE_IMAGE_SHAPE[:2]

# name -> number of classes. Class meanings (index: meaning):
#   gender 0 male 1 female | age 0 young 1 adult 2 old | skin_tone 0 light 1 medium 2 dark
#   hair_color 0 black 1 brown 2 blond 3 red 4 grey | hair_style 0 bald 1 short 2 long 3 fringe
#   eye_color 0 brown 1 blue 2 green | glasses 0 none 1 clear 2 sunglasses
#   beard 0 none 1 moustache 2 full | face_shape 0 oval 1 round 2 long
FACE_ATTRIBUTES: dict[str, int] = {
    "gender": 2, "age": 3, "skin_tone": 3, "hair_color": 5, "hair_style": 4, "eye_color": 3,
    "glasses": 3, "beard": 3, "face_shape": 3,
}
_ATTR_NAMES = tuple(FACE_ATTRIBUTES)
_HAIR_RGB = np.array([[22, 18, 16], [85, 55, 32], [205, 170, 100], [160, 70, 30],
                      [170, 170, 168]], np.float32)
_IRIS_RGB = np.array([[80, 50, 25], [70, 120, 190], [70, 130, 80]], np.float32)
_CHUNK = 128  # images rendered at once: (128, 112, 112) float32 temporaries stay small


@dataclass(frozen=True)
class FaceSet:
    """Images (N, 112, 112, 3) uint8 RGB, with identity, session and attribute labels."""

    images: np.ndarray
    ids: np.ndarray  # (N,) int64 identity labels
    cams: np.ndarray  # (N,) int64 capture session, 0-based (the pedestrians' camera)
    attributes: np.ndarray  # (N, len(attribute_names)) int64 class indices
    attribute_names: tuple[str, ...] = _ATTR_NAMES

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def subset(self, index: np.ndarray) -> "FaceSet":
        return FaceSet(self.images[index], self.ids[index], self.cams[index],
                       self.attributes[index], self.attribute_names)

    def attribute(self, name: str) -> np.ndarray:
        return self.attributes[:, self.attribute_names.index(name)]


@dataclass(frozen=True)
class FaceSplits:
    """Train identities disjoint from the identities shared by query and gallery."""

    train: FaceSet
    query: FaceSet
    gallery: FaceSet


def make_face_splits(seed: int = 0, n_train_ids: int = 400, n_test_ids: int = 100,
                     images_per_id: int = 12, n_sessions: int = 4) -> FaceSplits:
    """Draw a train / query / gallery split; the same arguments always give the same arrays.

    Train identities are 0..n_train_ids-1, test identities follow. The query holds one image
    per (identity, session) seen at least twice; the gallery the rest (as the pedestrians').
    """
    _check_positive(n_train_ids=n_train_ids, n_test_ids=n_test_ids, n_sessions=n_sessions)
    if images_per_id < 3:
        raise ValueError(f"images_per_id must be >= 3 (query and gallery), got {images_per_id}")
    seeds = np.random.SeedSequence([seed, 0xFACE]).spawn(3)
    n_ids = n_train_ids + n_test_ids
    idents = _sample_identities(np.random.default_rng(seeds[0]), n_ids)
    sessions = _sample_sessions(np.random.default_rng(seeds[1]), n_sessions)
    rng = np.random.default_rng(seeds[2])
    ids = np.repeat(np.arange(n_ids), images_per_id)
    cams = _cameras_per_image(rng, n_ids, images_per_id, n_sessions)
    everything = _render_set(rng, idents, sessions, ids, cams)
    train = everything.subset(np.flatnonzero(ids < n_train_ids))
    test_index = np.flatnonzero(ids >= n_train_ids)
    is_query = _query_mask(ids[test_index], cams[test_index])
    return FaceSplits(train, everything.subset(test_index[is_query]),
                      everything.subset(test_index[~is_query]))


def make_faces(n_images: int, n_ids: int, seed: int = 0, n_sessions: int = 4) -> FaceSet:
    """Draw n_images of n_ids identities (ids cycle 0..n_ids-1)."""
    _check_positive(n_images=n_images, n_ids=n_ids, n_sessions=n_sessions)
    seeds = np.random.SeedSequence([seed, 0xFACE]).spawn(3)
    idents = _sample_identities(np.random.default_rng(seeds[0]), n_ids)
    sessions = _sample_sessions(np.random.default_rng(seeds[1]), n_sessions)
    rng = np.random.default_rng(seeds[2])
    ids = np.arange(n_images) % n_ids
    return _render_set(rng, idents, sessions, ids, rng.integers(0, n_sessions, n_images))


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


# ---------------------------------------------------------------- identities and sessions


def _sample_identities(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-identity face and labels; correlations (beard, hair, grey with age) are loose."""
    female = rng.random(n) < 0.5
    age = rng.choice(3, n, p=[0.3, 0.5, 0.2])
    tone_cls = rng.choice(3, n, p=[0.4, 0.35, 0.25])
    tone = (tone_cls + rng.uniform(0, 1, n)) / 3.0  # 0 light .. 1 dark, within its class
    skin = np.stack([245 - 150 * tone, 205 - 140 * tone, 180 - 125 * tone], 1)
    hair_cls = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    hair_cls = np.where((age == 2) & (rng.random(n) < 0.7), 4, hair_cls)
    style = np.where(female, rng.choice(4, n, p=[0.0, 0.2, 0.55, 0.25]),
                     rng.choice(4, n, p=[0.15, 0.65, 0.08, 0.12]))
    style = np.where((style == 0) & (age == 0), 1, style)  # the young are not bald here
    beard = np.where(female | (age == 0) & (rng.random(n) < 0.5), 0,
                     rng.choice(3, n, p=[0.5, 0.2, 0.3]))
    shape = rng.choice(3, n)
    width = np.choose(shape, [rng.uniform(0.74, 0.80, n), rng.uniform(0.82, 0.88, n),
                              rng.uniform(0.66, 0.72, n)])
    labels = np.stack([female, age, tone_cls, hair_cls, style,
                       rng.choice(3, n, p=[0.6, 0.25, 0.15]),     # eye colour
                       rng.choice(3, n, p=[0.65, 0.25, 0.10]),    # glasses
                       beard, shape], axis=1).astype(np.int64)
    hair = _HAIR_RGB[hair_cls] * rng.uniform(0.85, 1.15, (n, 1)) + rng.normal(0, 6, (n, 3))
    return {
        "labels": labels,
        "skin": np.clip(skin + rng.normal(0, 6, (n, 3)), 0, 255),
        "hair": np.clip(hair, 0, 255),
        "lips": np.clip(skin * np.array([0.85, 0.55, 0.55]) + rng.normal(0, 8, (n, 3))
                        + np.where(female, 15.0, 0.0)[:, None] * np.array([1.0, -0.3, 0.1]),
                        0, 255),
        "iris": np.clip(_IRIS_RGB[labels[:, 5]] + rng.normal(0, 10, (n, 3)), 0, 255),
        "frame": rng.uniform(10, 200, (n, 3)) * np.where(rng.random(n) < 0.6, 0.2, 1.0)[:, None],
        "width": width,
        "jaw": np.where(female, rng.uniform(0.15, 0.35, n), rng.uniform(0.0, 0.2, n)),
        "squareness": np.where(shape == 1, 2.0, rng.uniform(2.0, 2.8, n)),
        "hairline": rng.uniform(-0.62, -0.48, n) + np.where(age == 2, 0.06, 0.0),
        "hair_length": rng.uniform(0.6, 1.3, n),
        "parting": rng.uniform(-0.3, 0.3, n),
        "eye_sep": rng.uniform(0.27, 0.36, n),
        "eye_v": rng.uniform(-0.16, -0.04, n),
        "eye_size": rng.uniform(0.8, 1.2, n),
        "brow_gap": rng.uniform(0.11, 0.18, n),
        "brow_thick": rng.uniform(0.025, 0.06, n) * np.where(female, 0.75, 1.0),
        "brow_tilt": rng.uniform(-0.15, 0.15, n),
        "nose_len": rng.uniform(0.28, 0.42, n),
        "nose_width": rng.uniform(0.08, 0.15, n),
        "mouth_v": rng.uniform(0.50, 0.60, n),
        "mouth_width": rng.uniform(0.18, 0.28, n),
        "lip_thick": rng.uniform(0.025, 0.05, n) * np.where(female, 1.25, 1.0),
        "ear_size": rng.uniform(0.13, 0.2, n),
        "mole": np.where(rng.random(n) < 0.3, 1.0, 0.0),
        "mole_uv": np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.1, 0.6, n)], 1),
        "wrinkles": np.where(age == 2, rng.uniform(0.6, 1.0, n),
                             np.where(age == 1, rng.uniform(0.0, 0.35, n), 0.0)),
    }


def _sample_sessions(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per-session capture set-up: a mild light bias, colour cast and exposure. Backdrop and
    most of the lighting are drawn per image: with a handful of sessions per seed, a model
    could otherwise learn the sessions' looks instead of faces (measured: trained with fixed
    per-session backdrops, TAR@FMR1e-3 fell from 0.72 to 0.04-0.10 on another seed's sessions).
    """
    angle = rng.uniform(0, 2 * np.pi, n)
    return {"light": np.stack([np.cos(angle), np.sin(angle)], 1) * rng.uniform(0.0, 0.15, (n, 1)),
            "cast": rng.uniform(0.9, 1.1, (n, 3)), "exposure": rng.uniform(0.9, 1.1, n)}


# ---------------------------------------------------------------- rendering


def _render_set(rng: np.random.Generator, idents: dict[str, np.ndarray],
                sessions: dict[str, np.ndarray], ids: np.ndarray, cams: np.ndarray) -> FaceSet:
    n = ids.shape[0]
    images = np.empty((n, H, W, 3), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        images[sl] = _render_chunk(rng, {k: v[ids[sl]] for k, v in idents.items()},
                                   {k: v[cams[sl]] for k, v in sessions.items()})
    ids = ids.astype(np.int64)
    return FaceSet(images, ids, cams.astype(np.int64), idents["labels"][ids].copy())


def _c(v) -> np.ndarray:
    """Per-image scalar(s) -> (B, 1, 1), to broadcast against (B, H, W) coordinates."""
    return np.asarray(v, dtype=np.float32).reshape(-1, 1, 1)


class _Face:
    """A chunk of float images and its face-normalised coordinates (u across, v down).

    Pixel (x, y) maps to u = (cos r dx + sin r dy) / size, v = (-sin r dx + cos r dy) / size
    with (dx, dy) its offset from the face centre and r the roll; shapes are evaluated only
    inside the pixel window that holds them in every image of the chunk.
    """

    def __init__(self, img: np.ndarray, centre: tuple[np.ndarray, np.ndarray], roll: np.ndarray,
                 size: np.ndarray) -> None:
        self.img = img
        self.cx, self.cy, self.size = centre[0], centre[1], size
        self.cos, self.sin = np.cos(roll), np.sin(roll)
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        dx, dy = xx[None] - _c(self.cx), yy[None] - _c(self.cy)
        cos, sin = _c(self.cos), _c(self.sin)
        self.u = (cos * dx + sin * dy) / _c(size)
        self.v = (-sin * dx + cos * dy) / _c(size)
        self.px = _c(size)  # pixels per face unit, for one-pixel soft edges

    def _window(self, cu, cv, radius) -> tuple[slice, slice]:
        """Rows and columns that hold a disc of `radius` face units around (cu, cv)."""
        cu, cv = np.broadcast_arrays(np.asarray(cu, np.float64), np.asarray(cv, np.float64))
        x = self.cx + self.size * (self.cos * cu - self.sin * cv)
        y = self.cy + self.size * (self.sin * cu + self.cos * cv)
        r = self.size * np.asarray(radius) + 2.0
        x0, x1 = int(max(np.floor((x - r).min()), 0)), int(min(np.ceil((x + r).max()) + 1, W))
        y0, y1 = int(max(np.floor((y - r).min()), 0)), int(min(np.ceil((y + r).max()) + 1, H))
        return slice(y0, max(y1, y0)), slice(x0, max(x1, x0))

    def ellipse(self, cu, cv, ru, rv, power: float | np.ndarray = 2.0) -> np.ndarray:
        """Soft alpha of a (super)ellipse; `power` 2 is an ellipse, larger is squarer."""
        rows, cols = self._window(cu, cv, np.maximum(ru, rv) * (1.0 if np.isscalar(power)
                                                                 and power == 2.0 else 1.42))
        out = np.zeros(self.u.shape, np.float32)
        u, v = self.u[:, rows, cols], self.v[:, rows, cols]
        du, dv = (u - _c(cu)) / _c(ru), (v - _c(cv)) / _c(rv)
        if np.isscalar(power) and power == 2.0:
            q = du * du + dv * dv
        else:  # |x|^p as exp(p log|x|): numpy's pow with an array exponent is far slower
            p = _c(power)
            q = np.exp(p * np.log(np.abs(du) + 1e-6)) + np.exp(p * np.log(np.abs(dv) + 1e-6))
        out[:, rows, cols] = np.clip(0.5 + (1.0 - q) * self.px * _c(np.minimum(ru, rv)) / 2.0,
                                     0.0, 1.0)
        return out

    def band(self, dist: np.ndarray, half: np.ndarray) -> np.ndarray:
        """Soft alpha of |dist| < half (a stroke), both in face units."""
        return np.clip(0.5 + (_c(half) - np.abs(dist)) * self.px, 0.0, 1.0)

    def paint(self, alpha: np.ndarray, rgb, where=None, strength: float = 1.0) -> None:
        """Blend `rgb` (B, 3) in with `alpha`, only over the rows and columns it touches."""
        alpha = np.broadcast_to(alpha, self.u.shape)
        keep = np.ones(alpha.shape[0], bool) if where is None else np.asarray(where, bool)
        if not keep.any():
            return
        touched = alpha.max(axis=0, where=keep[:, None, None], initial=0.0) > 0
        rows, cols = np.flatnonzero(touched.any(axis=1)), np.flatnonzero(touched.any(axis=0))
        if rows.size == 0:
            return
        win = (keep, slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        a = alpha[win][..., None] * np.float32(strength)
        rgb = np.asarray(rgb, np.float32)[keep][:, None, None, :]
        img = self.img[win]
        img += a * (rgb - img)
        self.img[win] = img


def _render_chunk(rng: np.random.Generator, p: dict[str, np.ndarray],
                  s: dict[str, np.ndarray]) -> np.ndarray:
    b = p["width"].shape[0]
    lab = p["labels"]
    # Pose as alignment leaves it: small roll, scale, shift; yaw moves features sideways.
    roll = rng.normal(0, 0.07, b)
    size = 40.0 * rng.uniform(0.9, 1.1, b)  # pixels per face unit (half the face height)
    cx, cy = W / 2 + rng.normal(0, 2.5, b), H * 0.48 + rng.normal(0, 2.5, b)
    yaw = rng.uniform(-0.35, 0.35, b)
    yy = np.arange(H, dtype=np.float32)[None, :, None, None]
    back = rng.uniform(30, 230, (b, 3))
    grad = (yy / H - 0.5) * rng.uniform(-60, 60, (b, 1, 1, 3)).astype(np.float32)
    img = np.broadcast_to(back[:, None, None, :], (b, H, W, 3)).astype(np.float32) + grad
    f = _Face(img, (cx, cy), roll, size)
    u = f.u

    w = p["width"] * (1.0 - 0.12 * np.abs(yaw))
    fu = yaw * 0.06  # the outline turns a little, the features more (they sit in front)
    eu = yaw * 0.22
    hair, skin = p["hair"], p["skin"]
    style, beard, glasses = lab[:, 4], lab[:, 7], lab[:, 6]

    # Clothes and neck, long hair behind the head.
    clothes = rng.uniform(20, 235, (b, 3))
    f.paint(f.ellipse(fu, 2.05, 1.45, 0.85), clothes)
    f.paint(f.ellipse(fu, 1.0, 0.3 * p["width"] / 0.77, 0.5), skin * 0.85)
    f.paint(f.ellipse(fu, 0.2 * p["hair_length"], w * 1.22, 0.6 + 0.75 * p["hair_length"]),
            hair, where=style == 2)
    # Ears, then the face: a superellipse whose lower half narrows towards the chin.
    for side in (-1.0, 1.0):
        f.paint(f.ellipse(fu + side * w * 0.98, 0.02, p["ear_size"] * 0.55, p["ear_size"]),
                skin * 0.92)
    taper = 1.0 - _c(p["jaw"]) * np.clip(f.v, 0, 1) ** 2
    f.u = (u - _c(fu)) / taper + _c(fu)
    f.paint(f.ellipse(fu, 0.0, w, 1.0, p["squareness"]), skin)
    f.u = u
    face = f.ellipse(fu, 0.0, w, 1.0, p["squareness"])

    # Age: forehead lines and nasolabial folds, stronger with age.
    for line_v in (-0.62, -0.52, -0.42):
        f.paint(f.band(f.v - _c(line_v) - 0.04 * np.sin(6 * (f.u - _c(eu))), 0.012)
                * (np.abs(f.u - _c(eu)) < 0.35), skin * 0.7, strength=1.0, where=p["wrinkles"]
                > 0.5)
    for side in (-1.0, 1.0):
        fold = f.u - _c(eu + side * 0.2) - side * 0.25 * (f.v - 0.3)
        f.paint(f.band(fold, 0.012) * ((f.v > 0.2) & (f.v < 0.55)), skin * 0.72,
                where=p["wrinkles"] > 0.2, strength=0.8)

    # Beard (full: jaw and chin) and moustache, in hair colour.
    beard_rgb = hair * 0.8
    f.paint(face * np.clip((f.v - 0.28) * 8, 0, 1), beard_rgb, where=beard == 2, strength=0.9)

    # Eyes: whites, iris, pupil; blinks close them. Brows above.
    blink = np.where(rng.random(b) < 0.08, 0.2, 1.0) * rng.uniform(0.85, 1.1, b)
    for side in (-1.0, 1.0):
        ex = eu + side * p["eye_sep"] * (1.0 - 0.2 * side * yaw)
        ru = 0.12 * p["eye_size"]
        rv = 0.06 * p["eye_size"] * blink
        f.paint(f.ellipse(ex, p["eye_v"], ru * 1.15, rv * 1.6 + 0.02), skin * 0.8)
        f.paint(f.ellipse(ex, p["eye_v"], ru, rv), np.full((b, 3), 240.0))
        gaze = rng.normal(0, 0.02, b) + yaw * 0.05
        iris = f.ellipse(ex + gaze, p["eye_v"], 0.055 * p["eye_size"], 0.055 * p["eye_size"])
        eye_mask = f.ellipse(ex, p["eye_v"], ru, rv)
        f.paint(iris * eye_mask, p["iris"])
        f.paint(f.ellipse(ex + gaze, p["eye_v"], 0.022, 0.022) * eye_mask, np.full((b, 3), 10.0))
        brow_v = p["eye_v"] - p["brow_gap"] - 0.05 * rng.uniform(-1, 1, b)
        brow = f.band(f.v - _c(brow_v) - _c(side * p["brow_tilt"]) * (f.u - _c(ex))
                      + 0.6 * (f.u - _c(ex)) ** 2, p["brow_thick"])
        f.paint(brow * (np.abs(f.u - _c(ex)) < 0.15), hair * 0.75)

    # Nose: a shaded ridge and the nostrils; mole.
    nose_tip = p["eye_v"] + p["nose_len"]
    ridge = (f.v > _c(p["eye_v"] + 0.05)) & (f.v < _c(nose_tip))
    f.paint(f.band(f.u - _c(eu * 1.1 + p["nose_width"] * 0.5), 0.012) * ridge, skin * 0.78)
    f.paint(f.ellipse(eu * 1.1, nose_tip, p["nose_width"], 0.05), skin * 0.8)
    for side in (-1.0, 1.0):
        f.paint(f.ellipse(eu * 1.1 + side * p["nose_width"] * 0.45, nose_tip + 0.02, 0.03, 0.017),
                skin * 0.4)
    f.paint(f.ellipse(eu + p["mole_uv"][:, 0], p["mole_uv"][:, 1], 0.025, 0.025), skin * 0.45,
            where=p["mole"] > 0)

    # Mouth: lips curved by the smile; an open mouth shows a dark gap.
    smile = rng.uniform(-0.5, 1.5, b)
    opened = np.where(rng.random(b) < 0.25, rng.uniform(0.02, 0.07, b), 0.0)
    mu = f.u - _c(eu)
    curve = f.v - _c(p["mouth_v"]) + _c(smile) * 0.9 * (mu ** 2 - _c(p["mouth_width"]) ** 2 / 3)
    within = np.clip((_c(p["mouth_width"]) - np.abs(mu)) * f.px, 0, 1)
    f.paint(f.band(curve, p["lip_thick"] + opened / 2) * within, p["lips"])
    f.paint(f.band(curve, opened / 2) * within, np.full((b, 3), 40.0), where=opened > 0)
    f.paint(f.ellipse(eu, p["mouth_v"] - 0.08, p["mouth_width"] * 0.9, 0.04), beard_rgb,
            where=beard >= 1, strength=0.9)

    # Hair on top: a cap above the hairline (fringe: lower, straight), none when bald.
    head = f.ellipse(fu, -0.08, w * 1.1, 1.05)
    hairline = _c(p["hairline"]) + 0.08 * np.abs(f.u - _c(fu + p["parting"])) ** 1.5
    hairline = np.where(_c(style == 3), _c(p["eye_v"] - p["brow_gap"] - 0.12), hairline)
    cap = head * np.clip((hairline - f.v) * f.px, 0, 1)
    f.paint(cap, hair, where=style != 0)
    sides = head * (np.abs(f.u - _c(fu)) > _c(w * 0.88)) * (f.v < 0.1)
    f.paint(sides, hair, where=(style == 2) | (style == 1))

    # Glasses: clear frames (rings and a bridge) or dark lenses.
    for side in (-1.0, 1.0):
        ex = eu + side * p["eye_sep"] * (1.0 - 0.2 * side * yaw)
        lens = f.ellipse(ex, p["eye_v"] + 0.01, 0.17, 0.12)
        f.paint(lens, np.full((b, 3), 25.0), where=glasses == 2, strength=0.92)
        ring = f.ellipse(ex, p["eye_v"] + 0.01, 0.19, 0.14) - lens
        f.paint(np.clip(ring, 0, 1), p["frame"], where=glasses >= 1)
    bridge = f.band(f.v - _c(p["eye_v"]), 0.015) * (np.abs(f.u - _c(eu)) < _c(p["eye_sep"] - 0.17))
    f.paint(bridge, p["frame"], where=glasses >= 1)

    _occlude(rng, f, b, eu)
    return _camera(rng, f, s, b)


def _occlude(rng: np.random.Generator, f: _Face, b: int, eu: np.ndarray) -> None:
    """About one image in ten: a mask over nose and mouth; one in ten: a hand or object."""
    kind = rng.choice(3, b, p=[0.8, 0.1, 0.1])
    mask_rgb = rng.choice([0, 1], b)[:, None] * 200.0 + rng.uniform(20, 55, (b, 3))
    f.paint(f.ellipse(eu, 0.55, 0.7, 0.5) * (f.v > 0.1), mask_rgb, where=kind == 1)
    ou, ov = rng.uniform(-0.9, 0.9, b), rng.uniform(0.0, 1.1, b)
    f.paint(f.ellipse(ou, ov, rng.uniform(0.25, 0.45, b), rng.uniform(0.2, 0.4, b)),
            rng.uniform(30, 230, (b, 3)), where=kind == 2)


def _camera(rng: np.random.Generator, f: _Face, s: dict[str, np.ndarray], b: int) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi, b)
    light = s["light"] + np.stack([np.cos(angle), np.sin(angle)], 1) * rng.uniform(0, 0.3, (b, 1))
    shade = 1.0 + _c(light[:, 0]) * f.u + _c(light[:, 1]) * f.v
    gain = s["cast"] * rng.uniform(0.92, 1.08, (b, 3)) * (s["exposure"] * rng.uniform(
        0.8, 1.2, b))[:, None]
    img = f.img * shade[..., None] * gain[:, None, None, :].astype(np.float32)
    blur = rng.random(b) < 0.3
    if blur.any():  # separable 3x3 box blur (defocus) on the chosen images
        sub = np.pad(img[blur], ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        rows = sub[:, :-2] + sub[:, 1:-1] + sub[:, 2:]
        img[blur] = (rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]) / 9.0
    sigma = rng.uniform(1.0, 6.0, b).astype(np.float32)[:, None, None, None]
    # Sensor noise: uniform with the variance of N(0, sigma^2).
    noise = rng.random(img.shape, dtype=np.float32)
    noise -= 0.5
    img += noise * sigma * np.float32(np.sqrt(12.0))
    return np.clip(img, 0, 255).astype(np.uint8)
