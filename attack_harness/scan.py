"""A scan: every attack against every target, judged beside a plaintext control.

    result = run_scan({"plaintext": t0, "aes": t1}, ScanConfig(budget=600), data, evaluator)
    result.exit_status()   # 0 pass, 1 a protected target leaks (3: inconclusive, if asked)

Per target the attacker (1) spends its query budget on its own auxiliary images (less what
attacks reserve for probes), (2) receives the victims' leaked outputs (identities disjoint
from its own; not charged), then (3) every registered attack (`attacks/`, one module each)
runs and returns scored tests, or says why it does not apply. Attacks run one at a time on
every target, the control first, so a partial result (`checkpoint`, or `ScanInterrupted`
on Ctrl-C / SIGTERM) judges each finished attack beside its control. The scan only
orchestrates:

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
  caller names, else the first plaintext target, else the evaluator in process (which counts
  only when it is the targets' model: `same_model`). A column of a protected target is
  "within chance" only where the control's same test clearly leaked; where it did not, it is
  "inconclusive": the attack lacks power at this budget. Verdicts lead with what was shown:
  LEAKS, else INCONCLUSIVE (no power for: ...), else within chance (power shown for: ...).
* **not applicable**: an attack whose data or target cannot serve it (no attribute labels,
  ciphertext for a white-box insider) reports its reason in its columns; never silence.
* **budgets** (`ScanConfig.budgets`): the learning attacks again on the first b responses
  for each b, for the leakage-vs-budget curve.
* **progress**: one line per attack on stderr with its estimated cost and the scan's ETA.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from statistics import NormalDist
from typing import Any, Callable, Mapping

import numpy as np
import torch

from .attack import ATTACKS, Attack, Finding, Outcome, TargetView
from .attacks import attack_names, default_attacks
from .attributes import AttributeAttackConfig, jsonable
from .data import AttackData
from .errors import ScanInterrupted
from .inversion import INVERTED, is_inverted
from .readable import is_readable
from .reconstruction import DecoderConfig
from .representations import DECODED, REPRESENTATIONS
from .targets import PLAINTEXT, LocalTarget, MeteredTarget, Target

__all__ = ["ScanConfig", "ScanResult", "run_scan", "FAIL_IF", "CONTROL", "EXIT_INCONCLUSIVE"]

# "inconclusive": as protected-leak, and also fail (EXIT_INCONCLUSIVE) when a protected
# target has a column that no control showed power for.
FAIL_IF = ("protected-leak", "any-leak", "never", "inconclusive")
EXIT_INCONCLUSIVE = 3
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
    inverse_readings: tuple[str, ...] = INVERTED  # readable targets only (`inversion`)

    def __post_init__(self) -> None:
        bad = set(self.representations) - set(REPRESENTATIONS)
        if bad or not self.representations:
            raise ValueError(f"representations must be among {', '.join(REPRESENTATIONS)}, "
                             f"got {', '.join(sorted(bad)) or 'none'}")
        bad = set(self.attacks) - set(attack_names())  # feature attacks only, not disguise
        if bad or not self.attacks:
            raise ValueError(f"attacks must be among {', '.join(attack_names())}, "
                             f"got {', '.join(sorted(bad)) or 'none'}")
        if set(self.inverse_readings) - set(INVERTED):
            raise ValueError(f"inverse_readings must be among {', '.join(INVERTED)}, "
                             f"got {', '.join(self.inverse_readings)}")
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
    # None when every attack ran; else {"attacks_done", "attacks_pending", "interrupted"}
    partial: dict | None = None
    control_note: str = ""  # why nothing may be called within chance ("" if it may)

    def leaking_targets(self) -> list[str]:
        return [name for name, v in self.verdicts.items() if v["leak"]]

    def exit_status(self) -> int:
        """0 pass; 1 a (protected) target leaks; EXIT_INCONCLUSIVE (fail_if "inconclusive")
        a protected target has a column without power."""
        if self.config.fail_if == "never":
            return 0
        protected = [v for v in self.verdicts.values() if v["scheme"] != PLAINTEXT]
        for v in self.verdicts.values():
            if v["leak"] and (self.config.fail_if == "any-leak" or v["scheme"] != PLAINTEXT):
                return 1
        if self.config.fail_if == "inconclusive" and any(
                v.get("status") == "INCONCLUSIVE" for v in protected):
            return EXIT_INCONCLUSIVE
        return 0

    def columns(self) -> list[str]:
        """The verdict table's columns, in the attacks' order."""
        seen = {t["column"] for t in self.tests} | {
            c for v in self.verdicts.values() for c in v.get("not_applicable", {})}
        return list(dict.fromkeys(c for a in self.config.attacks for c in ATTACKS[a].columns
                                  if c in seen))

    def to_dict(self) -> dict:
        return jsonable({"featurelock_scan": 2, "config": self.config.to_dict(),
                         "partial": self.partial is not None, "progress": self.partial,
                         "data": self.data, "evaluator": self.evaluator,
                         "control": self.control, "control_note": self.control_note,
                         "targets": self.targets,
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
             evaluator: Any, control: str | None = None, *, same_model: bool = True,
             checkpoint: Callable[[ScanResult], None] | None = None) -> ScanResult:
    """Attack every target. `evaluator` is the plaintext model (embed, torch_forward);
    `control` names the target that serves plaintext from the same model (default: the
    first plaintext target, else `evaluator` in process). `same_model`: whether `evaluator`
    is the model the targets serve; when it is not and it must stand in as the control,
    nothing is called "within chance". `checkpoint(partial)` runs after every attack with the
    result so far (`partial` set); an interrupt (Ctrl-C, or SIGTERM made one) raises
    ScanInterrupted holding the last such result."""
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
    run = _Run(config, data, evaluator, attacks, time.monotonic())
    try:
        run.harvest(targets, control, same_model)
        for attack in attacks:
            for name in run.order:
                run.attack(attack, name)
                if checkpoint is not None:
                    checkpoint(run.result(partial=True))
        run.finish()
    except KeyboardInterrupt as exc:
        raise ScanInterrupted(run.result(partial=True, interrupted=str(exc) or "SIGINT")) from None
    return run.result(partial=False)


class _Run:
    """One scan's state, so that a result can be drawn up after any attack."""

    def __init__(self, config: ScanConfig, data: AttackData, evaluator: Any,
                 attacks: list[Attack], started: float) -> None:
        torch.manual_seed(config.seed)
        self.config, self.data, self.evaluator, self.attacks = config, data, evaluator, attacks
        self.started = started
        self.train = config.budget - sum(a.extra_queries for a in attacks)
        self.victim_plain = np.asarray(evaluator.embed(data.victim_images), np.float32)
        self.harvests: dict[str, _Harvest] = {}
        self.views: dict[str, TargetView] = {}
        self.shared: dict[str, np.ndarray] = {}  # what every view computes alike, once
        self.order: list[str] = []  # the control first
        self.control = ""
        self.control_note = ""
        self.raw: dict[str, dict] = {}
        self.images: dict[str, Any] = {}
        self.findings: dict[str, list[tuple[Attack, Finding]]] = {}
        self.curves: dict[str, dict] = {}
        self.done: list[tuple[str, str]] = []
        self.eta = _Eta(config, [a.name for a in attacks])

    def harvest(self, targets: Mapping[str, Target], control: str | None,
                same_model: bool) -> None:
        cfg, data = self.config, self.data
        for name, t in targets.items():
            began = time.monotonic()
            self.harvests[name] = _harvest(name, t, data.aux_images[:self.train], data, cfg)
            self.eta.say(f"scan: queried {name}: {self.train} charged queries + "
                         f"{len(data.victim_images)} leaked outputs in "
                         f"{_duration(time.monotonic() - began)}")
        control = control or next((n for n, h in self.harvests.items()
                                   if h.metered.scheme == PLAINTEXT), None)
        if control is None:
            control = CONTROL
            self.harvests[CONTROL] = _harvest(CONTROL, LocalTarget(self.evaluator.embed,
                                                                   name=CONTROL),
                                              data.aux_images[:self.train], data, cfg)
        elif self.harvests[control].metered.scheme != PLAINTEXT:
            raise ValueError(f"the control {control!r} does not serve plaintext")
        in_process = control == CONTROL or isinstance(targets[control], LocalTarget)
        if in_process and not same_model:
            self.control_note = (f"no control of the endpoints' model: the in-process control "
                                 f"is {getattr(self.evaluator, 'description', '?')}, not "
                                 "necessarily what they serve, so nothing is called within "
                                 "chance (give --model-file, or a plaintext twin with --control)")
        self.control = control
        self.order = [control, *[n for n in self.harvests if n != control]]
        for name in self.order:
            h = self.harvests[name]
            scheme = h.metered.scheme or "unknown"
            self.views[name] = _view(name, scheme, h, data, self.train, self.evaluator, cfg,
                                     self.victim_plain, self.shared)
            self.raw[name] = {"scheme": scheme, "control": name == control, "attacks": {},
                              "seconds": {}, "cpu_seconds": {}, "utility": [],
                              "not_applicable": {},
                              "queries_charged": h.metered.used,
                              "queries_total": h.metered.total}
            self.images[name] = {"victims": data.victim_images[
                np.flatnonzero(data.victim_is_query)[:cfg.grid]]}
            self.findings[name] = []
        self.eta.start(len(self.order))

    def attack(self, attack: Attack, name: str) -> None:
        view, entry = self.views[name], self.raw[name]
        self.eta.announce(attack.name, name)
        began, cpu = time.monotonic(), time.process_time()
        reason = attack.not_applicable(view)
        outcome = Outcome(not_applicable=reason) if reason else attack.run(view)
        seconds = time.monotonic() - began
        entry["seconds"][attack.name] = round(seconds, 2)
        # CPU seconds of the whole process (every thread): what the attack costs on a machine
        # shared with other work, where the wall clock also counts the others' time.
        entry["cpu_seconds"][attack.name] = round(time.process_time() - cpu, 2)
        details = dict(outcome.details)
        if outcome.not_applicable:
            details.update(status="not applicable", reason=outcome.not_applicable)
        entry["attacks"][attack.name] = {"holds": attack.holds, **details}
        self.images[name].update(outcome.images)
        if attack.gated and attack.utility_if_readable and is_readable(view.scheme):
            # what the scheme serves readable is utility; read through an inverse attack
            # (`inversion`) it is the plain feature again: gated as a leak
            entry["utility"] += [_utility(attack, f) for f in outcome.findings
                                 if not is_inverted(f.reading)]
            self.findings[name] += [(attack, f) for f in outcome.findings
                                    if is_inverted(f.reading)]
        elif attack.gated:
            self.findings[name] += [(attack, f) for f in outcome.findings]
        if outcome.not_applicable and attack.gated:
            scored = {f.column for f in outcome.findings}
            for column in attack.columns:
                if column not in scored:
                    entry["not_applicable"].setdefault(column, outcome.not_applicable)
        h = self.harvests[name]
        entry["queries_charged"], entry["queries_total"] = h.metered.used, h.metered.total
        self.done.append((attack.name, name))
        self.eta.finished(attack.name, name, seconds, skipped=reason is not None)

    def finish(self) -> None:
        for name in self.order:
            view = self.views[name]
            self.raw[name]["decoded"] = _decoded(view, self.config)
            self.curves[name] = _curve(name, view.scheme, self.harvests[name], self.data,
                                       self.evaluator, self.config, self.victim_plain,
                                       self.attacks, [f for _, f in self.findings[name]],
                                       self.shared)
        self.eta.close()

    def result(self, partial: bool, interrupted: str | None = None) -> ScanResult:
        tests = _gate(self.findings, self.config)
        verdicts = _verdicts(self.raw, tests, self.control, same_model=not self.control_note)
        state = None
        if partial:
            pending = [(a.name, n) for a in self.attacks for n in self.order
                       if (a.name, n) not in self.done]
            state = {"attacks_done": len(self.done),
                     "attacks_pending": [f"{a} on {n}" for a, n in pending],
                     "interrupted": interrupted}
        return ScanResult(self.config, self.data.summary(),
                          getattr(self.evaluator, "description", "?"), self.control, self.raw,
                          tests, verdicts, self.images, self.curves,
                          time.monotonic() - self.started, partial=state,
                          control_note=self.control_note)


class _Eta:
    """Progress lines on stderr: each attack as it starts, with its estimated cost, and how
    long the scan has left. An attack's cost on one target is estimated from what it cost on
    the targets before (the control comes first), else from its `cost` hint scaled by the
    budget."""

    def __init__(self, config: ScanConfig, names: list[str]) -> None:
        self.enabled = config.progress
        self.budget = config.budget
        self.names = names
        self.seen: dict[str, list[float]] = {}
        self.left = 0
        self.total = 0
        self.began = time.monotonic()

    def start(self, n_targets: int) -> None:
        self.total = self.left = n_targets * len(self.names)
        self.began = time.monotonic()
        self.say(f"scan: {len(self.names)} attacks x {n_targets} targets, "
                  f"about {_duration(self._remaining(self.names * n_targets))} (estimate)")

    def estimate(self, name: str) -> float:
        if self.seen.get(name):
            return sum(self.seen[name]) / len(self.seen[name])
        return ATTACKS[name].cost * self.budget / 300

    def _remaining(self, names: list[str]) -> float:
        return sum(self.estimate(n) for n in names)

    def announce(self, attack: str, target: str) -> None:
        done = self.total - self.left
        pending = self.names[self.names.index(attack):]
        n_targets = self.total // max(len(self.names), 1)
        # Pending pairs: this attack on the targets not yet done, then every later attack.
        left_here = self.left - n_targets * (len(pending) - 1)
        rest = [attack] * left_here + [a for a in pending[1:] for _ in range(n_targets)]
        self.say(f"scan [{done + 1}/{self.total}] {attack} on {target}: "
                  f"~{_duration(self.estimate(attack))}; "
                  f"elapsed {_duration(time.monotonic() - self.began)}, "
                  f"ETA {_duration(self._remaining(rest))}")

    def finished(self, attack: str, target: str, seconds: float, skipped: bool) -> None:
        self.left -= 1
        if not skipped:
            self.seen.setdefault(attack, []).append(seconds)

    def close(self) -> None:
        self.say(f"scan: attacks done in {_duration(time.monotonic() - self.began)}")

    def say(self, line: str) -> None:
        if self.enabled:
            print(line, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


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
          config: ScanConfig, victim_plain: np.ndarray, shared: dict | None = None
          ) -> TargetView:
    cut = replace(data, aux_images=data.aux_images[:n], aux_ids=data.aux_ids[:n],
                  aux_attributes=data.aux_attributes[:n])
    return TargetView(name, scheme, h.responses[:n], h.leaked, cut, evaluator, config,
                      lambda images: h.metered.query(images, charge=True), victim_plain,
                      getattr(h.metered.target, "served_transform", None),
                      _shared={} if shared is None else shared)


def _curve(name: str, scheme: str, h: _Harvest, data: AttackData, evaluator: Any,
           config: ScanConfig, victim_plain: np.ndarray, attacks: list[Attack],
           full: list[Finding], shared: dict | None = None) -> dict:
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
            view = _view(name, scheme, h, data, n, evaluator, config, victim_plain, shared)
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


def _verdicts(raw: dict[str, dict], tests: list[dict], control: str,
              same_model: bool = True) -> dict[str, dict]:
    """Per target and column: leak / within chance / inconclusive / not applicable, and the
    target's verdict, worst first: LEAKS, else INCONCLUSIVE (no power for: ...), else within
    chance (power shown for: ...).

    A test (column, what) is powered when the control's same test leaked in some reading
    (never when the control is not the targets' model: `same_model` False). A column leaks if
    any of its tests leaks; it is within chance if none leaks and at least one of its tests
    is powered; otherwise it is inconclusive. A column with no test at all, that an attack
    declared not applicable, is "not applicable" with the attack's reason.
    """
    powered = {(t["column"], t["what"]) for t in tests if t["target"] == control and t["leak"]
               and same_model}
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
        for column, reason in entry.get("not_applicable", {}).items():
            if column not in columns:
                columns[column] = {"status": "not applicable", "reason": reason}
        by = {k: [c for c, v in columns.items() if v["status"] == k]
              for k in ("leak", "within chance", "inconclusive", "not applicable")}
        leak = bool(by["leak"])
        status = ("LEAKS" if leak else "INCONCLUSIVE"
                  if by["inconclusive"] or not by["within chance"] else "within chance")
        parts = []
        if status == "LEAKS":
            parts.append("LEAKS")
        elif status == "INCONCLUSIVE":
            parts.append(f"INCONCLUSIVE (no power for: {', '.join(by['inconclusive'])})"
                         if by["inconclusive"] else "INCONCLUSIVE (no attack applied)")
        if not leak and by["within chance"]:
            parts.append(f"within chance (power shown for: {', '.join(by['within chance'])})")
        if by["not applicable"]:
            parts.append(f"not applicable: {', '.join(by['not applicable'])}")
        out[name] = {"scheme": entry["scheme"], "control": entry["control"], "leak": leak,
                     "status": status, "verdict": "; ".join(parts) if not leak else "LEAKS",
                     "leaks": by["leak"], "powered": by["within chance"],
                     "inconclusive": by["inconclusive"],
                     "not_applicable": {c: columns[c]["reason"] for c in by["not applicable"]},
                     "columns": columns}
    return out
