"""Twin records: which person an id names and which adapter file (with its sha256) is theirs.

Owns: the TwinRecord data type, twin id validation, and the catalogue, a view of the
registry's twins table (the one source of truth across replicas). Must never load weights,
touch the pipeline, or decide consent (that is `service.tenancy`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.errors import Forbidden, InvalidRequest, TwinNotFound
from service.registry import Registry, TwinInfo

TWIN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_twin_id(twin_id: str) -> str:
    """Return `twin_id` if it is a valid id; ids never contain dots or slashes."""
    if not isinstance(twin_id, str) or not TWIN_ID_RE.fullmatch(twin_id):
        raise InvalidRequest(
            "twin_id must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit",
            field="twin_id",
        )
    return twin_id


@dataclass(frozen=True)
class TwinRecord:
    id: str
    display_name: str
    adapter_path: str  # key of the adapter file, relative to the adapter store's root
    sha256: str
    rank: int | None = None


class TwinCatalog:
    """Twin records, read from and written to the registry database (shared by all replicas).

    A revoked or deleted twin reads as revoked (403 `revoked`), never as its old adapter."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def get(self, twin_id: str) -> TwinRecord:
        check_twin_id(twin_id)
        info = self.registry.twins.get_twin(twin_id, include_deleted=True)
        if info is None:
            raise TwinNotFound(f"no twin with id {twin_id!r}", field="twin_id")
        if info.deleted or info.revoked_at is not None:
            raise Forbidden(f"twin {twin_id!r} has been revoked", field="twin_id", code="revoked")
        return _record(info)

    def put(self, record: TwinRecord) -> None:
        check_twin_id(record.id)
        self.registry.twins.put_twin(
            record.id, display_name=record.display_name, adapter_key=record.adapter_path,
            adapter_sha256=record.sha256, rank=record.rank or 1,
        )

    def all(self) -> list[TwinRecord]:
        """Every twin that may still be served, by id."""
        return [_record(info) for info in self.registry.twins.list_twins()]


def _record(info: TwinInfo) -> TwinRecord:
    return TwinRecord(id=info.id, display_name=info.display_name, adapter_path=info.adapter_key,
                      sha256=info.adapter_sha256, rank=info.rank)
