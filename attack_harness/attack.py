"""One interface for every attack, as `Scheme` is for every scheme.

An attack is one module in `featurelock.attack_harness.attacks` holding one `Attack`
subclass decorated with `@register`. It states its threat model (`holds`: what the attacker
holds) and returns `Finding`s: scored tests, each an estimate with an identity-resampled
interval, its chance level and the table column it belongs to. The scan does the rest:
budgets, the plaintext control, simultaneous intervals, verdicts and reports.

    @register
    class MyAttack(Attack):
        name = "my-attack"
        holds = "the victims' leaked outputs and nothing else (zero queries)"
        columns = ("my-column",)

        def run(self, view: TargetView) -> Outcome:
            ...
            return Outcome([Finding("my-column", "what", score, chance, n, reading)])

An attack that cannot run on this target or data says why instead of vanishing: it lists
the data it `needs` (checked before it runs, see `AttackData.lacks`), or returns
`Outcome(not_applicable="<reason>")`; the report shows "not applicable: <reason>" in its
columns. `cost` is its CPU seconds per target at 300 queries on one thread (measured on the
default model, README "What each attack costs"; the ETA uses it until the attack has run
once in this scan).

`TargetView` is everything the attacker got from one target: its charged query responses,
the victims' leaked outputs, the readings of both, and (for insiders only) the plaintext
model. Extra queries an attack needs beyond the attacker's training set (`extra_queries`)
are reserved from the same budget before the scan spends the rest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from .data import AttackData
from .linear import KernelRidgeCV
from .metrics import Interval
from .representations import ORDERED, Response, represent

__all__ = ["Attack", "Finding", "Outcome", "TargetView", "register", "ATTACKS"]

ATTACKS: dict[str, type["Attack"]] = {}


@dataclass(frozen=True)
class Finding:
    """One scored test. `column` is the verdict table's column (e.g. "linkability");
    `what` names the test inside it (an attribute, "zero-query", ...). `summary` marks the
    test the table shows for the column (e.g. the mean over attributes); any test leaking
    makes the column leak."""

    column: str
    what: str
    score: Interval
    chance: float
    n: int
    reading: str = "-"
    summary: bool = False
    margin: float | None = None  # default: the scan's margin


@dataclass
class Outcome:
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # JSON-able, per attack
    images: dict[str, np.ndarray] = field(default_factory=dict)  # row label -> (k, H, W, 3)
    not_applicable: str | None = None  # why the attack does not apply here (short, for a cell)


@dataclass
class TargetView:
    """What the attacker holds about one target, plus the scan's settings.

    `responses[i]` answers `data.aux_images[i]` (charged queries); `leaked[j]` is victim j's
    output; `probe` queries more images, charged to the reserve `extra_queries` made.
    """

    name: str
    scheme: str
    responses: Sequence[Response]
    leaked: Sequence[Response]
    data: AttackData  # aux_* already cut to the budget
    evaluator: Any  # the plaintext model: for insiders, and to score reconstructions
    config: Any  # ScanConfig
    probe: Callable[[np.ndarray], list[Response]]
    victim_plain: np.ndarray  # the victims' plaintext features (for scoring, never as input)
    # readable schemes: the served transform's file as an insider holds it (`inversion`)
    transform: Any = None
    _readings: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _solvers: dict[str, KernelRidgeCV] = field(default_factory=dict)
    # Shared by every view of one scan: the evaluator's features of the attacker's images
    # (the same images for every target; the first n are a view's own).
    _shared: dict[str, np.ndarray] = field(default_factory=dict)

    def readings(self, ordered: bool = False) -> list[str]:
        """The readings to attack this target in: the scan's representations (only those with
        a fixed coordinate order when `ordered`), then, for a readable scheme, the inverted
        features the attacker can compute (`inversion.offered`)."""
        from .inversion import offered

        return [r for r in self.config.representations if not ordered or r in ORDERED] \
            + offered(self)

    def reading(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(aux, victims) design matrices of one reading, computed once. Fitted readings see
        everything the attacker holds (its queries and the leaked outputs), never labels."""
        from .inversion import is_inverted, inverted_reading

        if name not in self._readings and is_inverted(name):
            self._readings[name] = inverted_reading(self, name)
        if name not in self._readings:
            both = represent([*self.responses, *self.leaked], name)
            n = len(self.responses)
            self._readings[name] = (both[:n], both[n:])
        return self._readings[name]

    def solver(self, name: str) -> KernelRidgeCV:
        """The reading's ridge solver on the attacker's data, shared by the learned attacks."""
        if name not in self._solvers:
            cfg = self.config.attribute
            self._solvers[name] = KernelRidgeCV(self.reading(name)[0], self.data.aux_ids,
                                                cfg.folds, cfg.clip, self.config.seed)
        return self._solvers[name]

    @cached_property
    def aux_plain(self) -> np.ndarray:
        """The insider's plaintext features of its own queries (it holds the model file)."""
        n = len(self.data.aux_images)
        full = self._shared.get("aux_plain")
        if full is None or len(full) < n:
            full = np.asarray(self.evaluator.embed(self.data.aux_images), np.float32)
            self._shared["aux_plain"] = full
        return full[:n]


class Attack(ABC):
    """One attack. Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    holds: ClassVar[str]  # the threat model in words: what the attacker holds
    columns: ClassVar[tuple[str, ...]]  # the verdict columns its findings go to
    per_reading: ClassVar[bool] = False  # runs once per reading in the scan's config
    extra_queries: ClassVar[int] = 0  # queries reserved from the budget for `probe`
    gated: ClassVar[bool] = True  # False: reported, never part of a verdict
    # True: against a readable scheme (`readable`) its findings measure UTILITY, not leakage
    utility_if_readable: ClassVar[bool] = False
    # "readable": run by default only when the scan has a readable (crafter) target; they cost
    # seconds per target and find nothing in ciphertext (name them in --attacks to force)
    default_when: ClassVar[str] = "always"
    # What it attacks: "features" (a TargetView; the feature scan) or "disguise" (a
    # DisguiseView of disguised input images; disguise_scan.py).
    target: ClassVar[str] = "features"
    # Disguise attacks only: the control disguise where the attack must succeed ("plain",
    # "rmt-noiseless", "shuffle"), so that "resists" means something.
    control: ClassVar[str] = ""
    # What it needs from the data set (`AttackData.NEEDS`): e.g. "attributes".
    needs: ClassVar[tuple[str, ...]] = ()
    cost: ClassVar[float] = 1.0  # seconds per target at 300 queries, for the ETA

    def __init__(self, config: Any) -> None:
        self.config = config

    def not_applicable(self, view: "TargetView") -> str | None:
        """Why this attack cannot run on `view` (its data lacks a need), else None."""
        for need in self.needs:
            reason = view.data.lacks(need)
            if reason:
                return reason
        return None

    @abstractmethod
    def run(self, view: TargetView) -> Outcome:
        """Attack one target."""


def register(cls: type[Attack]) -> type[Attack]:
    if cls.name in ATTACKS and ATTACKS[cls.name] is not cls:
        raise ValueError(f"two attacks are named {cls.name!r}")
    ATTACKS[cls.name] = cls
    return cls
