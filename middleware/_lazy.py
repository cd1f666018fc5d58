"""Lazy re-exports (PEP 562) for packages whose modules pull in heavy dependencies."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any],
                                                                 Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: name -> attribute of the submodule
    `exports[name]`, imported on first use, so importing the package itself stays cheap."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{exports[name]}", package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
