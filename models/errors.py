"""Errors of the model layer, rooted in featurelock's one error tree.

    FeaturelockError                    (featurelock.middleware.errors)
     └── ModelError            a model could not be found, built or loaded
          ├── ProfileError          an input profile is unknown or malformed, or a model
          │                         does not fit its profile (test-run at build/start)
          ├── UnsafeModelFileError  a model file is not a format we load without running code
          │                         (plain weights-only state dict, TorchScript, ONNX)
          └── ImageDecodeError      request bytes are not a decodable, size-limited image
               └── ImageTooLarge    ... because the image has too many pixels (413, not 400)

Third-party exceptions (pickle, PIL, onnxruntime) are translated into these at the boundary.
"""

from __future__ import annotations

from featurelock.middleware.errors import FeaturelockError

__all__ = ["ModelError", "ProfileError", "UnsafeModelFileError", "ImageDecodeError", "ImageTooLarge"]


class ModelError(FeaturelockError):
    """A model could not be found, built or loaded."""


class ProfileError(ModelError):
    """An input profile is unknown or malformed, or the model does not fit it."""


class UnsafeModelFileError(ModelError):
    """The file would need arbitrary unpickling (code execution) to load; it was refused."""


class ImageDecodeError(ModelError):
    """The bytes are not an image we can decode (or it is larger than allowed)."""


class ImageTooLarge(ImageDecodeError):
    """The image is larger than allowed (pixel count, or Pillow's decompression-bomb limit)."""
