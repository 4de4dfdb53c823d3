"""Assets: tenant-scoped input images (garments, poses, masks, source photos) stored by sha256.

`AssetService` is the small public face: add an upload or an https URL (bounds checked
before decoding; URLs fetched through the SSRF guard and cached by sha256), read an asset's
metadata or bytes for its tenant only, and purge old ones with the job-retention rule. Its
`garments` (`GarmentList`) is the tenant's list of uploaded garments with their categories,
as Studio shows them.
Must never import torch: the gateway owns assets; the renderer reads their bytes by id.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from service.assets.bounds import ImageBomb, ImageFacts, UnsupportedImage, check_image
from service.assets.fetch import FetchBusy, FetchFailed, FetchPool, TooManyFetches, UrlRefused, fetch_url, patient_fetches
from service.assets.garment_list import GarmentList, ListedGarment
from service.assets.store import KINDS, AssetInfo, AssetNotFound, AssetStore, open_asset_store
from service.errors import InvalidRequest


class AssetService:
    def __init__(self, store: AssetStore, *, max_bytes: int, max_pixels: int, allow_private_urls: bool = False,
                 fetcher: FetchPool | None = None):
        self.store = store
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.allow_private_urls = allow_private_urls
        self.fetcher = fetcher or FetchPool()  # URL fetches: one deadline each, threads of their own
        self._by_url: dict[tuple[str, str], str] = {}  # (tenant, url) -> asset id: a feed URL is fetched once
        self.garments = GarmentList(store)  # the tenant's listed garments and their categories (Studio's list)

    @classmethod
    def from_settings(cls, settings) -> "AssetService":
        return cls(open_asset_store(settings), max_bytes=settings.max_asset_bytes, max_pixels=settings.max_asset_pixels,
                   allow_private_urls=settings.dev_callbacks,
                   fetcher=FetchPool(settings.fetch_concurrency, settings.fetch_concurrency_per_tenant,
                                     settings.fetch_timeout_s))

    def add(self, tenant_id: str, kind: str, data: bytes, *, source_url: str | None = None,
            field: str = "file") -> AssetInfo:
        if kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}", field="kind")
        facts = check_image(data, max_bytes=self.max_bytes, max_pixels=self.max_pixels, field=field)
        info = AssetInfo(asset_id=hashlib.sha256(data).hexdigest(), tenant_id=tenant_id, kind=kind, format=facts.format,
                         media_type=facts.media_type, width=facts.width, height=facts.height, bytes=len(data),
                         created_at=datetime.now(timezone.utc).isoformat(), source_url=source_url)
        return self.store.put(info, data)

    def output_info(self, tenant_id: str, image) -> AssetInfo:
        """The asset record of one of this service's own generated images (a `GeneratedImage`:
        marked, encoded, its size known), without decoding it again. Its id is new by
        construction (every delivered image carries its own watermark id), so the caller writes
        it (`AssetStore.writes`) without asking the store first."""
        from service.assets.bounds import MEDIA_TYPES

        return AssetInfo(asset_id=image.sha256, tenant_id=tenant_id, kind="source", format=image.format,
                         media_type=MEDIA_TYPES[image.format], width=image.width, height=image.height,
                         bytes=len(image.data), created_at=datetime.now(timezone.utc).isoformat())

    def add_url(self, tenant_id: str, kind: str, url: str, *, field: str = "url") -> AssetInfo:
        known = self._by_url.get((tenant_id, url))
        if known is not None:
            info = self.store.info(tenant_id, known, missing_ok=True)
            if info is not None:
                return info
        data = self.fetcher.fetch(tenant_id, url, max_bytes=self.max_bytes, allow_private=self.allow_private_urls,
                                  field=field)
        info = self.add(tenant_id, kind, data, source_url=url, field=field)
        if len(self._by_url) > 10_000:
            self._by_url.clear()
        self._by_url[(tenant_id, url)] = info.asset_id
        return info

    def info(self, tenant_id: str, asset_id: str, field: str = "asset_id") -> AssetInfo:
        try:
            return self.store.info(tenant_id, asset_id)
        except AssetNotFound:
            raise AssetNotFound(f"no asset {asset_id!r}", field=field) from None

    def read(self, tenant_id: str, asset_id: str) -> tuple[AssetInfo, bytes]:
        return self.store.read(tenant_id, asset_id)


__all__ = ["AssetInfo", "AssetNotFound", "AssetService", "AssetStore", "FetchBusy", "FetchFailed", "FetchPool",
           "GarmentList", "ImageBomb", "ImageFacts", "KINDS", "ListedGarment", "TooManyFetches", "UnsupportedImage",
           "UrlRefused", "check_image", "fetch_url", "open_asset_store", "patient_fetches"]
