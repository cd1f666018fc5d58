"""Errors of the model layer, rooted in featurelock's one error tree.

    FeaturelockError                    (featurelock.middleware.errors)
     └── ModelError            a model could not be found, built or loaded
          ├── UnsafeModelFileError  a model file is not a format we load without running code
          │                         (plain weights-only state dict, TorchScript, ONNX)
          └── ImageDecodeError      request bytes are not a decodable, size-limited image

Third-party exceptions (pickle, PIL, onnxruntime) are translated into these at the boundary.
"""

from __future__ import annotations

from featurelock.middleware.errors import FeaturelockError

__all__ = ["ModelError", "UnsafeModelFileError", "ImageDecodeError"]


class ModelError(FeaturelockError):
    """A model could not be found, built or loaded."""


class UnsafeModelFileError(ModelError):
    """The file would need arbitrary unpickling (code execution) to load; it was refused."""


class ImageDecodeError(ModelError):
    """The bytes are not an image we can decode (or it is larger than allowed)."""
