"""Writing files that hold secrets or must never be seen half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import KeyStoreError


def write_private_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` in one step; the file is created mode 0600 (mkstemp).

    Readers see the old file or the new one, never a partial write.
    """
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename publishes it
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise KeyStoreError(f"cannot write {target}: {exc.strerror}") from None
