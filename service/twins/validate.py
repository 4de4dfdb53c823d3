"""Can this file be a twin's adapter? Checked from the safetensors header alone, without torch.

Owns: parsing a safetensors header within bounds, and the structural rules of an adapter the
slot can take: UNet LoRA keys only (`unet.<module>.lora_A|lora_B[.name].weight`, optional
`<module>.alpha`), each layer with both A and B, 2-D float16/bfloat16/float32 tensors with
consistent shapes, a rank within the slot's, and layers among the slot's targets; and the
values: every weight finite and within `MAX_WEIGHT` (NaN or Inf weights render black images),
every alpha (the `.alpha` tensors and diffusers' `lora_adapter_metadata`) a finite number in
(0, MAX_ALPHA] whose scale alpha/rank is at most MAX_ALPHA_SCALE. The fit to the base model's
own layer sizes is checked by the renderer when it first loads the adapter. Must never load
tensor data into a framework, touch a pipeline, or import torch (numpy reads the bits).
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass

import numpy as np

from service.errors import AtelierError

MAX_HEADER_BYTES = 16 * 1024**2
MAX_WEIGHT = 1e4  # no sane LoRA weight comes near; past 65504 float16 overflows to Inf
MAX_ALPHA = 4096.0
MAX_ALPHA_SCALE = 64.0  # alpha / rank: how much the adapter's update is amplified
_CHUNK = 1 << 24  # elements checked at a time
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


def _alpha(value, where: str, field: str) -> float:
    """A finite alpha in (0, MAX_ALPHA], else 422 naming where it was found."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise AdapterIncompatible(f"{where} must be a number, not {type(value).__name__}", field=field)
    try:
        number = float(value)
    except ValueError:
        raise AdapterIncompatible(f"{where} must be a number, not {str(value)[:40]!r}", field=field) from None
    if not math.isfinite(number) or not 0 < number <= MAX_ALPHA:
        raise AdapterIncompatible(f"{where} is {number:g}; it must be finite, above 0 and at most {MAX_ALPHA:g}",
                                  field=field)
    return number


def adapter_alphas(metadata: dict[str, str], field: str = "adapter") -> tuple[float | None, dict[str, float]]:
    """`lora_alpha` and `alpha_pattern` of diffusers' `lora_adapter_metadata` (UNet keys), each
    checked; (None, {}) when the metadata names none. Shared with the renderer's slot."""
    raw = metadata.get("lora_adapter_metadata")
    if not raw:
        return None, {}
    try:
        config = json.loads(raw)
    except ValueError:
        raise AdapterIncompatible("the adapter's lora_adapter_metadata is not JSON", field=field) from None
    if not isinstance(config, dict):
        raise AdapterIncompatible("the adapter's lora_adapter_metadata is not a JSON object", field=field)
    if isinstance(config.get("unet"), dict):
        config = config["unet"]
    else:
        config = {k[len(UNET_PREFIX):]: v for k, v in config.items() if k.startswith(UNET_PREFIX)} or config
    alpha = config.get("lora_alpha")
    pattern = config.get("alpha_pattern") or {}
    if not isinstance(pattern, dict):
        raise AdapterIncompatible("the adapter's alpha_pattern is not a JSON object", field=field)
    return (None if alpha is None else _alpha(alpha, "lora_alpha", field),
            {str(k): _alpha(v, f"alpha_pattern[{str(k)[:60]!r}]", field) for k, v in pattern.items()})


def _values(data: bytes, start: int, dtype: str, count: int):
    """The tensor's values as float32 chunks (numpy views over the file's bytes)."""
    width = FLOAT_DTYPES[dtype]
    for first in range(0, count, _CHUNK):
        n = min(_CHUNK, count - first)
        offset = start + first * width
        if dtype == "F32":
            yield np.frombuffer(data, dtype="<f4", count=n, offset=offset)
        elif dtype == "F16":
            yield np.frombuffer(data, dtype="<f2", count=n, offset=offset).astype(np.float32)
        else:  # bfloat16: the top half of a float32
            yield (np.frombuffer(data, dtype="<u2", count=n, offset=offset).astype(np.uint32) << 16).view(np.float32)


def _check_values(data: bytes, start: int, key: str, info: dict, field: str) -> float | None:
    """Refuse non-finite or oversized weights; returns the value of a scalar (an alpha)."""
    count = math.prod(info["shape"]) if info["shape"] else 1
    begin = start + info["data_offsets"][0]
    scalar = None
    for chunk in _values(data, begin, info["dtype"], count):
        if not np.isfinite(chunk).all():
            raise AdapterIncompatible(f"{key!r} holds NaN or infinite values", field=field)
        if chunk.size and float(np.abs(chunk).max()) > MAX_WEIGHT:
            raise AdapterIncompatible(f"{key!r} holds values beyond +-{MAX_WEIGHT:g}; not a sane LoRA", field=field)
        if count == 1:
            scalar = float(chunk[0])
    return scalar


def check_adapter_file(data: bytes, *, max_rank: int, targets: tuple[str, ...], field: str = "adapter") -> AdapterLayout:
    """Refuse (422, naming the problem) any file the slot could not take; else its layout."""
    header, metadata = read_header(data, field)
    start = 8 + struct.unpack("<Q", data[:8])[0]
    default_alpha, alpha_pattern = adapter_alphas(metadata, field)
    pairs: dict[str, dict[str, list[int]]] = {}
    alphas: dict[str, float] = {}
    for key, info in header.items():
        dtype, shape = info.get("dtype"), info["shape"]
        if key.endswith(".alpha"):
            if dtype not in FLOAT_DTYPES or len(shape) > 1 or (shape and shape[0] != 1):
                raise AdapterIncompatible(f"{key!r} must be a float scalar", field=field)
            begin, end = info["data_offsets"]
            if end - begin != FLOAT_DTYPES[dtype]:
                raise AdapterIncompatible(f"{key!r}: its byte length does not match its shape", field=field)
            value = _check_values(data, start, key, info, field)
            alphas[key[: -len(".alpha")].removeprefix(UNET_PREFIX)] = _alpha(value, key, field)
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
        _check_values(data, start, key, info, field)
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
        alpha = alphas.get(module) or next((v for p, v in alpha_pattern.items() if module.endswith(p)), None)
        alpha = alpha or default_alpha or float(r)
        if alpha / r > MAX_ALPHA_SCALE:
            raise AdapterIncompatible(f"layer {module!r}: alpha {alpha:g} over rank {r} scales the update by "
                                      f"{alpha / r:g}; at most {MAX_ALPHA_SCALE:g}", field=field)
        rank = max(rank, r)
    return AdapterLayout(rank, tuple(sorted(pairs)), metadata)
