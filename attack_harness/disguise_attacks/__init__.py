"""The attacks on disguised inputs (Disguised-Nets), one module each, `target = "disguise"`.

Importing this package registers them in the same `ATTACKS` registry as the feature attacks;
`attacks.attack_names("disguise")` lists them and the feature scan never runs them.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..attacks import attack_names

__all__ = ["disguise_attack_names"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f".{_module}", __name__)


def disguise_attack_names() -> tuple[str, ...]:
    return attack_names("disguise")
