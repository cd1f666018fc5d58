"""The registry of template schemes, found by name.

A scheme is one public module in this package that defines a `TemplateScheme` subclass and
decorates it with `@register`. The registry imports every public module of the package except
the ones in `_NOT_SCHEMES` on first use, so adding a scheme is adding a module.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from ._base import TemplateScheme

__all__ = ["register", "template_schemes", "template_scheme_class", "make_template_scheme"]

_REGISTRY: dict[str, type[TemplateScheme]] = {}
_NOT_SCHEMES = frozenset({"gallery"})
_loaded = False


def register(cls: type[TemplateScheme]) -> type[TemplateScheme]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"template scheme {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for info in pkgutil.iter_modules([os.path.dirname(__file__)]):
        if not info.name.startswith("_") and info.name not in _NOT_SCHEMES:
            importlib.import_module(f"{__package__}.{info.name}")
    _loaded = True


def template_schemes() -> dict[str, type[TemplateScheme]]:
    """Name -> class of every template scheme, in name order."""
    _load()
    return dict(sorted(_REGISTRY.items()))


def template_scheme_class(name: str) -> type[TemplateScheme]:
    schemes = template_schemes()
    try:
        return schemes[name]
    except KeyError:
        raise ValueError(f"unknown template scheme {name!r}; choose one of "
                         f"{', '.join(schemes)}") from None


def make_template_scheme(name: str, secret: bytes, dim: int, **params) -> TemplateScheme:
    """The scheme `name` keyed by `secret` for `dim`-dimensional embeddings."""
    return template_scheme_class(name)(secret, dim, **params)
