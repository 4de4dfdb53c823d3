"""Twin adapters: records, where adapter files live, the tiered cache, and the slot they go in.

`TwinAdapters.build` composes them from the settings: the engine asks it for a twin's
adapter and switches the slot; it never reads adapter files itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from service.config import Settings
from service.errors import AdapterUnavailable
from service.registry import Registry
from service.twins.cache import Budgets, CacheEvents, TieredAdapterCache
from service.twins.records import TwinCatalog, TwinRecord
from service.twins.slot import AdapterIncompatible, AdapterSlot, PreparedAdapter, safetensors_metadata
from service.twins.store import AdapterStore, LocalAdapterStore, parse_adapter


def open_adapter_store(settings: Settings) -> AdapterStore:
    if settings.adapter_store == "local":
        return LocalAdapterStore(settings.adapters_dir)
    from service.twins.s3_store import S3AdapterStore

    return S3AdapterStore.from_url(settings.adapter_store, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)


@dataclass
class TwinAdapters:
    catalog: TwinCatalog
    store: AdapterStore
    slot: AdapterSlot
    cache: TieredAdapterCache

    @classmethod
    def build(cls, settings: Settings, registry: Registry, unet, device: torch.device, events: CacheEvents | None = None,
              slot: AdapterSlot | None = None, store: AdapterStore | None = None) -> "TwinAdapters":
        slot = slot or AdapterSlot(unet, settings.lora_slot_rank, settings.lora_targets)
        store = store or open_adapter_store(settings)

        def prepare(data: bytes, record: TwinRecord) -> PreparedAdapter:
            state_dict = parse_adapter(data, record.sha256, f"twin {record.id!r}")
            try:
                return slot.prepare(state_dict, record.sha256, safetensors_metadata(data))
            except AdapterIncompatible as exc:  # registration checks this; here it is the server's fault
                raise AdapterUnavailable(f"the adapter of twin {record.id!r} does not fit the slot: {exc.message}") from None

        budgets = Budgets(settings.cache_device_bytes, settings.cache_host_bytes, settings.cache_disk_bytes)
        cache = TieredAdapterCache(store, prepare, device, budgets, settings.cache_dir, events)
        return cls(TwinCatalog(registry), store, slot, cache)
