"""A scan: every attack against every target, judged beside a plaintext control.

    result = run_scan({"plaintext": t0, "aes": t1}, ScanConfig(budget=600), data, evaluator)
    result.exit_status()   # 0 pass, 1 a protected target leaks

Per target the attacker (1) spends its query budget on its own auxiliary images (less what
attacks reserve for probes), (2) receives the victims' leaked outputs (identities disjoint
from its own; not charged), then (3) every registered attack (`attacks/`, one module each)
runs and returns scored tests. The scan only orchestrates:

* **intervals**: a test LEAKS when the lower end of its interval exceeds chance + margin. The
  intervals are simultaneous over every gated test OF THAT TARGET (Bonferroni per target), so
  a target of hundreds of tests on a sound scheme does not fail by luck, and a target's
  verdict is a property of the target: the same target, seed and budget get the same verdict
  scanned alone or beside any others (a correction over the whole scan made the plaintext
  control's identity "LEAK" in a 2-target scan and "no power" in a 5-target one). Each test
  also reports the smallest score it could have detected (`detectable`).
* **decoded readings**: where a reading decodes feature values from ciphertext (`structure`,
  `recovered`), the target's entry reports their cosine to the victims' true features
  (`decoded`; scoring only, no attack sees the truth).
* **power**: every attack also runs on a plaintext control of the same model: the target the
  caller names, else the first plaintext target, else the evaluator in process. A column of
  a protected target is "within chance" only where the control's same test clearly leaked;
  where it did not, it is "inconclusive": the attack lacks power at this budget.
* **budgets** (`ScanConfig.budgets`): the learning attacks again on the first b responses
  for each b, for the leakage-vs-budget curve.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist
from typing import Any, Mapping

import numpy as np
import torch

from .attack import ATTACKS, Attack, Finding, TargetView
from .attacks import attack_names, default_attacks
from .attributes import AttributeAttackConfig, jsonable
from .data import AttackData
from .readable import is_readable
from .reconstruction import DecoderConfig
from .representations import DECODED, REPRESENTATIONS
from .targets import PLAINTEXT, LocalTarget, MeteredTarget, Target

__all__ = ["ScanConfig", "ScanResult", "run_scan", "FAIL_IF", "CONTROL"]

FAIL_IF = ("protected-leak", "any-leak", "never")
CONTROL = "control (in-process plaintext)"
MIN_TRAINING = 8  # attacker images left after the attacks' reserved probes


@dataclass(frozen=True)
class ScanConfig:
    budget: int = 600
    seed: int = 0
    representations: tuple[str, ...] = REPRESENTATIONS
    attacks: tuple[str, ...] = field(default_factory=default_attacks)
    confidence: float = 0.95
    margin: float = 0.05  # absolute, on accuracy / rank-1 / shares
    ssim_margin: float = 0.005  # SSIM gains of decoders are small even on plaintext
    psnr_margin_db: float = 0.5
    rate_limit: float | None = None  # queries per second, all queries to a target
    batch_size: int = 32
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    attribute: AttributeAttackConfig = field(default_factory=AttributeAttackConfig)
    rmle_victims: int = 4
    rmle_steps: int = 500
    grid: int = 6  # victims shown in the report's image grids
    n_boot: int = 1000
    fail_if: str = "protected-leak"
    budgets: tuple[int, ...] = ()  # leakage-vs-budget curve points (each <= budget)
    progress: bool = True
    crafter_prior: str | None = None  # gan-inversion's public prior (None: the packaged one)
    inversion_steps: int = 20  # gan-inversion's refine steps after the amortiser

    def __post_init__(self) -> None:
        bad = set(self.representations) - set(REPRESENTATIONS)
        if bad or not self.representations:
            raise ValueError(f"representations must be among {', '.join(REPRESENTATIONS)}, "
                             f"got {', '.join(sorted(bad)) or 'none'}")
        bad = set(self.attacks) - set(attack_names())  # feature attacks only, not disguise
        if bad or not self.attacks:
            raise ValueError(f"attacks must be among {', '.join(attack_names())}, "
                             f"got {', '.join(sorted(bad)) or 'none'}")
        if self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if any(b < 2 * MIN_TRAINING or b > self.budget for b in self.budgets):
            raise ValueError(f"budgets must lie in {2 * MIN_TRAINING}..{self.budget} (the "
                             f"scan's budget), got {list(self.budgets)}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if min(self.margin, self.ssim_margin, self.psnr_margin_db) < 0:
            raise ValueError("margins must be >= 0")
        if self.fail_if not in FAIL_IF:
            raise ValueError(f"fail_if must be one of {', '.join(FAIL_IF)}, got {self.fail_if!r}")

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


@dataclass
class ScanResult:
    config: ScanConfig
    data: dict
    evaluator: str
    control: str  # the name of the plaintext control's entry in `targets`
    targets: dict[str, dict]  # name -> {"scheme", "queries_*", "attacks": {name: details}}
    tests: list[dict]  # every gated test with its simultaneous interval and verdict
    verdicts: dict[str, dict]
    images: dict[str, Any]  # name -> {"victims": ..., row label -> (k, H, W, 3) uint8}
    curves: dict[str, dict]  # name -> column -> [{"budget", "score", "chance", "low"}]
    seconds: float

    def leaking_targets(self) -> list[str]:
        return [name for name, v in self.verdicts.items() if v["leak"]]

    def exit_status(self) -> int:
        if self.config.fail_if == "never":
            return 0
        for v in self.verdicts.values():
            if v["leak"] and (self.config.fail_if == "any-leak" or v["scheme"] != PLAINTEXT):
                return 1
        return 0

    def columns(self) -> list[str]:
        """The verdict table's columns, in the attacks' order."""
        seen = {t["column"] for t in self.tests}
        return list(dict.fromkeys(c for a in self.config.attacks for c in ATTACKS[a].columns
                                  if c in seen))

    def to_dict(self) -> dict:
        return jsonable({"featurelock_scan": 2, "config": self.config.to_dict(),
                         "data": self.data, "evaluator": self.evaluator,
                         "control": self.control, "targets": self.targets,
                         "verdicts": self.verdicts, "tests": self.tests, "curves": self.curves,
                         "exit_status": self.exit_status(), "seconds": round(self.seconds, 1)})


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    # disable=None: tqdm stays quiet when stderr is not a terminal (CI logs, pipes).
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None if enabled else True,
                leave=False, dynamic_ncols=True)


def _query_all(target: MeteredTarget, images: np.ndarray, charge: bool, batch: int,
               desc: str, progress: bool) -> list:
    out: list = []
    with _bar(len(images), desc, progress) as bar:
        for s in range(0, len(images), batch):
            out.extend(target.query(images[s:s + batch], charge=charge))
            bar.update(min(batch, len(images) - s))
    return out


@dataclass
class _Harvest:
    """What the attacker collected from one target."""

    metered: MeteredTarget
    responses: list
    leaked: list


def run_scan(targets: Mapping[str, Target], config: ScanConfig, data: AttackData,
             evaluator: Any, control: str | None = None) -> ScanResult:
    """Attack every target. `evaluator` is the plaintext model (embed, torch_forward);
    `control` names the target that serves plaintext from the same model (default: the
    first plaintext target, else `evaluator` in process)."""
    if not targets:
        raise ValueError("targets must name at least one target")
    if len(data.aux_images) < config.budget:
        raise ValueError(f"the data set has {len(data.aux_images)} attacker images, "
                         f"budget is {config.budget}")
    if control is not None and control not in targets:
        raise ValueError(f"the control {control!r} is not among the targets")
    attacks = [ATTACKS[name](config) for name in config.attacks]
    reserve = sum(a.extra_queries for a in attacks)
    if config.budget - reserve < MIN_TRAINING:
        raise ValueError(f"budget must be >= {reserve + MIN_TRAINING}: the attacks reserve "
                         f"{reserve} probe queries")
    started = time.monotonic()
    torch.manual_seed(config.seed)
    train = config.budget - reserve
    victim_plain = np.asarray(evaluator.embed(data.victim_images), np.float32)

    harvests = {name: _harvest(name, t, data.aux_images[:train], data, config)
                for name, t in targets.items()}
    control = control or next((n for n, h in harvests.items()
                               if h.metered.scheme == PLAINTEXT), None)
    if control is None:
        control = CONTROL
        harvests[CONTROL] = _harvest(CONTROL, LocalTarget(evaluator.embed, name=CONTROL),
                                     data.aux_images[:train], data, config)
    elif harvests[control].metered.scheme != PLAINTEXT:
        raise ValueError(f"the control {control!r} does not serve plaintext")

    raw: dict[str, dict] = {}
    images: dict[str, Any] = {}
    findings: dict[str, list[tuple[Attack, Finding]]] = {}
    curves: dict[str, dict] = {}
    for name, h in harvests.items():
        scheme = h.metered.scheme or "unknown"
        view = _view(name, scheme, h, data, train, evaluator, config, victim_plain)
        entry: dict[str, Any] = {"scheme": scheme, "control": name == control, "attacks": {},
                                 "seconds": {}, "utility": []}
        imgs: dict[str, Any] = {"victims": data.victim_images[
            np.flatnonzero(data.victim_is_query)[:config.grid]]}
        found: list[tuple[Attack, Finding]] = []
        with _bar(len(attacks), f"attacking {name}", config.progress) as bar:
            for attack in attacks:
                began = time.monotonic()
                outcome = attack.run(view)
                entry["seconds"][attack.name] = round(time.monotonic() - began, 2)
                entry["attacks"][attack.name] = {"holds": attack.holds, **outcome.details}
                imgs.update(outcome.images)
                if attack.gated and attack.utility_if_readable and is_readable(scheme):
                    entry["utility"] += [_utility(attack, f) for f in outcome.findings]
                else:
                    found += [(attack, f) for f in outcome.findings if attack.gated]
                bar.update(1)
        entry["queries_charged"], entry["queries_total"] = h.metered.used, h.metered.total
        entry["decoded"] = _decoded(view, config)
        curves[name] = _curve(name, scheme, h, data, evaluator, config, victim_plain, attacks,
                              [f for _, f in found])
        raw[name], images[name], findings[name] = entry, imgs, found
    tests = _gate(findings, config)
    verdicts = _verdicts(raw, tests, control)
    return ScanResult(config, data.summary(), getattr(evaluator, "description", "?"), control,
                      raw, tests, verdicts, images, curves, time.monotonic() - started)


def _decoded(view: TargetView, config: ScanConfig) -> dict:
    """Per decoding reading: cosine of the victims' decoded features to their true ones."""
    out = {}
    for rep in [r for r in config.representations if r in DECODED]:
        got = view.reading(rep)[1].astype(np.float64)
        truth = view.victim_plain.astype(np.float64)
        if got.shape != truth.shape:
            continue
        norms = np.linalg.norm(got, axis=1) * np.linalg.norm(truth, axis=1)
        cos = (got * truth).sum(axis=1) / np.maximum(norms, 1e-30)
        out[rep] = {"cosine_mean": round(float(cos.mean()), 4),
                    "cosine_median": round(float(np.median(cos)), 4),
                    "cosine_p10": round(float(np.percentile(cos, 10)), 4),
                    "sign_agreement": round(float(np.mean(np.signbit(got) == np.signbit(truth))),
                                            4)}
    return out


def _utility(attack: Attack, f: Finding) -> dict:
    """A readable target's utility test, reported beside the control, never gated."""
    return {"attack": attack.name, "column": f.column, "what": f.what, "reading": f.reading,
            "summary": f.summary, "score": f.score.estimate, "ci": [f.score.low, f.score.high],
            "chance": f.chance, "n": f.n}


def _harvest(name: str, target: Target, aux: np.ndarray, data: AttackData,
             config: ScanConfig) -> _Harvest:
    metered = MeteredTarget(target, config.budget, config.rate_limit)
    responses = _query_all(metered, aux, True, config.batch_size, f"querying {name}",
                           config.progress)
    leaked = _query_all(metered, data.victim_images, False, config.batch_size,
                        f"leaked outputs {name}", config.progress)
    return _Harvest(metered, responses, leaked)


def _view(name: str, scheme: str, h: _Harvest, data: AttackData, n: int, evaluator: Any,
          config: ScanConfig, victim_plain: np.ndarray) -> TargetView:
    cut = replace(data, aux_images=data.aux_images[:n], aux_ids=data.aux_ids[:n],
                  aux_attributes=data.aux_attributes[:n])
    return TargetView(name, scheme, h.responses[:n], h.leaked, cut, evaluator, config,
                      lambda images: h.metered.query(images, charge=True), victim_plain)


def _curve(name: str, scheme: str, h: _Harvest, data: AttackData, evaluator: Any,
           config: ScanConfig, victim_plain: np.ndarray, attacks: list[Attack],
           full: list[Finding]) -> dict:
    """Per column, the best headline score of the learning attacks on the first b responses
    (the scan's own findings where b is its whole training set)."""
    curve: dict[str, list] = {}
    learners = [a for a in attacks if a.gated and a.extra_queries == 0]
    columns = {c for a in learners for c in a.columns}
    for b in sorted(config.budgets):
        n = min(b, len(h.responses))
        if n == len(h.responses):
            found = [f for f in full if f.column in columns]
        else:  # the first n of the responses the scan already holds: no new queries
            view = _view(name, scheme, h, data, n, evaluator, config, victim_plain)
            found = [f for a in learners for f in a.run(view).findings]
        best: dict[str, Finding] = {}
        for f in found:
            if f.summary and (f.column not in best or f.score.low - f.chance
                              > best[f.column].score.low - best[f.column].chance):
                best[f.column] = f
        for column, f in best.items():
            curve.setdefault(column, []).append(
                {"budget": b, "score": f.score.estimate, "low": f.score.low,
                 "chance": f.chance, "reading": f.reading})
    return curve


def _gate(findings: dict[str, list[tuple[Attack, Finding]]], config: ScanConfig) -> list[dict]:
    """Every gated test, with a simultaneous interval and a leak flag. The Bonferroni
    correction runs over each target's own tests, so no target's verdict depends on what
    else was scanned."""
    out = []
    for target, found in findings.items():
        level = 1 - (1 - config.confidence) / max(len(found), 1)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        for attack, f in found:
            margin = config.margin if f.margin is None else f.margin
            sim = f.score.widened(level)
            out.append({"target": target, "attack": attack.name, "column": f.column,
                        "what": f.what, "reading": f.reading, "summary": f.summary,
                        "score": f.score.estimate, "ci": [f.score.low, f.score.high],
                        "ci_level": f.score.level, "simultaneous_ci": [sim.low, sim.high],
                        "simultaneous_level": level, "chance": f.chance, "margin": margin,
                        "detectable": f.chance + margin + z * f.score.se, "n": f.n,
                        "leak": bool(sim.low > f.chance + margin)})
    return out


def _strength(t: dict) -> float:
    return t["simultaneous_ci"][0] - t["chance"]


def _verdicts(raw: dict[str, dict], tests: list[dict], control: str) -> dict[str, dict]:
    """Per target and column: leak / within chance / inconclusive, and the target's verdict.

    A test (column, what) is powered when the control's same test leaked in some reading.
    A column leaks if any of its tests leaks; it is within chance if none leaks and at least
    one of its tests is powered; otherwise it is inconclusive.
    """
    powered = {(t["column"], t["what"]) for t in tests if t["target"] == control and t["leak"]}
    control_best: dict[tuple[str, str], dict] = {}
    for t in tests:
        key = (t["column"], t["what"])
        if t["target"] == control and (key not in control_best
                                       or _strength(t) > _strength(control_best[key])):
            control_best[key] = t
    out = {}
    for name, entry in raw.items():
        mine = [t for t in tests if t["target"] == name]
        columns: dict[str, dict] = {}
        for column in dict.fromkeys(t["column"] for t in mine):
            cands = [t for t in mine if t["column"] == column]
            shown = max([t for t in cands if t["summary"]] or cands, key=_strength)
            worst = max(cands, key=_strength)
            leak = any(t["leak"] for t in cands)
            unpowered = sorted({t["what"] for t in cands
                                if (column, t["what"]) not in powered})
            status = ("leak" if leak else "within chance"
                      if any((column, t["what"]) in powered for t in cands) else "inconclusive")
            ctl = control_best.get((shown["column"], shown["what"]))
            columns[column] = {"status": status, "best": shown, "worst": worst,
                               "unpowered": unpowered,
                               "control": None if ctl is None else
                               {k: ctl[k] for k in ("score", "chance", "reading", "leak")}}
        leak = any(c["status"] == "leak" for c in columns.values())
        inconclusive = [c for c, v in columns.items() if v["status"] == "inconclusive"]
        powered_any = any(v["status"] == "within chance" for v in columns.values())
        verdict = ("LEAKS" if leak else "inconclusive" if not powered_any
                   else f"within chance; inconclusive: {', '.join(inconclusive)}" if inconclusive
                   else "within chance")
        out[name] = {"scheme": entry["scheme"], "control": entry["control"], "leak": leak,
                     "verdict": verdict, "inconclusive": inconclusive, "columns": columns}
    return out
