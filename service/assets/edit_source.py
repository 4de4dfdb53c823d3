"""What an edit starts from, and whether it may start from it: an edit never changes who is shown.

An edit keeps the source's pixels outside its mask, so the source decides who the result
shows. A source is accepted only as
- a **generation** of the named twin, made for this tenant (the twin's consent is checked by
  the caller before this runs, and again at delivery: the same twin, so the same consent), or
- an **uploaded photo** (anything that does not resolve to an Atelier generation), only for the
  tenants an operator allows (`ATELIER_EDIT_UPLOAD_TENANTS`); such edits are marked `upload`
  (audit record, C2PA ingredient), and so is every later edit of their output (the kept
  record carries the origin on).

A source is identified by facts Atelier wrote, never by what the caller says: the tenant's
kept outputs (`outputs/<tenant>/<generation>.json`, and by asset sha256 under
`outputs/<tenant>/by-asset/`) name the image's watermark id, and the registry's watermark
index says whose generation that is. An asset with no kept record is read as `/v1/verify`
reads an image (the watermark, then a signed manifest the index confirms); the reading is
cached per asset sha256.

Owns: the kept-output records, the resolution, the allow-list of upload tenants, and the
refusals (`403 edit_source_mismatch`: an Atelier generation of another twin or another
tenant, or of no twin; `403 edit_upload_not_allowed`; `422 edit_source_unverifiable`).
Must never decide consent (`service.tenancy`), import provenance (the image reader and the
watermark index are handed in), or say anything in a refusal about another tenant's
generation (its twin, tenant or id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from service.assets.store import AssetNotFound, AssetStore
from service.errors import AtelierError, EditSourceMismatch, EditSourceUnverifiable, EditUploadNotAllowed

log = logging.getLogger("atelier.assets")
Origin = Literal["generation", "upload"]


class IndexedImage(Protocol):
    """A delivered image in the watermark index (`service.registry.WatermarkInfo`)."""

    watermark_id: str
    generation_id: str
    tenant_id: str
    twin_id: str | None


Lookup = Callable[[str], "IndexedImage | None"]  # watermark id -> the indexed image
# Image bytes -> the watermark id that resolves them (as /v1/verify resolves an image), or None;
# raises a typed AtelierError when the image cannot be read within the verify bounds.
Identify = Callable[[bytes], "str | None"]


@dataclass(frozen=True)
class EditSource:
    """What an edit's source is: an Atelier generation of the named twin, or an upload."""

    origin: Origin
    generation_id: str | None  # the generation the pixels are, when Atelier made them


def _nothing(_: object) -> None:
    return None


class EditSources:
    def __init__(self, store: AssetStore, *, lookup: Lookup = _nothing, identify: Identify = _nothing,
                 upload_tenants: Iterable[str] = ()):
        self.store = store
        self.lookup = lookup
        self.identify = identify
        self.upload_tenants = frozenset(upload_tenants)

    # -- the kept records ----------------------------------------------------------------------

    def writes(self, tenant: str, generation_id: str, asset_id: str, watermark_id: str | None,
               origin: Origin) -> list[tuple[str, bytes]]:
        """The records of a delivered generation's kept image, as (key, bytes): by generation id
        (what `/v1/edit` names) and by asset sha256 (the same image named as an asset). The
        caller writes them with the image (`ConditioningInputs.keep`)."""
        record = json.dumps({"asset_id": asset_id, "generation_id": generation_id, "watermark_id": watermark_id,
                             "origin": origin}).encode()
        return [(self._by_generation(tenant, generation_id), record), (self._by_asset(tenant, asset_id), record)]

    def kept_asset(self, tenant: str, generation_id: str, field: str = "source.generation_id") -> str:
        """The asset id of a generation kept for this tenant; another tenant's reads as missing."""
        record = self._record(self._by_generation(tenant, generation_id))
        if record is None or not record.get("asset_id"):
            raise AssetNotFound(f"no generation {generation_id!r} of this tenant is kept", field=field)
        return record["asset_id"]

    # -- resolution --------------------------------------------------------------------------------

    def resolve(self, tenant: str, twin_id: str, asset_id: str, *, field: str) -> EditSource:
        """What the tenant's asset `asset_id` is as the source of an edit of `twin_id`, or a refusal."""
        mark = self._indexed(tenant, asset_id, field)
        if mark is None:  # not an image Atelier delivered: an uploaded photo of anyone
            return self._upload(tenant, None, field)
        if mark.tenant_id != tenant or mark.twin_id is None or mark.twin_id != twin_id:
            # One answer for another twin, another tenant's generation and a base-model image:
            # it names no tenant, twin or generation, so nothing is learnt about another's image.
            raise EditSourceMismatch(
                f"the source is an Atelier generation, but not one of twin {twin_id!r} made for this tenant: an edit "
                "keeps the source's pixels, so it may only start from the same twin's own generations", field=field)
        record = self._record(self._by_generation(tenant, mark.generation_id)) or {}
        if record.get("origin") == "upload":  # an edit of an uploaded photo: still that photo's pixels
            return self._upload(tenant, mark.generation_id, field)
        return EditSource("generation", mark.generation_id)

    def _upload(self, tenant: str, generation_id: str | None, field: str) -> EditSource:
        if tenant not in self.upload_tenants:
            what = "an edit of an uploaded photo" if generation_id else "not an Atelier generation (an uploaded photo)"
            raise EditUploadNotAllowed(
                f"the source is {what}; this tenant may edit only its own generations of the twin "
                "(an operator allows uploaded photos per tenant: ATELIER_EDIT_UPLOAD_TENANTS)", field=field)
        return EditSource("upload", generation_id)

    def _indexed(self, tenant: str, asset_id: str, field: str) -> IndexedImage | None:
        """The indexed image this asset is: through its kept record (our own output), else by
        reading it like /v1/verify (cached per sha256: the same bytes read the same)."""
        key = self._by_asset(tenant, asset_id)
        record = self._record(key)
        if record is None:
            try:
                _, data = self.store.read(tenant, asset_id)
            except AssetNotFound:
                raise AssetNotFound(f"no asset {asset_id!r}", field=field) from None
            try:
                watermark_id = self.identify(data)
            except AtelierError as exc:  # past the verify bounds or budget, unreadable: never guess
                if exc.status >= 500:  # the registry or the store, not the image: retry later
                    raise
                raise EditSourceUnverifiable(f"the source could not be checked for an Atelier watermark ({exc.code}); "
                                             "send a plain PNG, JPEG or WebP", field=field) from None
            record = {"watermark_id": watermark_id, "read": True}
            self.store.blobs.put(key, json.dumps(record).encode(), durable=False)
        watermark_id = record.get("watermark_id")
        return self.lookup(watermark_id) if watermark_id else None

    def _record(self, key: str) -> dict | None:
        raw = self.store.blobs.get(key)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            log.warning("unreadable kept-output record", extra={"fields": {"key": key}})
            return None
        return record if isinstance(record, dict) else None

    @staticmethod
    def _by_generation(tenant: str, generation_id: str) -> str:
        return f"outputs/{tenant}/{generation_id}.json"

    @staticmethod
    def _by_asset(tenant: str, asset_id: str) -> str:
        return f"outputs/{tenant}/by-asset/{asset_id}.json"
