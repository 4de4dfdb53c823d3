"""Where adapter files live, and reading one safely: safetensors only, sha256 checked.

Owns: the AdapterStore interface (bytes by key), the local-directory backend, key validation,
and turning adapter bytes into a verified LoRA state dict (`parse_adapter`). A file whose hash differs from the
record, a pickle format, or a key that escapes the store's root is refused, never loaded.
Must never touch the pipeline.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol

from service.errors import AdapterUnavailable, InvalidRequest
from service.files import atomic_write

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



def open_adapter_store(settings) -> AdapterStore:
    """The adapter store the settings name: local files under adapters_dir, or S3."""
    if settings.adapter_store == "local":
        return LocalAdapterStore(settings.adapters_dir)
    from service.twins.s3_store import S3AdapterStore

    return S3AdapterStore.from_url(settings.adapter_store, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
