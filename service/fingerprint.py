"""A cheap identity of a weights file or directory, for audit records and artifact manifests.

Owns: the fingerprint: sha256 over each file's relative path, size, and first and last MiB
(hashing multi-GB weights at start-up would delay readiness); any re-export, conversion or
edit of a config changes it. Must never import torch or anything from `service`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def fingerprint_path(path: Path) -> str:
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path) if file != path else file.name}\0{size}\0".encode())
        with file.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), 2)
                digest.update(fh.read(1 << 20))
    return digest.hexdigest()
