"""Adapter keys and the limits every adapter store enforces, whichever backend holds the files.

Owns: what an adapter key may be (a relative path of 1-4 plain segments ending in
.safetensors: nothing that escapes a store's root or names a pickle format), the largest
adapter a store will read, and the suffixes of pickle formats that are never loaded. The local
store (`store.py`) and the S3 store (`s3_store.py`) both check keys here, before any file or
request is touched. Must never read, write or parse an adapter.
"""

from __future__ import annotations

import re

from service.errors import InvalidRequest

PICKLE_SUFFIXES = frozenset({".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle"})
MAX_ADAPTER_BYTES = 2 * 1024**3
ADAPTER_KEY_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){0,3}\.safetensors$")


def check_adapter_key(key: str) -> str:
    """An adapter key is a relative path of 1-4 plain segments ending in .safetensors."""
    if not isinstance(key, str) or ".." in key or not ADAPTER_KEY_RE.fullmatch(key):
        raise InvalidRequest(
            f"adapter key {key!r} must be a relative path of plain segments ending in .safetensors "
            "(pickle formats are refused)",
            field="adapter_key",
        )
    return key
