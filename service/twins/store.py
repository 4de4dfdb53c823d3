"""Where adapter files live, and reading one safely: safetensors only, sha256 checked.

Owns: turning a TwinRecord into a verified LoRA state dict. A file whose hash differs from
the record, a pickle format, or a path that escapes the store's root is refused, never
loaded. Must never touch the pipeline.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from service.errors import AdapterUnavailable
from service.twins.records import TwinRecord

PICKLE_SUFFIXES = frozenset({".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle"})
MAX_ADAPTER_BYTES = 2 * 1024**3


class LocalAdapterStore:
    """Adapter files in a local directory (the embedded default)."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    def path_of(self, record: TwinRecord) -> Path:
        path = (self.root / record.adapter_path).resolve()
        if not path.is_relative_to(self.root):
            raise AdapterUnavailable(f"the adapter path of twin {record.id!r} leaves the adapter store")
        if path.suffix.lower() in PICKLE_SUFFIXES or path.suffix.lower() != ".safetensors":
            raise AdapterUnavailable(
                f"the adapter of twin {record.id!r} is not a .safetensors file; pickle formats are refused"
            )
        return path

    def read_bytes(self, record: TwinRecord) -> bytes:
        path = self.path_of(record)
        try:
            if path.stat().st_size > MAX_ADAPTER_BYTES:
                raise AdapterUnavailable(f"the adapter of twin {record.id!r} is larger than {MAX_ADAPTER_BYTES} bytes")
            return path.read_bytes()
        except FileNotFoundError:
            raise AdapterUnavailable(f"the adapter file of twin {record.id!r} is missing") from None
        except OSError as exc:
            raise AdapterUnavailable(f"the adapter file of twin {record.id!r} cannot be read: {exc.strerror}") from None


def load_verified_adapter(store: LocalAdapterStore, record: TwinRecord) -> dict:
    """Read the twin's adapter, check its sha256 against the record, and parse it as safetensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    data = store.read_bytes(record)
    digest = hashlib.sha256(data).hexdigest()
    if digest != record.sha256:
        raise AdapterUnavailable(
            f"the adapter of twin {record.id!r} does not match its recorded sha256 "
            f"(expected {record.sha256[:12]}..., found {digest[:12]}...); refusing to load it"
        )
    try:
        state_dict = load(data)
    except (SafetensorError, ValueError) as exc:
        raise AdapterUnavailable(f"the adapter of twin {record.id!r} is not a valid safetensors file: {exc}") from None
    if not state_dict or not all(".lora" in key for key in state_dict):
        raise AdapterUnavailable(f"the adapter of twin {record.id!r} holds no LoRA weights")
    return state_dict
