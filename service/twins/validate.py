"""Can this file be a twin's adapter? Checked from the safetensors header alone, without torch.

Owns: parsing a safetensors header within bounds, and the structural rules of an adapter the
slot can take: UNet LoRA keys only (`unet.<module>.lora_A|lora_B[.name].weight`, optional
`<module>.alpha`), each layer with both A and B, 2-D float16/bfloat16/float32 tensors with
consistent shapes, a rank within the slot's, and layers among the slot's targets. The fit to
the base model's own layer sizes is checked by the renderer when it first loads the adapter.
Must never load tensor data into a framework, touch a pipeline, or import torch.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass

from service.errors import AtelierError

MAX_HEADER_BYTES = 16 * 1024**2
FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4}
UNET_PREFIX = "unet."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")


class AdapterIncompatible(AtelierError):
    """The adapter cannot go into the slot: unknown layers, rank too high, text-encoder LoRA."""

    status = 422
    code = "adapter_incompatible"


@dataclass(frozen=True)
class AdapterLayout:
    """What the header says: the rank and the layers an adapter touches."""

    rank: int
    layers: tuple[str, ...]
    metadata: dict[str, str]


def read_header(data: bytes, field: str = "adapter") -> tuple[dict, dict[str, str]]:
    """The tensor table and `__metadata__` of a safetensors file, with every offset checked."""
    if len(data) < 8:
        raise AdapterIncompatible("the adapter is not a safetensors file (too short)", field=field)
    (length,) = struct.unpack("<Q", data[:8])
    if length > MAX_HEADER_BYTES or 8 + length > len(data):
        raise AdapterIncompatible("the adapter is not a safetensors file (bad header length)", field=field)
    try:
        header = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, ValueError):
        raise AdapterIncompatible("the adapter's safetensors header is not JSON", field=field) from None
    if not isinstance(header, dict):
        raise AdapterIncompatible("the adapter's safetensors header is not a JSON object", field=field)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise AdapterIncompatible("the adapter's __metadata__ must map names to strings", field=field)
    body = len(data) - 8 - length
    for name, info in header.items():
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list) or not isinstance(info.get("data_offsets"), list):
            raise AdapterIncompatible(f"tensor {name!r} has no valid shape and data_offsets", field=field)
        begin, end = (info["data_offsets"] + [None, None])[:2]
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= body):
            raise AdapterIncompatible(f"tensor {name!r} points outside the file", field=field)
        if not all(isinstance(d, int) and d >= 0 for d in info["shape"]):
            raise AdapterIncompatible(f"tensor {name!r} has an invalid shape", field=field)
    return header, {str(k): v for k, v in metadata.items()}


def check_adapter_file(data: bytes, *, max_rank: int, targets: tuple[str, ...], field: str = "adapter") -> AdapterLayout:
    """Refuse (422, naming the problem) any file the slot could not take; else its layout."""
    header, metadata = read_header(data, field)
    pairs: dict[str, dict[str, list[int]]] = {}
    for key, info in header.items():
        dtype, shape = info.get("dtype"), info["shape"]
        if key.endswith(".alpha"):
            if dtype not in FLOAT_DTYPES or len(shape) > 1 or (shape and shape[0] != 1):
                raise AdapterIncompatible(f"{key!r} must be a float scalar", field=field)
            continue
        if not key.startswith(UNET_PREFIX):
            raise AdapterIncompatible(f"the adapter has weights outside the UNet ({key.split('.')[0]}...); "
                                      "text-encoder LoRAs are not supported by the adapter slot", field=field)
        match = _LORA_KEY.match(key[len(UNET_PREFIX):])
        if not match:
            raise AdapterIncompatible(f"unrecognised LoRA key {key!r}; expected <module>.lora_A/lora_B.weight", field=field)
        if dtype not in FLOAT_DTYPES:
            raise AdapterIncompatible(f"{key!r} is {dtype}; adapters must be float16, bfloat16 or float32", field=field)
        if len(shape) != 2 or 0 in shape:
            raise AdapterIncompatible(f"{key!r} must be a non-empty 2-D matrix, not shape {shape}", field=field)
        begin, end = info["data_offsets"]
        if end - begin != shape[0] * shape[1] * FLOAT_DTYPES[dtype]:
            raise AdapterIncompatible(f"{key!r}: its byte length does not match its shape", field=field)
        pairs.setdefault(match["module"], {})[match["which"]] = shape
    if not pairs:
        raise AdapterIncompatible("the adapter holds no UNet LoRA weights", field=field)
    rank = 0
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise AdapterIncompatible(f"layer {module!r} has lora_{''.join(ab)} but not both A and B", field=field)
        if not any(module == t or module.endswith("." + t) for t in targets):
            raise AdapterIncompatible(f"the adapter targets {module!r}, outside the slot's layers "
                                      f"(targets: {', '.join(targets)})", field=field)
        (r, _in), (_out, b_rank) = ab["A"], ab["B"]
        if b_rank != r:
            raise AdapterIncompatible(f"layer {module!r}: lora_A has rank {r} but lora_B has rank {b_rank}", field=field)
        if r > max_rank:
            raise AdapterIncompatible(f"the adapter has rank {r} at {module!r}; the slot holds rank <= {max_rank}", field=field)
        rank = max(rank, r)
    return AdapterLayout(rank, tuple(sorted(pairs)), metadata)
