"""Writing a local file so that no reader ever sees half of it.

Owns: the atomic write (a temporary file in the same directory, flushed and fsync'ed, then
renamed over the target). Must never import anything from `service`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """`durable` (the default) fsyncs before the rename; without it a crash may lose the file
    (never leave half of one): for copies that are a convenience, not a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".write-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
