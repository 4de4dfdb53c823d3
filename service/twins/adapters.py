"""Twin adapters on the renderer: the tiered cache and the slot they go in (torch).

`TwinAdapters.build` composes them from the settings: the engine asks it for a twin's
adapter and switches the slot; it never reads adapter files itself. Imported by the renderer
only: the gateway uses the torch-free face in `service.twins`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from service.config import Settings
from service.registry import Registry
from service.twins.cache import Budgets, CacheEvents, TieredAdapterCache
from service.twins.records import TwinCatalog, TwinRecord
from service.twins.slot import AdapterIncompatible, AdapterSlot, PreparedAdapter, safetensors_metadata
from service.twins.store import AdapterStore, parse_adapter
from service.twins.stores import open_adapter_store


@dataclass
class TwinAdapters:
    catalog: TwinCatalog
    store: AdapterStore
    slot: AdapterSlot
    cache: TieredAdapterCache

    @classmethod
    def build(cls, settings: Settings, registry: Registry, unet, device: torch.device, events: CacheEvents | None = None,
              slot: AdapterSlot | None = None, store: AdapterStore | None = None) -> "TwinAdapters":
        slot = slot or AdapterSlot(unet, settings.lora_slot_rank, settings.lora_targets,
                                    lanes=settings.slot_lanes)
        store = store or open_adapter_store(settings)

        def prepare(data: bytes, record: TwinRecord) -> PreparedAdapter:
            state_dict = parse_adapter(data, record.sha256, f"twin {record.id!r}")
            try:
                return slot.prepare(state_dict, record.sha256, safetensors_metadata(data))
            except AdapterIncompatible as exc:  # the gateway checks the file alone; the base model's shapes only here
                raise AdapterIncompatible(f"the adapter of twin {record.id!r} does not fit the base model: {exc.message}",
                                          field="twin_id") from None

        budgets = Budgets(settings.cache_device_bytes, settings.cache_host_bytes, settings.cache_disk_bytes)
        cache = TieredAdapterCache(store, prepare, device, budgets, settings.cache_dir, events)
        return cls(TwinCatalog(registry), store, slot, cache)
