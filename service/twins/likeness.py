"""A twin adapter's likeness fingerprint: what the LoRA does to the base model, not its bytes.

Owns: the fingerprint of a UNet LoRA (safetensors bytes, in the PEFT/diffusers layouts that
`service.twins.validate` accepts): for every targeted layer, its effective weight update
ΔW = B·A·(alpha/rank) exactly as the slot folds it (`service.twins.slot`), sketched without
ever forming ΔW, then summed into one fixed-size unit vector; the distance between two
fingerprints (1 - cosine); the threshold under which two adapters are one likeness
(measured by bench/likeness.py, docs/BENCHMARKS.md); and the lazy fingerprinting of twins
registered before fingerprints existed (`ensure_fingerprints`). Runs on the gateway: numpy
only. Must never import torch, form a full ΔW, or trust the file's own account of itself
beyond what validate checked (the work is bounded by the file's size: a few multiply-adds
per stored weight).

The sketch, per layer l with A (r x in), B (out x r) and scale s:
    S_l = s · (Pᵀ B) (A R)                       (LEFT x RIGHT, 16 x 16)
with R (in x RIGHT) and P (out x LEFT) fixed ±1 matrices from a seeded PCG64 bit stream
(raw bits, so no numpy release can change them). E<S_l(X), S_l(Y)> ∝ <ΔW_X, ΔW_Y> (Frobenius),
so any factorisation of the same ΔW (B·Q, Q⁻¹·A; another rank; another dtype; other metadata)
gives the same S_l. Each S_l is then count-sketched into DIM buckets with signs and buckets
seeded by the layer's name, and the sum over layers normalised: the cosine of two fingerprints
estimates the cosine of the two adapters' concatenated ΔW over all layers (weighted by each
layer's energy, so layers of negligible weight, added as decoys, barely move it). The overall
scale drops out: a copy at another strength (alpha) is the same likeness.

What it does not catch (docs/BENCHMARKS.md): another LoRA trained on other photos of the
same person shares no weights with the first and is not detected; a copy that keeps only a
small share of the layers' energy, or that flips their signs, falls outside the threshold.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from service.errors import AtelierError
from service.twins.validate import FLOAT_DTYPES, UNET_PREFIX, AdapterIncompatible, adapter_alphas, read_header

log = logging.getLogger("atelier.likeness")
# The LoRA key pattern of `service.twins.validate` and `service.twins.slot` (the same regex).
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")

SCHEME = "dw-sketch-v1"  # name of these parameters; a stored fingerprint of another scheme is recomputed
DIM = 1024  # buckets of the fingerprint (4 KiB as float32); cosine noise ~ 1/sqrt(DIM) ≈ 0.03
LEFT = 16  # columns of P (output side)
RIGHT = 16  # columns of R (input side)
_BLOCK = 4096  # rows of P and R made at a time (matrices are streamed, never held whole)
_SEED = 0x41544C5F4C4B4E53  # "ATL_LKNS"
# Two adapters are one likeness when their distance (1 - cosine) is at most this. Measured by
# bench/likeness.py (docs/BENCHMARKS.md): 1,378 pairs of unrelated adapters lie in [0.89, 1.12];
# exact copies (metadata, 1e-6 noise, float16, B·Q/Q⁻¹·A, PEFT keys, scale) at 0; lossy copies
# up to 0.45 (SVD re-save at rank 1 of 4) and 0.54 (a quarter of the layers kept).
THRESHOLD = 0.6


@dataclass(frozen=True)
class Fingerprint:
    """A unit float32 vector of DIM values (all zero for an adapter whose update is zero)."""

    vector: np.ndarray
    layers: int
    scheme: str = SCHEME

    def to_bytes(self) -> bytes:
        return self.vector.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes, layers: int = 0) -> "Fingerprint":
        return cls(np.frombuffer(blob, dtype="<f4").astype(np.float32), layers)


def distance(a: Fingerprint | np.ndarray, b: Fingerprint | np.ndarray) -> float:
    """1 - cosine of two fingerprints: 0 the same update, ~1 unrelated, 2 its negation.
    A zero fingerprint (no update at all) is at distance 1 from everything."""
    u = a.vector if isinstance(a, Fingerprint) else a
    v = b.vector if isinstance(b, Fingerprint) else b
    return 1.0 - float(np.dot(u.astype(np.float64), v.astype(np.float64)))


# -- fixed random matrices (raw PCG64 bits: stable across numpy releases) -----------------


def _bits(words: Iterable[int], count: int) -> np.ndarray:
    """`count` uint64 words of the PCG64 stream seeded by `words` (SeedSequence: a fixed algorithm)."""
    return np.random.PCG64(np.random.SeedSequence([_SEED, *words])).random_raw(count).astype("<u8")


@lru_cache(maxsize=32)
def _signs(side: int, block: int, width: int) -> np.ndarray:
    """Rows [block*_BLOCK, (block+1)*_BLOCK) of a ±1 matrix of `width` columns (read-only)."""
    words = _bits((side, block, width), _BLOCK * width // 64)
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")
    signs = (bits.astype(np.float64) * 2.0 - 1.0).reshape(_BLOCK, width)
    signs.setflags(write=False)
    return signs


@lru_cache(maxsize=8192)
def _buckets(layer: str) -> tuple[np.ndarray, np.ndarray]:
    """Where (and with which sign) each of a layer's LEFT*RIGHT sketch values lands."""
    digest = hashlib.sha256(layer.encode()).digest()
    words = _bits((3, *struct.unpack("<4Q", digest)), LEFT * RIGHT)
    buckets = (words % np.uint64(DIM)).astype(np.intp)
    signs = np.where((words >> np.uint64(63)) == 1, -1.0, 1.0)
    return buckets, signs


# -- reading the tensors ------------------------------------------------------------------


def _raw(data: bytes, offset: int, dtype: str, shape: list[int]) -> np.ndarray:
    """A 2-D tensor as a zero-copy view of the file's bytes (bfloat16 as its uint16 bits)."""
    kind = {"F32": "<f4", "F16": "<f2", "BF16": "<u2"}[dtype]
    return np.frombuffer(data, dtype=kind, count=shape[0] * shape[1], offset=offset).reshape(shape)


def _f64(values: np.ndarray) -> np.ndarray:
    """A block of a `_raw` view as float64 (only this block is ever converted)."""
    if values.dtype == np.dtype("<u2"):  # bfloat16: the top half of a float32
        return (values.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return values.astype(np.float64)


def _layer_sketch(data: bytes, start: int, a: dict, b: dict) -> np.ndarray:
    """(Pᵀ B)(A R) for one layer, A taken a block of columns and B a block of rows at a time:
    memory stays O(rank x _BLOCK) whatever the layer's size."""
    (rank, n_in), (n_out, _) = a["shape"], b["shape"]
    a_raw = _raw(data, start + a["data_offsets"][0], a["dtype"], a["shape"])
    b_raw = _raw(data, start + b["data_offsets"][0], b["dtype"], b["shape"])
    ar = np.zeros((rank, RIGHT))
    for first in range(0, n_in, _BLOCK):
        last = min(first + _BLOCK, n_in)
        ar += _f64(a_raw[:, first:last]) @ _signs(1, first // _BLOCK, RIGHT)[: last - first]
    pb = np.zeros((LEFT, rank))
    for first in range(0, n_out, _BLOCK):
        last = min(first + _BLOCK, n_out)
        pb += _signs(2, first // _BLOCK, LEFT)[: last - first].T @ _f64(b_raw[first:last])
    return pb @ ar


def _layers(data: bytes, field: str) -> tuple[int, dict[str, tuple[dict, dict, float]]]:
    """Each LoRA layer's A and B tensor entries and its scale alpha/rank, as the slot reads them.
    A layer named twice (under two adapter names, or two alphas for one module) is refused: the
    slot's pick among them depends on the order safetensors yields them, which changes from one
    process to the next, so no fingerprint could stand for what it serves."""
    header, metadata = read_header(data, field)
    start = 8 + struct.unpack("<Q", data[:8])[0]
    default_alpha, alpha_pattern = adapter_alphas(metadata, field)
    pairs: dict[str, dict[str, dict]] = {}
    alphas: dict[str, list[float]] = {}
    for key, info in header.items():
        if key.endswith(".alpha"):
            module = key[: -len(".alpha")].removeprefix(UNET_PREFIX)
            value = float(_f64(_raw(data, start + info["data_offsets"][0], info["dtype"], [1, 1]))[0, 0])
            alphas.setdefault(module, []).append(value)
            continue
        match = _LORA_KEY.match(key.removeprefix(UNET_PREFIX)) if key.startswith(UNET_PREFIX) else None
        if match is None:
            raise AdapterIncompatible(f"unrecognised LoRA key {key!r}", field=field)
        module, which = match["module"], match["which"]
        if which in pairs.setdefault(module, {}):
            raise AdapterIncompatible(f"layer {module!r} has more than one lora_{which} (adapter names); "
                                      "the slot could load either: keep one", field=field)
        if info.get("dtype") not in FLOAT_DTYPES or len(info["shape"]) != 2:
            raise AdapterIncompatible(f"{key!r} is not a 2-D float matrix", field=field)
        pairs[module][which] = info
    layers: dict[str, tuple[dict, dict, float]] = {}
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"} or ab["A"]["shape"][0] != ab["B"]["shape"][1]:
            raise AdapterIncompatible(f"layer {module!r} has no matching lora_A and lora_B", field=field)
        if len(alphas.get(module, ())) > 1:
            raise AdapterIncompatible(f"layer {module!r} has more than one alpha; the slot could use either",
                                      field=field)
        rank = ab["A"]["shape"][0]
        alpha = (alphas.get(module) or [None])[0] or next((v for p, v in alpha_pattern.items() if module.endswith(p)), None)
        alpha = alpha or default_alpha or float(rank)
        layers[module] = (ab["A"], ab["B"], alpha / rank)
    if not layers:
        raise AdapterIncompatible("the adapter holds no UNet LoRA weights", field=field)
    return start, layers


def fingerprint_adapter(data: bytes, field: str = "adapter") -> Fingerprint:
    """The likeness fingerprint of an adapter file. Call it after `check_adapter_file` (which
    bounds layers, ranks and values); refuses (422) only files whose served update is ambiguous."""
    start, layers = _layers(data, field)
    total = np.zeros(DIM)
    for module, (a, b, scale) in layers.items():
        sketch = _layer_sketch(data, start, a, b) * scale
        buckets, signs = _buckets(module)
        total += np.bincount(buckets, weights=signs * sketch.ravel(), minlength=DIM)
    norm = float(np.linalg.norm(total))
    vector = (total / norm).astype(np.float32) if norm > 0 and np.isfinite(norm) else np.zeros(DIM, np.float32)
    return Fingerprint(vector, len(layers))


# -- twins registered before fingerprints ---------------------------------------------------


def ensure_fingerprints(twins, store) -> int:
    """Fingerprint every twin (revoked ones too) that has no fingerprint of this SCHEME yet
    (`twins`: the registry's twins repository, `registry.twins`), from its adapter in the
    store; returns how many were added. Run before any comparison
    (registration, revocation), so twins of older databases and of the demo build take part.
    A twin whose bytes are gone or changed is skipped with a logged warning: it is still
    compared by its sha256, and its group link, as before."""
    from service.registry.likeness import missing_fingerprints, store_fingerprint

    added = 0
    for twin in missing_fingerprints(twins, SCHEME):
        try:
            data = store.read_bytes(twin.adapter_key)
            if hashlib.sha256(data).hexdigest() != twin.adapter_sha256:
                raise AdapterIncompatible("the stored bytes do not match the twin's sha256")
            fingerprint = fingerprint_adapter(data)
        except AtelierError as exc:  # a deleted twin's bytes left the store on purpose: no warning each time
            (log.debug if twin.deleted else log.warning)(
                "likeness fingerprint skipped", extra={"fields": {"twin_id": twin.id, "reason": exc.code}})
            continue
        if store_fingerprint(twins, twin.id, SCHEME, fingerprint.to_bytes()):
            added += 1
    return added
