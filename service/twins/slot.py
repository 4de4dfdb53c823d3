"""The adapter slot: one fixed-shape LoRA on the UNet that every twin is copied into.

Owns: creating the slot once (rank R, a fixed set of target layers, scaling 1), turning a
twin's LoRA state dict into a `PreparedAdapter` (checked against the slot, alpha/rank folded
into B, ready to copy), and switching by copying tensors into the slot in place. Nothing is
re-parsed, re-allocated or re-wrapped per switch, so a compiled UNet never recompiles (the
same idea as diffusers' `enable_lora_hotswap`, without its per-switch key conversion). Layers
a twin does not touch get B = 0, so no weight of a previous twin can leak into the next one.
Callers hold the pipeline lock around `load` and `clear`. Must never read files or stores.
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


class AdapterSlot:
    """A LoRA slot of rank `rank` on `unet`'s `targets` layers, switched by in-place copies."""

    def __init__(self, unet, rank: int, targets: tuple[str, ...]):
        from peft import LoraConfig

        self.rank = rank
        self.targets = targets
        unet.add_adapter(
            LoraConfig(r=rank, lora_alpha=rank, target_modules=list(targets), init_lora_weights=True),
            adapter_name=SLOT_NAME,
        )
        self.layers: dict[str, tuple[torch.nn.Linear, torch.nn.Linear]] = {}
        for name, module in unet.named_modules():
            lora_a = getattr(module, "lora_A", None)
            if isinstance(lora_a, torch.nn.ModuleDict) and SLOT_NAME in lora_a:
                self.layers[name] = (lora_a[SLOT_NAME], module.lora_B[SLOT_NAME])
        if not self.layers:
            raise ValueError(f"no UNet layer matches the slot targets {targets}")
        self.dtype = next(iter(self.layers.values()))[0].weight.dtype
        self.owner: str | None = None
        self.clear()

    @property
    def nbytes(self) -> int:
        return sum(a.weight.nbytes + b.weight.nbytes for a, b in self.layers.values())

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

    @torch.no_grad()
    def load(self, adapter: PreparedAdapter) -> None:
        """Copy `adapter` into the slot; every layer it does not touch is zeroed."""
        self.owner = None  # a failure half-way leaves the slot marked as owned by nobody
        for name, (slot_a, slot_b) in self.layers.items():
            weights = adapter.layers.get(name)
            if weights is None:
                slot_b.weight.zero_()
                continue
            a, b = weights
            r = a.shape[0]
            slot_a.weight[:r].copy_(a, non_blocking=True)
            slot_b.weight[:, :r].copy_(b, non_blocking=True)
            if r < self.rank:
                slot_a.weight[r:].zero_()
                slot_b.weight[:, r:].zero_()
        self.owner = adapter.sha256

    @torch.no_grad()
    def clear(self) -> None:
        """No twin: B = 0 everywhere, so the slot adds exactly nothing to the base model."""
        for _, slot_b in self.layers.values():
            slot_b.weight.zero_()
        self.owner = None
