"""Where adapter files live, and reading one safely: safetensors only, sha256 checked.

Owns: the AdapterStore interface (bytes by key), the local-directory backend, and turning
adapter bytes into a verified LoRA state dict (`parse_adapter`). Keys and size limits are
`keys.py`'s (re-exported here); which store the settings name is `stores.py`'s. A file whose hash differs from the
record, a pickle format, or a key that escapes the store's root is refused, never loaded.
Must never touch the pipeline.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from service.errors import AdapterUnavailable, InvalidRequest
from service.files import atomic_write
from service.twins.keys import ADAPTER_KEY_RE, MAX_ADAPTER_BYTES, PICKLE_SUFFIXES, check_adapter_key  # noqa: F401


class AdapterStore(Protocol):
    """Adapter bytes by key. Errors are AdapterUnavailable (missing, unreadable, too large)."""

    def read_bytes(self, key: str) -> bytes: ...

    def write_bytes(self, key: str, data: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def describe(self) -> str: ...


class LocalAdapterStore:
    """Adapter files in a local directory (the embedded default)."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    def describe(self) -> str:
        return f"local:{self.root}"

    def _path(self, key: str) -> Path:
        try:
            check_adapter_key(key)
        except InvalidRequest as exc:
            raise AdapterUnavailable(exc.message) from None
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise AdapterUnavailable(f"adapter key {key!r} leaves the adapter store")
        return path

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            if path.stat().st_size > MAX_ADAPTER_BYTES:
                raise AdapterUnavailable(f"adapter {key!r} is larger than {MAX_ADAPTER_BYTES} bytes")
            return path.read_bytes()
        except FileNotFoundError:
            raise AdapterUnavailable(f"adapter file {key!r} is missing from the store") from None
        except OSError as exc:
            raise AdapterUnavailable(f"adapter file {key!r} cannot be read: {exc.strerror}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write atomically (temp file + rename) so a reader never sees half a file."""
        atomic_write(self._path(key), data)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def parse_adapter(data: bytes, expected_sha256: str, label: str) -> dict:
    """Check `data` against its recorded sha256 and parse it as a safetensors LoRA state dict."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise AdapterUnavailable(
            f"the adapter of {label} does not match its recorded sha256 "
            f"(expected {expected_sha256[:12]}..., found {digest[:12]}...); refusing to load it"
        )
    try:
        state_dict = load(data)
    except (SafetensorError, ValueError) as exc:
        raise AdapterUnavailable(f"the adapter of {label} is not a valid safetensors file: {exc}") from None
    if not state_dict or not all(".lora" in key for key in state_dict):
        raise AdapterUnavailable(f"the adapter of {label} holds no LoRA weights")
    return state_dict
