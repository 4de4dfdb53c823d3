"""The adapter slot: fixed-shape LoRA lanes on the UNet that twins are copied into.

Owns: creating the slot once (rank R, a fixed set of target layers, scaling 1, K lanes),
turning a twin's LoRA state dict into a `PreparedAdapter` (checked against the slot,
alpha/rank folded into B, ready to copy), switching by copying tensors into a lane in place,
and routing each batch row to a lane. Nothing is re-parsed, re-allocated or re-wrapped per
switch, so a compiled UNet never recompiles (the same idea as diffusers'
`enable_lora_hotswap`, without its per-switch key conversion). Layers a twin does not touch
get B = 0, so no weight of a previous twin can leak into the next one.

Lanes (ATELIER_SLOT_LANES = K): every Linear slot layer holds A [K+1, R, in] and B [K+1, out, R]
and computes `base(x) + B[lane] (A[lane] x)` per batch row, with the row's lane read from a
tensor (`lane_rows`, a gather then two batched matmuls at rank R). Lane K is never written: it
is all zeros, the base model's lane. Which twin a row renders is data, never Python control
flow, so a compiled graph serves every mix of twins. Lane 0 is the one `load`/`clear` use (one
twin for every row: the old single-slot calls), and peft's own `lora_A`/`lora_B` weights are
views of it. `route` puts up to K distinct twins in lanes and points each row at one; with
classifier-free guidance the UNet batch is [unconditional rows, conditional rows], so the row
lanes are repeated once (`cfg=True`). Rows past the routed ones read the zero lane (the base
model, never another twin). A slot with a Conv2d target serves one twin per batch (`mixed` is
False; peft's own forward runs).

Callers hold the pipeline lock around `load`, `route`, `drop` and `clear`. Must never read
files or stores.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass

import torch

from service.twins.validate import AdapterIncompatible

SLOT_NAME = "atelier_slot"
UNET_PREFIX = "unet."
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")


@dataclass
class PreparedAdapter:
    """A twin's LoRA as (A, B * alpha / r) pairs per slot layer, on one device."""

    sha256: str
    rank: int
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]]
    nbytes: int

    def to(self, device: torch.device, pin: bool = False) -> "PreparedAdapter":
        def move(t: torch.Tensor) -> torch.Tensor:
            if device.type == "cpu":
                t = t.to("cpu")
                return t.pin_memory() if pin else t
            return t.to(device, non_blocking=True)

        return PreparedAdapter(self.sha256, self.rank, {k: (move(a), move(b)) for k, (a, b) in self.layers.items()}, self.nbytes)


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file (where diffusers and peft keep lora_alpha)."""
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        return dict(header.get("__metadata__") or {})
    except (struct.error, ValueError, TypeError):
        return {}


def _alphas(metadata: dict[str, str]) -> tuple[float | None, dict[str, float]]:
    """lora_alpha and alpha_pattern from diffusers' `lora_adapter_metadata` (keys "unet.*"),
    checked as at registration (an adapter registered before those checks fails with a 422
    here, not a 500)."""
    from service.twins.validate import adapter_alphas

    return adapter_alphas(metadata, field="twin_id")


def _laned_class(base: type) -> type:
    """A subclass of peft's LoRA Linear whose forward reads each row's lane (see the module doc)."""
    cached = _LANED.get(base)
    if cached is None:
        def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
            result = self.base_layer(x, *args, **kwargs)
            rows = self.lane_rows[: x.shape[0]]
            a = self.lane_A.index_select(0, rows)  # [batch, R, in]
            b = self.lane_B.index_select(0, rows)  # [batch, out, R]
            flat = x.to(a.dtype).reshape(x.shape[0], -1, x.shape[-1])
            delta = torch.bmm(torch.bmm(flat, a.transpose(1, 2)), b.transpose(1, 2))
            return result + delta.reshape(result.shape).to(result.dtype)

        cached = _LANED[base] = type(f"Laned{base.__name__}", (base,), {"forward": forward})
    return cached


_LANED: dict[type, type] = {}
MIN_ROWS = 16  # the lane-rows buffer's first capacity (it doubles when a bigger batch is routed)


class AdapterSlot:
    """A LoRA slot of rank `rank` and `lanes` lanes on `unet`'s `targets` layers, switched by in-place copies."""

    def __init__(self, unet, rank: int, targets: tuple[str, ...], lanes: int = 1):
        from peft import LoraConfig

        if lanes < 1:
            raise ValueError(f"an adapter slot needs at least one lane, got {lanes}")
        self.rank = rank
        self.targets = targets
        self.lanes = lanes
        self.zero_lane = lanes  # never written: the base model's lane
        unet.add_adapter(
            LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets), init_lora_weights=True),
            adapter_name=SLOT_NAME,
        )
        self.layers: dict[str, tuple[torch.nn.Linear, torch.nn.Linear]] = {}
        self.modules: dict[str, torch.nn.Module] = {}
        for name, module in unet.named_modules():
            lora_a = getattr(module, "lora_A", None)
            if isinstance(lora_a, torch.nn.ModuleDict) and SLOT_NAME in lora_a:
                self.layers[name] = (lora_a[SLOT_NAME], module.lora_B[SLOT_NAME])
                self.modules[name] = module
        if not self.layers:
            raise ValueError(f"no UNet layer matches the slot targets {targets}")
        first_a = next(iter(self.layers.values()))[0].weight
        self.dtype = first_a.dtype
        # Mixed batches need every layer to be a Linear (A [R, in], B [out, R]); a Conv2d target
        # keeps peft's forward and the slot serves one twin per batch.
        self.mixed = all(isinstance(a, torch.nn.Linear) and isinstance(b, torch.nn.Linear)
                         for a, b in self.layers.values())
        self.lane_owners: list[str | None] = [None] * lanes
        self._used = [0] * lanes  # when each lane last served (for choosing a lane to overwrite)
        self._tick = 0
        # The adapter every row of any batch renders (set by `load`; None after `route` or `clear`).
        self.owner: str | None = None
        self._rows = torch.zeros(0, dtype=torch.long)
        if self.mixed:
            with torch.no_grad():
                for name, (slot_a, slot_b) in self.layers.items():
                    module = self.modules[name]
                    lane_a = torch.zeros((lanes + 1, *slot_a.weight.shape), dtype=self.dtype, device=first_a.device)
                    lane_b = torch.zeros((lanes + 1, *slot_b.weight.shape), dtype=self.dtype, device=first_a.device)
                    lane_a[:lanes].copy_(slot_a.weight)  # peft's init: A random, B zero
                    module.register_buffer("lane_A", lane_a, persistent=False)
                    module.register_buffer("lane_B", lane_b, persistent=False)
                    # lane 0 *is* peft's LoRA weights: `layers` and its users see the lane-0 twin
                    slot_a.weight = torch.nn.Parameter(lane_a[0], requires_grad=False)
                    slot_b.weight = torch.nn.Parameter(lane_b[0], requires_grad=False)
                    module.__class__ = _laned_class(type(module))
            self._set_rows(torch.zeros(MIN_ROWS, dtype=torch.long, device=first_a.device))
        elif lanes > 1:
            self.lanes = 1
            self.lane_owners, self._used = [None], [0]
        self.clear()

    @property
    def nbytes(self) -> int:
        if not self.mixed:
            return sum(a.weight.nbytes + b.weight.nbytes for a, b in self.layers.values())
        return sum(m.lane_A.nbytes + m.lane_B.nbytes for m in self.modules.values())

    def _set_rows(self, rows: torch.Tensor) -> None:
        """A new lane-rows buffer (only when a batch outgrows it), shared by every slot layer."""
        self._rows = rows
        for module in self.modules.values():
            module.register_buffer("lane_rows", rows, persistent=False)

    def prepare(self, state_dict: dict[str, torch.Tensor], sha256: str, metadata: dict[str, str] | None = None) -> PreparedAdapter:
        """Check a LoRA state dict against the slot and fold its scaling into B (on the CPU)."""
        default_alpha, alpha_pattern = _alphas(metadata or {})
        pairs: dict[str, dict[str, torch.Tensor]] = {}
        alphas: dict[str, float] = {}
        for key, tensor in state_dict.items():
            if key.endswith(".alpha"):
                alphas[key[: -len(".alpha")].removeprefix(UNET_PREFIX)] = float(tensor)
                continue
            if not key.startswith(UNET_PREFIX):
                raise AdapterIncompatible(
                    f"the adapter has weights outside the UNet ({key.split('.')[0]}...); "
                    "text-encoder LoRAs are not supported by the adapter slot"
                )
            match = _LORA_KEY.match(key[len(UNET_PREFIX) :])
            if not match:
                raise AdapterIncompatible(f"unrecognised LoRA key {key!r}; expected <module>.lora_A/lora_B.weight")
            pairs.setdefault(match["module"], {})[match["which"]] = tensor
        unknown = sorted(set(pairs) - set(self.layers))
        if unknown:
            raise AdapterIncompatible(
                f"the adapter targets {len(unknown)} layer(s) outside the slot's set "
                f"(targets: {', '.join(self.targets)}), e.g. {unknown[0]!r}"
            )
        if not pairs:
            raise AdapterIncompatible("the adapter holds no UNet LoRA weights")
        layers, nbytes, rank = {}, 0, 0
        for module, ab in pairs.items():
            if set(ab) != {"A", "B"}:
                raise AdapterIncompatible(f"layer {module!r} has lora_{''.join(ab)} but not both A and B")
            a, b = ab["A"], ab["B"]
            slot_a, slot_b = self.layers[module]
            r = a.shape[0]
            if a.shape[1:] != slot_a.weight.shape[1:] or b.shape[0] != slot_b.weight.shape[0] or b.shape[1] != r:
                raise AdapterIncompatible(
                    f"layer {module!r}: LoRA shapes A{tuple(a.shape)} B{tuple(b.shape)} do not fit the base model"
                )
            if r > self.rank:
                raise AdapterIncompatible(f"the adapter has rank {r} at {module!r}; the slot holds rank <= {self.rank}")
            alpha = alphas.get(module) or next((v for p, v in alpha_pattern.items() if module.endswith(p)), None)
            alpha = alpha or default_alpha or float(r)
            a = a.to(self.dtype).contiguous()
            b = (b.to(torch.float32) * (alpha / r)).to(self.dtype).contiguous()
            layers[module] = (a, b)
            nbytes += a.nbytes + b.nbytes
            rank = max(rank, r)
        return PreparedAdapter(sha256, rank, layers, nbytes)

    # -- lane 0: one twin for every row (the single-twin calls) ---------------------------------

    @torch.no_grad()
    def load(self, adapter: PreparedAdapter) -> None:
        """Copy `adapter` into lane 0 and route every row there; every layer it does not touch is zeroed."""
        self.owner = None  # a failure half-way leaves the slot marked as owned by nobody
        self._copy(0, adapter)
        self._route_all(0)
        self._tick += 1
        self._used[0] = self._tick
        self.owner = adapter.sha256

    @torch.no_grad()
    def clear(self) -> None:
        """No twin in any lane: B = 0 everywhere, so the slot adds exactly nothing to the base model."""
        for name, (_, slot_b) in self.layers.items():
            if self.mixed:
                self.modules[name].lane_B.zero_()
            else:
                slot_b.weight.zero_()
        self.lane_owners = [None] * self.lanes
        self._route_all(0)
        self.owner = None

    @torch.no_grad()
    def drop(self, sha256: str) -> bool:
        """Zero every lane holding `sha256` (a revoked or evicted twin); True if one did."""
        found = False
        for lane, owner in enumerate(self.lane_owners):
            if owner == sha256:
                self._zero(lane)
                found = True
        if self.owner == sha256:
            self.owner = None
        return found

    @torch.no_grad()
    def silence(self, sha256s: set[str]) -> int:
        """From the next UNet call on, rows reading a lane that holds one of `sha256s` read the
        zero lane (the base model): a twin stopped in the middle of a mixed batch (revoked, or
        its load failed) adds nothing more to its rows, whose images are then discarded, while
        every other row keeps its lane. The lanes keep their weights. Returns the lanes silenced."""
        lanes = [lane for lane, owner in enumerate(self.lane_owners) if owner is not None and owner in sha256s]
        if self.mixed:
            for lane in lanes:
                self._rows.masked_fill_(self._rows == lane, self.zero_lane)
        return len(lanes)

    def route_base(self) -> None:
        """Every row of any batch reads the zero lane: the base model, whatever the lanes hold
        (the twins stay cached in their lanes for a later batch)."""
        self.owner = None
        if self.mixed:
            self._rows.fill_(self.zero_lane)

    # -- lanes: up to K twins in one batch ------------------------------------------------------

    @torch.no_grad()
    def route(self, adapters: list[PreparedAdapter | None], cfg: bool) -> list[int]:
        """Put each distinct adapter of `adapters` (one per image row; None: the base model) in a
        lane, reusing a lane that holds it already, and point each UNet row at its lane. With
        `cfg` the UNet batch is [unconditional rows, conditional rows]: the lanes repeat once.
        Returns each image row's lane. Raises ValueError for more distinct twins than lanes."""
        distinct: dict[str, PreparedAdapter] = {}
        for adapter in adapters:
            if adapter is not None:
                distinct.setdefault(adapter.sha256, adapter)
        if len(distinct) > self.lanes:
            raise ValueError(f"a batch may name at most {self.lanes} distinct twins (ATELIER_SLOT_LANES), "
                             f"got {len(distinct)}")
        if not self.mixed and len(distinct) > 1:
            raise ValueError("this slot serves one twin per batch (a Conv2d target layer has no lanes)")
        self.owner = None
        self._tick += 1
        lane_of: dict[str, int] = {}
        for sha in distinct:  # lanes that already hold a twin of this batch
            if sha in self.lane_owners:
                lane_of[sha] = self.lane_owners.index(sha)
        taken = set(lane_of.values())
        for sha, adapter in distinct.items():
            if sha in lane_of:
                continue
            free = [lane for lane in range(self.lanes) if lane not in taken]
            lane = min(free, key=lambda k: (self.lane_owners[k] is not None, self._used[k]))  # empty, else oldest
            self._copy(lane, adapter)
            lane_of[sha] = lane
            taken.add(lane)
        for lane in taken:
            self._used[lane] = self._tick
        lanes = [lane_of[a.sha256] if a is not None else self.zero_lane for a in adapters]
        if self.mixed:
            rows = lanes + lanes if cfg else lanes
            if len(rows) > self._rows.numel():
                size = max(MIN_ROWS, self._rows.numel())
                while size < len(rows):
                    size *= 2
                self._set_rows(torch.zeros(size, dtype=torch.long, device=self._rows.device))
            self._rows.fill_(self.zero_lane)  # rows past the batch: the base model, never another twin
            self._rows[: len(rows)].copy_(torch.tensor(rows, dtype=torch.long))
        return lanes

    def _route_all(self, lane: int) -> None:
        if self.mixed:
            self._rows.fill_(lane)

    def _copy(self, lane: int, adapter: PreparedAdapter) -> None:
        self.lane_owners[lane] = None
        for name, (slot_a, slot_b) in self.layers.items():
            if self.mixed:
                module = self.modules[name]
                lane_a, lane_b = module.lane_A[lane], module.lane_B[lane]
            else:
                lane_a, lane_b = slot_a.weight, slot_b.weight
            weights = adapter.layers.get(name)
            if weights is None:
                lane_b.zero_()
                continue
            a, b = weights
            r = a.shape[0]
            lane_a[:r].copy_(a, non_blocking=True)
            lane_b[:, :r].copy_(b, non_blocking=True)
            if r < self.rank:
                lane_a[r:].zero_()
                lane_b[:, r:].zero_()
        self.lane_owners[lane] = adapter.sha256

    def _zero(self, lane: int) -> None:
        for name, (_, slot_b) in self.layers.items():
            (self.modules[name].lane_B[lane] if self.mixed else slot_b.weight).zero_()
        self.lane_owners[lane] = None
