"""A disguise scan: every disguise attack against every disguised-input target, each beside a
control where the same attack at the same budget must succeed.

    result = run_disguise_scan({"rmt": spec1, "aes": spec2}, DisguiseScanConfig(), data)

Per target a fresh disguise key is generated in process (never stored); the attacker's view
(`DisguiseView`) holds the victims' disguised images, its own public images and, through the
view, its known pairs and chosen-plaintext oracle. Each attack names its control
(`Attack.control`): "plain" (no disguise), "rmt-noiseless" (the least-squares setting) or
"shuffle" (the permutation alone). Verdict per target and column, from the summary test:

    leaks          the interval's lower end exceeds chance + margin
    resists        not leaking, while the control's same test leaks
    inconclusive   neither leaks: the attack lacks power here, so nothing is proven

Intervals are per test (95 %), not simultaneous: the scan runs few tests and reports them all.

Each attack names who it is (`attacker`, or one per column: a viewer with a plain model,
a viewer with disguised images only, a learner with labels, a holder of k pairs, ...). Per
target, `attackers` says what the disguise hides from each: "leaks" if any of that
attacker's columns leaks, "resists" if every one resists, else "inconclusive".
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from featurelock.middleware import Keyset
from featurelock.middleware.disguise import Disguiser, DisguiseSpec

from .attack import ATTACKS, Finding
from .attributes import jsonable
from .disguise_attacks import disguise_attack_names
from .disguise_view import DisguiseView
from .report import image_grid

__all__ = ["DisguiseScanConfig", "DisguiseData", "disguise_data", "run_disguise_scan",
           "write_disguise_report", "control_spec", "disguise_table", "picture", "stack_rows"]


@dataclass(frozen=True)
class DisguiseScanConfig:
    seed: int = 0
    block: int = 8
    known_pairs: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024)
    chosen: int = 1000  # chosen plaintexts for the learned inverse
    inverse_epochs: int = 20
    confidence: float = 0.95
    n_boot: int = 500
    margin: float = 0.05  # absolute, on rank-1 / shares
    ssim_margin: float = 0.02  # over the mean image's SSIM
    grid: int = 6
    attacks: tuple[str, ...] = field(default_factory=disguise_attack_names)

    def __post_init__(self) -> None:
        bad = set(self.attacks) - set(disguise_attack_names())
        if bad or not self.attacks:
            raise ValueError(f"attacks must be among {', '.join(disguise_attack_names())}, got "
                             f"{', '.join(sorted(bad)) or 'none'}")
        if not self.known_pairs or min(self.known_pairs) < 2:
            raise ValueError("known_pairs must be counts >= 2")


@dataclass(frozen=True)
class DisguiseData:
    victims: np.ndarray
    victim_ids: np.ndarray
    victim_cams: np.ndarray
    public: np.ndarray
    public_ids: np.ndarray
    victim_attributes: np.ndarray | None = None
    public_attributes: np.ndarray | None = None
    attribute_names: tuple[str, ...] = ()


def disguise_data(seed: int = 0, victim_ids: int = 50, per_id: int = 6, public_images: int = 1200,
                  public_ids: int = 200, downsample: int = 1) -> DisguiseData:
    """Synthetic pedestrians: victims and the attacker's public images (separate identities,
    drawn from separate seeds). `downsample` keeps every n-th pixel (tiny test sizes)."""
    from featurelock.models.synthetic import make_pedestrians

    vic = make_pedestrians(victim_ids * per_id, victim_ids, seed=seed + 1)
    pub = make_pedestrians(public_images, public_ids, seed=seed + 2)
    s = slice(None, None, downsample)
    return DisguiseData(np.ascontiguousarray(vic.images[:, s, s]), vic.ids, vic.cams,
                        np.ascontiguousarray(pub.images[:, s, s]), pub.ids, vic.attributes,
                        pub.attributes, vic.attribute_names)


def control_spec(kind: str, spec: DisguiseSpec | None) -> DisguiseSpec | None:
    """The control disguise of an attack on `spec` (None: no disguise)."""
    if kind == "plain" or spec is None:
        return None
    if kind == "rmt-noiseless":
        return spec.with_(variant="rmt", noise=0.0)
    if kind == "shuffle":
        return spec.with_(variant="shuffle", noise=0.0, shared=False)
    raise ValueError(f"unknown control {kind!r}")


def _label(spec: DisguiseSpec | None) -> str:
    if spec is None:
        return "plain"
    extra = (f" noise {spec.noise:g}" if spec.noise else "") + (" shared" if spec.shared else "")
    return f"{spec.variant} b{spec.block}{extra}"


class _Views:
    """One view per disguise spec, each under its own fresh key, built once."""

    def __init__(self, data: DisguiseData, config: DisguiseScanConfig, plain_model: Any,
                 disguised_models: Mapping[str, Any], disguisers: Mapping[str, Disguiser]) -> None:
        self.data, self.config, self.disguisers = data, config, disguisers
        self.plain_model, self.disguised_models = plain_model, disguised_models
        self._views: dict[tuple[str, str | None], DisguiseView] = {}

    def get(self, spec: DisguiseSpec | None, name: str | None = None) -> DisguiseView:
        """A target's view (`name`), or a control's (no name): never shared, so a target
        with the same spec as some control still gets its own key and trained model."""
        label = _label(spec)
        cache = (label, name)
        if cache not in self._views:
            d = self.data
            truth = None
            if spec is None:
                oracle = lambda x: np.array(x, copy=True)  # noqa: E731
                model = self.plain_model
                truth = np.arange(d.victims.shape[1] // self.config.block *
                                  (d.victims.shape[2] // self.config.block))
            else:
                disguiser = self.disguisers.get(name or "")
                if disguiser is None or disguiser.spec != spec:
                    disguiser = Keyset.generate("disguise").disguiser(spec)
                oracle = disguiser.disguise
                model = self.disguised_models.get(name or label)
                # The secret permutation (source of each disguised position), read here to
                # score the jigsaw only; no attack gets it.
                truth = disguiser._derived()["inv"]
            self._views[cache] = DisguiseView(
                label, spec, oracle, d.victims, d.victim_ids, d.victim_cams, oracle(d.victims),
                d.public, d.public_ids, self.config, self.plain_model, model,
                true_source=truth, public_attributes=d.public_attributes,
                victim_attributes=d.victim_attributes, attribute_names=d.attribute_names)
        return self._views[cache]


def run_disguise_scan(targets: Mapping[str, DisguiseSpec], config: DisguiseScanConfig,
                      data: DisguiseData, plain_model: Any = None,
                      disguised_models: Mapping[str, Any] | None = None,
                      disguisers: Mapping[str, Disguiser] | None = None, log=print) -> dict:
    """{target: {"spec", "columns": {column: verdict}, "attacks": {...}, "images"}}.
    `disguised_models[target]` was trained by the server on images disguised by
    `disguisers[target]` (the same key); without one a target gets a fresh key."""
    views = _Views(data, config, plain_model, disguised_models or {}, disguisers or {})
    attacks = [ATTACKS[name](config) for name in config.attacks]
    result: dict[str, Any] = {"config": jsonable(asdict(config)), "targets": {}}
    control_cache: dict[tuple[str, str], Any] = {}
    for name, spec in targets.items():
        view = views.get(spec, name)
        entry: dict[str, Any] = {"spec": spec.to_dict(), "columns": {}, "attacks": {},
                                 "images": {"victims": data.victims[:config.grid],
                                            "disguised": view.victims_disguised[:config.grid]}}
        for attack in attacks:
            log(f"disguise scan: {attack.name} on {name}")
            outcome = attack.run(view)
            cspec = control_spec(attack.control, spec)
            key = (attack.name, _label(cspec))
            if key not in control_cache:
                control_cache[key] = attack.run(views.get(cspec))
            control = control_cache[key]
            entry["attacks"][attack.name] = {
                "holds": attack.holds, "control": _label(cspec), "details": outcome.details,
                "tests": [_test(f, config) for f in outcome.findings],
                "control_tests": [_test(f, config) for f in control.findings]}
            for column in attack.columns:
                verdict = _verdict(outcome.findings, control.findings, column, config)
                if verdict:
                    entry["columns"][column] = {**verdict, "control": _label(cspec)}
            entry["images"].update(outcome.images)
        entry["attackers"] = _attackers(attacks, entry["columns"])
        result["targets"][name] = entry
    return result


def _attackers(attacks: list, columns: dict) -> dict[str, str]:
    """Per attacker: its verdict over the columns of its attacks (see the module docstring)."""
    out: dict[str, list[str]] = {}
    for attack in attacks:
        who = getattr(attack, "attacker", attack.name)  # a name, or {column: name}
        for c in attack.columns:
            if c in columns:
                out.setdefault(who.get(c, attack.name) if isinstance(who, dict) else who,
                               []).append(columns[c]["status"])
    return {who: ("leaks" if "leaks" in s else "resists" if s and set(s) == {"resists"}
                  else "inconclusive") for who, s in out.items()}


def _test(f: Finding, config: DisguiseScanConfig) -> dict:
    margin = config.margin if f.margin is None else f.margin
    return {"column": f.column, "what": f.what, "score": f.score.to_dict(),
            "chance": round(f.chance, 4), "n": f.n, "margin": margin, "summary": f.summary,
            "leaks": bool(f.score.low > f.chance + margin)}


def _best(findings: list[Finding], column: str, config: DisguiseScanConfig) -> dict | None:
    tests = [_test(f, config) for f in findings if f.column == column]
    if not tests:
        return None
    return max(tests, key=lambda t: t["score"]["low"] - t["chance"] - t["margin"])


def _verdict(findings: list[Finding], control: list[Finding], column: str,
             config: DisguiseScanConfig) -> dict | None:
    best = _best(findings, column, config)
    if best is None:
        return None
    ctrl = _best(control, column, config)
    if best["leaks"]:
        status = "leaks"
    elif ctrl is not None and ctrl["leaks"]:
        status = "resists"
    else:
        status = "inconclusive"
    return {"status": status, "best": best, "control_best": ctrl}


def disguise_table(result: dict) -> str:
    """Plain-text verdicts: one line per target and column, beside control and chance."""
    lines = [f"{'target':<22} {'column':<17} {'score [low]':<16} {'chance':>7}  "
             f"{'control':<22} verdict"]
    for name, entry in result["targets"].items():
        for column, v in entry["columns"].items():
            b, c = v["best"], v["control_best"]
            ctrl = f"{c['score']['estimate']:.3f} ({v['control']})" if c else "-"
            lines.append(f"{name:<22} {column:<17} {b['score']['estimate']:.3f} "
                         f"[{b['score']['low']:.3f}]  {b['chance']:>7.3f}  {ctrl:<22} "
                         f"{v['status']}")
    lines.append("")
    lines.append(f"{'target':<22} {'attacker':<36} verdict")
    for name, entry in result["targets"].items():
        for who, status in entry.get("attackers", {}).items():
            lines.append(f"{name:<22} {who:<36} {status}")
    return "\n".join(lines)


def picture(result: dict, target: str) -> np.ndarray:
    """One PNG-able grid for `target`: rows original, disguised, each attack's reconstruction
    (row order as in report.json "picture_rows"), 2-pixel white gaps."""
    return stack_rows([np.asarray(r) for r in result["targets"][target]["images"].values()])


def stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of (k, H, W, C) uint8 images as one (H', W', 3) image, 2-pixel white gaps."""
    rows = [r for r in rows if len(r)]
    h, w = rows[0].shape[1:3]
    n = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + 2), n * (w + 2), 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            im = im if im.shape[-1] == 3 else np.repeat(im, 3, axis=-1)
            out[i * (h + 2):i * (h + 2) + h, j * (w + 2):j * (w + 2) + w] = im
    return out


def write_disguise_report(result: dict, out_dir: str | Path) -> dict[str, Path]:
    """report.json (every number), report.html (verdicts, tests, image grids) and one
    picture_<target>.png per target."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    body = [f"<h1>Disguise scan</h1><pre>{html.escape(disguise_table(result))}</pre>"]
    doc = {"config": result["config"], "targets": {}}
    for i, (name, entry) in enumerate(result["targets"].items()):
        images = {("victims" if k == "victims" else k): v for k, v in entry["images"].items()}
        path = out / f"picture_{i}_{name.replace(' ', '_')}.png"
        Image.fromarray(picture(result, name)).save(path)
        paths[f"picture:{name}"] = path
        doc["targets"][name] = {k: v for k, v in entry.items() if k != "images"}
        doc["targets"][name]["picture"] = path.name
        doc["targets"][name]["picture_rows"] = list(images)
        body.append(f"<h2>{html.escape(name)}</h2>{image_grid(images)}")
    (out / "report.json").write_text(json.dumps(jsonable(doc), indent=1), encoding="utf-8")
    np.savez_compressed(out / "images.npz", **{f"{t}|{row}": np.asarray(v)
                                               for t, e in result["targets"].items()
                                               for row, v in e["images"].items()})
    (out / "report.html").write_text("<!doctype html><meta charset='utf-8'><title>disguise "
                                     "scan</title>" + "".join(body), encoding="utf-8")
    paths["json"], paths["html"] = out / "report.json", out / "report.html"
    return paths

