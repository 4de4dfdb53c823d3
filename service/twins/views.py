"""The twin catalogue as callers read it: a brand's twins with its consent terms, a person's
own twins, and the operators' list with a renderer's cache state.

Owns: `consent_terms` (a consent record's terms as a brand or the talent reads them, with its
state now) and `TwinViews`, the reads the `/v1` routes and Studio share: `for_tenant` (each
twin whose governing consent names the tenant; another tenant's twins stay invisible),
`with_consent` (twins with their governing consent and the brands it names: operators see
every twin, a talent key its own) and `registered` (every twin that may be served, with one
renderer worker's cache tiers when asked; audited as `admin.list`). Must never decide consent
(`service.tenancy`) nor reach the renderer other than through the `cache_state` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from service.audit.actions import audited_action
from service.audit.events import admin_event
from service.registry import Registry
from service.schemas import TwinListResponse, TwinState
from service.twins.records import TwinCatalog, TwinRecord


def consent_terms(record, now: datetime) -> dict:
    """A consent record's terms as a brand (or the talent) reads them, with its state now and
    its basis (`paper`, and who recorded it; `GET /v1/twins` answers without those two)."""
    if now < record.valid_from:
        state = "not_yet_valid"
    elif record.valid_until is not None and now >= record.valid_until:
        state = "expired"
    else:
        state = "active"
    return {"state": state, "version": record.version, "uses": list(record.uses),
            "territories": list(record.territories), "valid_from": record.valid_from.isoformat(),
            "valid_until": record.valid_until.isoformat() if record.valid_until else None,
            "excluded_categories": list(record.excluded_categories),
            "included_categories": list(record.included_categories),
            "review_unverified_garments": record.review_unverified_garments,
            "basis": "paper", "recorded_by": record.recorded_by}  # an operator's record of a paper contract


def licence_terms(licence, now: datetime) -> dict:
    """An accepted licence's terms as its brand reads them (the same shape as `consent_terms`)."""
    terms = licence.terms
    valid_from = datetime.fromisoformat(terms["valid_from"])
    valid_until = datetime.fromisoformat(terms["valid_until"]) if terms["valid_until"] else None
    state = ("not_yet_valid" if now < valid_from else
             "expired" if valid_until is not None and now >= valid_until else "active")
    return {"state": state, "version": None, "licence_id": licence.id, "uses": list(terms["uses"]),
            "territories": list(terms["territories"]), "valid_from": terms["valid_from"],
            "valid_until": terms["valid_until"], "excluded_categories": list(terms["excluded_categories"]),
            "included_categories": list(terms["included_categories"]), "review_unverified_garments": False,
            "basis": "signed", "recorded_by": None}


def twin_state(record: TwinRecord, cache: dict | None) -> TwinState:
    """A registered twin, with the tiers of `cache` (a renderer's cache state) holding it."""
    tiers = in_slot = None
    if cache is not None:
        state = next((t for t in cache["twins"] if t["id"] == record.id), None)
        tiers, in_slot = (state["tiers"], state["in_slot"]) if state else ([], False)
    return TwinState(id=record.id, display_name=record.display_name, adapter_key=record.adapter_path,
                     adapter_sha256=record.sha256, rank=record.rank, tiers=tiers, in_slot=in_slot)


class TwinViews:
    def __init__(self, registry: Registry, catalog: TwinCatalog, cache_state: Callable[[], dict],
                 record: Callable[[dict[str, Any]], Any]):
        self.registry = registry
        self.catalog = catalog
        self.cache_state = cache_state  # one renderer worker's cache tiers (starts one if none runs)
        self.record = record

    def for_tenant(self, tenant_id: str, only: frozenset[str] | None = None) -> list[dict]:
        """Twins whose governing consent names `tenant_id`, or that a licence the person accepted
        lets it use (`only`: restrict to these ids)."""
        now = datetime.now(timezone.utc)
        licensed = {}
        for licence in self.registry.licences.listed(tenant_id=tenant_id):  # newest first
            if licence.status == "accepted":
                licensed.setdefault(licence.twin_id, licence)
        twins = []
        for twin in self.registry.twins.list_twins():
            if only is not None and twin.id not in only:
                continue
            record = self.registry.consent.current_consent(twin.id, now)
            if record is not None and tenant_id in record.tenants:
                terms = consent_terms(record, now)
            elif twin.id in licensed:
                terms = licence_terms(licensed[twin.id], now)
            else:
                continue
            twins.append({"id": twin.id, "display_name": twin.display_name, "consent": terms})
        return twins

    def with_consent(self, twin_ids: Iterable[str] | None = None) -> list[dict]:
        """Twins with their governing consent's terms and the brands it names: every twin that
        may be served (None), or these ids (a talent key's; unknown ids are skipped)."""
        now = datetime.now(timezone.utc)
        if twin_ids is None:
            twins = self.catalog.all()
        else:
            twins = [t for t in (self.registry.twins.get_twin(i) for i in sorted(twin_ids)) if t is not None]
        rows = []
        for twin in twins:
            record = self.registry.consent.current_consent(twin.id, now)
            rows.append({"id": twin.id, "display_name": twin.display_name,
                         "consent": consent_terms(record, now) if record else None,
                         "tenants": sorted(record.tenants) if record else []})
        return rows

    def registered(self, actor: dict, client_ip: str | None, *, cache: bool = False) -> TwinListResponse:
        """Every twin that may be served; with `cache`, one renderer worker's cache state (audited)."""
        with audited_action(self.record, admin_event, action="list", client_ip=client_ip, actor=actor):
            state = self.cache_state() if cache else None
            return TwinListResponse(twins=[twin_state(r, state) for r in self.catalog.all()],
                                    cache=state["cache"] if state else {})
