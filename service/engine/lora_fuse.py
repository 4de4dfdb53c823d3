"""LoRA fused into base weights: how a twin is switched on an engine that has no LoRA branch.

A TensorRT engine bakes the UNet's weights in; a twin's LoRA cannot ride alongside as the
adapter slot's peft layers do on the PyTorch path. Instead each LoRA-touched weight is
replaced by `W + scale * (B @ A)` and the engine is refitted with those tensors.

Owns: that weight math (`fused_weights`, float32 arithmetic, cast back to the base dtype),
switching between twins without drift (`FusedWeights`: it keeps the base weights and never
subtracts a previous twin's delta, so `unfuse()` is bit-exact however many switches came
before), reading the base weights off a UNet that may carry the peft slot (`base_weights`),
and naming: torch parameter name -> ONNX initializer (`onnx_initializer_name` for an export
that keeps torch names, `match_onnx_initializers` for one that does not). Plain torch: must
never import tensorrt or onnx.

Layers: the adapter slot (`service.twins.slot`) accepts any layer peft can wrap, so a twin may
carry Linear LoRA (A [r, in], B [out, r]) and Conv2d LoRA (A [r, in, kh, kw], B [out, r, 1, 1],
peft's layout, for 1x1 and kxk kernels alike). Both are fused here; a grouped convolution or a
LoRA B with a spatial kernel is refused (`LoraFuseError`).

Names are the UNet's own parameter names, e.g.
`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight` (peft's `.base_layer`
never appears). Every tensor returned is read-only by contract: callers hand it to a refitter
and must not modify it in place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import torch

from service.twins.slot import PreparedAdapter

WEIGHT_SUFFIX = ".weight"
PEFT_BASE = ".base_layer"
DEFAULT_ONNX_PREFIX = "unet."  # builds/onnx_export.py wraps the UNet as `self.unet` before exporting


class LoraFuseError(ValueError):
    """An adapter cannot be fused into these base weights (unknown layer, shape, conv kind)."""


def parameter_name(module_name: str) -> str:
    """The UNet parameter name of a LoRA-targeted module's weight (peft's base_layer removed)."""
    return module_name.replace(PEFT_BASE, "") + WEIGHT_SUFFIX


def lora_delta(a: torch.Tensor, b: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """`B @ A` in float32, shaped like a base weight of `shape` (Linear 2-D or Conv2d 4-D)."""
    a32, b32 = a.to(torch.float32), b.to(torch.float32)
    shape = tuple(shape)
    r = a.shape[0]
    if len(shape) == 2:
        if a.dim() != 2 or b.dim() != 2 or a.shape[1] != shape[1] or b.shape != (shape[0], r):
            raise LoraFuseError(f"Linear LoRA A{tuple(a.shape)} B{tuple(b.shape)} does not fit a weight of shape {shape}")
        return b32 @ a32
    if len(shape) == 4:
        if a.dim() != 4 or b.dim() != 4:
            raise LoraFuseError(f"Conv2d LoRA needs 4-D A and B, got A{tuple(a.shape)} B{tuple(b.shape)}")
        if tuple(b.shape[2:]) != (1, 1):
            raise LoraFuseError(f"Conv2d LoRA B must have a 1x1 kernel (peft's layout), got B{tuple(b.shape)}")
        if tuple(a.shape[1:]) != shape[1:] or b.shape[:2] != (shape[0], r):
            raise LoraFuseError(
                f"Conv2d LoRA A{tuple(a.shape)} B{tuple(b.shape)} does not fit a weight of shape {shape} "
                "(grouped convolutions are not supported)"
            )
        # delta[o, i, h, w] = sum_r B[o, r] * A[r, i, h, w]: peft's conv delta, for any kernel size
        return (b32.flatten(1) @ a32.flatten(1)).view(shape)
    raise LoraFuseError(f"LoRA fusing supports Linear (2-D) and Conv2d (4-D) weights, not shape {shape}")


@torch.no_grad()
def fused_weights(base: Mapping[str, torch.Tensor], adapter: PreparedAdapter, scale: float = 1.0) -> dict[str, torch.Tensor]:
    """`W + scale * (B @ A)` for every layer `adapter` touches, keyed by UNet parameter name.

    `base` maps parameter names to base weights (from `base_weights`); the adapter's B already
    holds alpha / r (`AdapterSlot.prepare`). Computed in float32 on the base weight's device,
    returned in the base weight's dtype. `base` is never modified.
    """
    out: dict[str, torch.Tensor] = {}
    for module, (a, b) in adapter.layers.items():
        name = parameter_name(module)
        weight = base.get(name)
        if weight is None:
            raise LoraFuseError(f"the adapter touches {module!r} but there is no base weight {name!r} to fuse into")
        try:
            delta = lora_delta(a.to(weight.device), b.to(weight.device), weight.shape)
        except LoraFuseError as exc:
            raise LoraFuseError(f"{module}: {exc}") from None
        out[name] = (weight.to(torch.float32) + scale * delta).to(weight.dtype)
    return out


@torch.no_grad()
def base_weights(unet: torch.nn.Module, modules: Iterable[str] | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Private copies of the base weights of `modules`, keyed by UNet parameter name.

    `modules` defaults to every layer peft has wrapped (on a served UNet: the adapter slot's
    layers). A wrapped layer's weight is read from its `base_layer`, so the slot's own LoRA
    parameters never leak in. Copies, so later in-place changes to the UNet cannot alter them.
    """
    named = dict(unet.named_modules())
    if modules is None:
        modules = [n for n, m in named.items() if isinstance(getattr(m, "lora_A", None), torch.nn.ModuleDict)]
    out = {}
    for module in modules:
        layer = named.get(module)
        if layer is None:
            raise LoraFuseError(f"the UNet has no module {module!r}")
        layer = getattr(layer, "base_layer", layer)
        out[parameter_name(module)] = layer.weight.detach().to(device=device, dtype=dtype, copy=True)
    return out


class FusedWeights:
    """The weights to refit when switching twins, from base weights that are kept, never unfused.

    `switch(adapter)` returns the fused weights of `adapter` plus the base weights of every
    layer the previous twin touched and this one does not; `switch(None)` returns the base
    weights of the current twin's layers; `unfuse()` returns the base weights of every layer
    ever touched (the way back to a known state after a failed refit). Because the base is
    kept and deltas are never subtracted, no rounding accumulates over any number of switches.
    Not thread-safe: callers hold the pipeline lock, as for `AdapterSlot`.
    """

    def __init__(self, base: Mapping[str, torch.Tensor], scale: float = 1.0):
        self.base = dict(base)
        self.scale = scale
        self.owner: str | None = None  # sha256 of the adapter the returned weights last fused
        self._adapter: PreparedAdapter | None = None
        self._current: frozenset[str] = frozenset()
        self._touched: set[str] = set()

    @property
    def current(self) -> frozenset[str]:
        """Parameter names that hold fused (non-base) weights after the last switch."""
        return self._current

    def switch(self, adapter: PreparedAdapter | None) -> dict[str, torch.Tensor]:
        """The weights to refit so the engine renders `adapter` (None: the base model)."""
        if adapter is not None and adapter.sha256 == self.owner:
            return {}
        fused = fused_weights(self.base, adapter, self.scale) if adapter is not None else {}
        restore = {name: self.base[name] for name in sorted(self._current - fused.keys())}
        self._current = frozenset(fused)
        self._touched |= self._current
        self._adapter = adapter
        self.owner = adapter.sha256 if adapter is not None else None
        return restore | fused

    def unfuse(self) -> dict[str, torch.Tensor]:
        """The exact base weights of every layer touched so far."""
        self._current = frozenset()
        self._adapter = self.owner = None
        return {name: self.base[name] for name in sorted(self._touched)}

    def weight(self, name: str) -> torch.Tensor:
        """The weight `name` holds after the last switch: fused for the current twin, else base.
        (For a refitter that must be given weights TensorRT fused with the ones that changed.)"""
        if name in self._current and self._adapter is not None:
            module = name[: -len(WEIGHT_SUFFIX)]
            one = PreparedAdapter(self._adapter.sha256, self._adapter.rank, {module: self._adapter.layers[module]}, 0)
            return fused_weights(self.base, one, self.scale)[name]
        return self.base[name]


# ---------------------------------------------------------------------------------------------
# Torch names -> ONNX initializers (the names a TensorRT refitter knows weights by).


@dataclass(frozen=True)
class OnnxWeight:
    """Where a torch parameter lives in the ONNX file: initializer name, and whether transposed."""

    name: str
    transposed: bool = False


def onnx_initializer_name(param: str, prefix: str = DEFAULT_ONNX_PREFIX) -> str:
    """The ONNX initializer name of UNet parameter `param`, ASSUMING the export kept torch names.

    True when the exporter writes each parameter as an initializer named by its fully qualified
    name under the exported wrapper (`unet.` for builds/onnx_export.py), unchanged in layout.
    On this project's exports that holds for Conv2d weights but NOT for Linear weights (the
    attention projections LoRA targets): both the dynamo exporter (optimize=True) and the
    TorchScript exporter (constant folding) fold the transpose of a Linear weight into a new,
    anonymous initializer (`val_314`, `onnx::MatMul_1886`) holding W^T. Use
    `match_onnx_initializers` for those, once, next to the ONNX file.
    """
    return prefix + param.replace(PEFT_BASE, "")


def _fingerprint(tensor: torch.Tensor) -> tuple:
    t = tensor.detach().to("cpu").contiguous()
    return (str(t.dtype), tuple(t.shape), hashlib.sha256(t.view(-1).view(torch.uint8).numpy().tobytes()).hexdigest())


def match_onnx_initializers(params: Mapping[str, torch.Tensor], initializers: Mapping[str, torch.Tensor],
                            prefix: str = DEFAULT_ONNX_PREFIX) -> dict[str, OnnxWeight]:
    """For each torch parameter, the ONNX initializer holding it (by name, else by exact value).

    `params`: parameter name -> tensor, in the dtype the ONNX file was exported in (float32
    for builds/onnx_export.py). `initializers`: ONNX initializer name -> tensor (e.g.
    `torch.from_numpy(onnx.numpy_helper.to_array(init))`). A parameter matches the initializer
    named `prefix + name` when its values are equal; otherwise the unique initializer equal to
    it (transposed=False) or, for a 2-D weight, to its transpose (transposed=True). Refuses
    (`LoraFuseError`) a parameter found nowhere, or found in more than one place (two equal
    weights cannot be told apart by value).
    """
    by_value: dict[tuple, list[str]] = {}
    for name, tensor in initializers.items():
        by_value.setdefault(_fingerprint(tensor), []).append(name)
    out: dict[str, OnnxWeight] = {}
    for param, tensor in params.items():
        named = onnx_initializer_name(param, prefix)
        if named in initializers and initializers[named].shape == tensor.shape and torch.equal(
            initializers[named].to("cpu"), tensor.detach().to("cpu", initializers[named].dtype)
        ):
            out[param] = OnnxWeight(named, False)
            continue
        candidates = [OnnxWeight(n, False) for n in by_value.get(_fingerprint(tensor), [])]
        if tensor.dim() == 2:
            candidates += [OnnxWeight(n, True) for n in by_value.get(_fingerprint(tensor.t()), [])]
        if len(candidates) != 1:
            names = ", ".join(c.name for c in candidates[:4])
            found = f"{len(candidates)} initializers ({names})" if candidates else "no initializer"
            raise LoraFuseError(f"{param}: {found} in the ONNX file hold(s) this weight or its transpose")
        out[param] = candidates[0]
    return out


def to_onnx_layout(weights: Mapping[str, torch.Tensor], mapping: Mapping[str, OnnxWeight]) -> dict[str, torch.Tensor]:
    """Torch-named weights -> ONNX-initializer-named tensors in the initializer's layout."""
    out = {}
    for param, tensor in weights.items():
        target = mapping.get(param)
        if target is None:
            raise LoraFuseError(f"no ONNX initializer is known for {param!r}")
        out[target.name] = (tensor.t() if target.transposed else tensor).contiguous()
    return out


def save_refit_map(path: Path, mapping: Mapping[str, OnnxWeight]) -> Path:
    """Write the torch -> ONNX weight map as JSON ({param: {"name": ..., "transposed": ...}})."""
    body = {param: {"name": w.name, "transposed": w.transposed} for param, w in sorted(mapping.items())}
    Path(path).write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    return Path(path)


def load_refit_map(path: Path) -> dict[str, OnnxWeight]:
    try:
        body = json.loads(Path(path).read_text())
        return {param: OnnxWeight(str(w["name"]), bool(w["transposed"])) for param, w in body.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LoraFuseError(f"the refit map {path} is unreadable: {exc}") from None
