"""A tenant's garment list: the uploaded garments Studio shows, each with its category.

Owns: one small record per listed garment beside the tenant's assets
(`garments/<tenant>/<sha256>.json`: the garment's category, who chose it (`person` or
`classifier`), what a classifier made of it when one ran, a display name (the uploaded file's
name, trimmed), its size and when it was listed), reading the list newest first, changing a
garment's category and taking one off the list. Taking a garment off the list keeps its asset
(generations and jobs may name it); the retention rule that deletes an asset deletes its
record too (`AssetStore.purge`). A tenant's list is read whole: it is meant for the hundreds of
packshots a team works with, not for a whole catalogue's history.

Must never decode or bound-check an image (`bounds` does, through `AssetService.add`, before
anything is listed), never decide what a category means for consent (`service.tenancy` does,
at every generation, whatever the list says), and never list another tenant's garment: every
key is built from the caller's tenant.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import get_args

from service.assets.store import ASSET_ID, TENANT, AssetInfo, AssetNotFound, AssetStore, garment_key
from service.errors import InvalidRequest
from service.schemas import GarmentCategory

log = logging.getLogger("atelier.assets")
CATEGORIES: tuple[str, ...] = get_args(GarmentCategory)  # what a generation's garment may declare
CHOSEN_BY = ("person", "classifier")
MAX_NAME = 80


@dataclass(frozen=True)
class ListedGarment:
    asset_id: str
    category: str
    chosen_by: str  # "person" (the uploader's choice) or "classifier"
    name: str
    width: int
    height: int
    listed_at: str
    classified: str | None = None  # a classifier's category for the image, when one ran


def check_category(category: str | None, field: str = "category") -> str:
    if category not in CATEGORIES:
        raise InvalidRequest(f"choose a garment category: {', '.join(CATEGORIES)}", field=field)
    return category


def display_name(filename: str | None, asset_id: str) -> str:
    """The uploaded file's name without its folder or extension, printable and short; else the id's start."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = name.rsplit(".", 1)[0] if "." in name else name
    name = "".join(c for c in name if c.isprintable()).strip()[:MAX_NAME]
    return name or f"garment {asset_id[:8]}"


class GarmentList:
    def __init__(self, store: AssetStore):
        self.store = store

    def put(self, info: AssetInfo, category: str, *, chosen_by: str = "person", name: str | None = None,
            classified: str | None = None) -> ListedGarment:
        """List a garment asset (already added, so already checked) with its category; listing
        the same image again updates its category and name."""
        if info.kind != "garment":
            raise InvalidRequest("only garment images are listed as garments", field="kind")
        if chosen_by not in CHOSEN_BY:
            raise ValueError(f"chosen_by must be one of {CHOSEN_BY}")
        entry = ListedGarment(asset_id=info.asset_id, category=check_category(category), chosen_by=chosen_by,
                              name=display_name(name, info.asset_id), width=info.width, height=info.height,
                              listed_at=datetime.now(timezone.utc).isoformat(), classified=classified)
        self._write(info.tenant_id, entry)
        return entry

    def get(self, tenant_id: str, asset_id: str) -> ListedGarment | None:
        if not TENANT.fullmatch(tenant_id or "") or not ASSET_ID.fullmatch(asset_id or ""):
            return None
        raw = self.store.blobs.get(garment_key(tenant_id, asset_id))
        return None if raw is None else self._entry(raw, asset_id)

    def entries(self, tenant_id: str) -> list[ListedGarment]:
        """The tenant's listed garments, newest first."""
        if not TENANT.fullmatch(tenant_id or ""):
            return []
        prefix = garment_key(tenant_id, "0" * 64).rsplit("/", 1)[0] + "/"
        found = []
        for key in self.store.blobs.keys(prefix):
            asset_id = key.rsplit("/", 1)[-1].removesuffix(".json")
            raw = self.store.blobs.get(key) if key.endswith(".json") and ASSET_ID.fullmatch(asset_id) else None
            entry = None if raw is None else self._entry(raw, asset_id)
            if entry is not None:
                found.append(entry)
        found.sort(key=lambda e: (e.listed_at, e.asset_id), reverse=True)
        return found

    def set_category(self, tenant_id: str, asset_id: str, category: str) -> ListedGarment:
        entry = self.get(tenant_id, asset_id)
        if entry is None:
            raise AssetNotFound(f"no garment {asset_id!r} in this tenant's list", field="asset_id")
        entry = ListedGarment(**{**asdict(entry), "category": check_category(category), "chosen_by": "person"})
        self._write(tenant_id, entry)
        return entry

    def remove(self, tenant_id: str, asset_id: str) -> None:
        """Take a garment off the list (its asset stays for the generations that name it)."""
        if self.get(tenant_id, asset_id) is None:
            raise AssetNotFound(f"no garment {asset_id!r} in this tenant's list", field="asset_id")
        self.store.blobs.delete(garment_key(tenant_id, asset_id))

    def _write(self, tenant_id: str, entry: ListedGarment) -> None:
        self.store.blobs.put(garment_key(tenant_id, entry.asset_id), json.dumps(asdict(entry), sort_keys=True).encode(),
                             durable=True)

    @staticmethod
    def _entry(raw: bytes, asset_id: str) -> ListedGarment | None:
        try:
            record = json.loads(raw)
            entry = ListedGarment(**record)
        except (ValueError, TypeError):
            log.warning("unreadable garment list record", extra={"fields": {"asset_id": asset_id}})
            return None
        return entry if entry.asset_id == asset_id and entry.category in CATEGORIES else None
