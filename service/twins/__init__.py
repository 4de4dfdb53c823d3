"""Twins: which person an id names, where their adapter file lives, and whether a file can be one.

The torch-free face, used by the gateway (registration, revocation, listing): records and
their catalogue, adapter stores, and the header-only adapter check. The renderer's side
(tiered cache, slot) lives in `service.twins.adapters` and imports torch; importing this
package never does.
"""

from service.twins.records import TwinCatalog, TwinRecord, check_twin_id
from service.twins.store import AdapterStore, LocalAdapterStore, check_adapter_key
from service.twins.stores import open_adapter_store
from service.twins.validate import AdapterIncompatible, AdapterLayout, check_adapter_file

__all__ = [
    "AdapterIncompatible",
    "AdapterLayout",
    "AdapterStore",
    "LocalAdapterStore",
    "TwinCatalog",
    "TwinRecord",
    "check_adapter_file",
    "check_adapter_key",
    "check_twin_id",
    "open_adapter_store",
]
