"""The attacks, one module each; importing this package registers every one of them.

A module here defines one `featurelock.attack_harness.attack.Attack` subclass decorated with
`@register`; nothing else needs editing for the scan to run it (modules are found by name).
"""

from __future__ import annotations

import importlib
import pkgutil

from ..attack import ATTACKS, Attack

__all__ = ["ATTACKS", "attack_names", "attack_class", "default_attacks"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f".{_module}", __name__)

# The order the scan runs them and the report shows their columns: cheap, decisive ones first.
_ORDER = ("equality", "key-recovery", "linkability", "attributes", "reconstruction", "rmle")


def attack_names(target: str = "features") -> tuple[str, ...]:
    """The registered attacks on `target` ("features" or "disguise"), in run order."""
    mine = {n for n, cls in ATTACKS.items() if cls.target == target}
    known = [n for n in _ORDER if n in mine]
    return (*known, *sorted(mine - set(known)))


def default_attacks(readable: bool = False) -> tuple[str, ...]:
    """The attacks a scan runs unless told otherwise; `readable`: it has a crafter target."""
    return tuple(n for n in attack_names()
                 if ATTACKS[n].default_when == "always" or readable)


def attack_class(name: str) -> type[Attack]:
    try:
        return ATTACKS[name]
    except KeyError:
        raise ValueError(f"unknown attack {name!r}; choose from {', '.join(attack_names())}") from None
