"""Which adapter store the settings name: local files under `adapters_dir`, or an S3 prefix.

Owns: `open_adapter_store`, the one choice between `store.LocalAdapterStore` and
`s3_store.S3AdapterStore` (both check keys with `keys.py`; the choice lives above them: no
import cycle). Must never read an adapter itself.
"""

from __future__ import annotations

from service.twins.s3_store import S3AdapterStore
from service.twins.store import AdapterStore, LocalAdapterStore


def open_adapter_store(settings) -> AdapterStore:
    """The adapter store the settings name: local files under adapters_dir, or S3."""
    if settings.adapter_store == "local":
        return LocalAdapterStore(settings.adapters_dir)
    return S3AdapterStore.from_url(settings.adapter_store, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
