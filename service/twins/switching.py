"""Putting a twin's adapter on the pipeline for one generation, and taking it off again.

Owns: the per-call switch: `attach` before the generation, `detach` after it, so the base
weights are never left modified. Callers hold the pipeline lock. The tiered cache of a later
issue replaces the per-call load with a hit from memory.
"""

from __future__ import annotations

from service.errors import AdapterUnavailable

ADAPTER_SLOT = "twin"


def attach(pipe, state_dict: dict | None) -> None:
    """Load `state_dict` as the only active LoRA (no-op for None, the base model)."""
    if state_dict is None:
        return
    try:
        pipe.load_lora_weights(dict(state_dict), adapter_name=ADAPTER_SLOT)
    except (ValueError, KeyError, RuntimeError) as exc:
        detach(pipe)
        raise AdapterUnavailable(f"the adapter does not fit the base model: {exc}") from None


def detach(pipe) -> None:
    """Remove every LoRA layer, restoring the original modules exactly."""
    if getattr(pipe, "get_list_adapters", None) and any(pipe.get_list_adapters().values()):
        pipe.unload_lora_weights()
