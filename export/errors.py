"""Errors of the export layer, rooted in featurelock's one error tree.

    FeaturelockError                (featurelock.middleware.errors)
     └── ExportError       a model could not be exported or its export fails validation
          └── ParityError  the exported model's outputs differ from the torch model's
"""

from __future__ import annotations

from featurelock.middleware.errors import FeaturelockError

__all__ = ["ExportError", "ParityError"]


class ExportError(FeaturelockError):
    """Export failed or produced an invalid file."""


class ParityError(ExportError):
    """Exported outputs disagree with the reference beyond the allowed tolerance."""
