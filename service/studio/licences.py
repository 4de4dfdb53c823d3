"""Studio's Licences pages: the person decides and ends the licences of their twins; a brand asks.

Owns: the person's page (every licence of their twins in plain words; Accept and Decline,
signed in the browser by `static/licences.js` with an Ed25519 key whose private half is
non-extractable and stays in that browser's IndexedDB; Revoke, and ending every licence of a
twin), the routes that page posts to (a public key, a signed decision, an end), the brand's
page (its tenant's licences, and the request form turned into a `LicenceRequestBody`), the
signed licence as a download for either side, the words that say on what basis a licence
holds (`view`), and the signed licences the Twins page names (`signed_licences`). Every
action is the licensing capability's own audited call (`Licensing.register_key`, `decide`,
`revoke`, `revoke_twin`, `request`: the records of `POST /v1/talent/...` and `POST
/v1/licences`), admitted as those routes admit their caller (`talent`, `licensing`).

Must never see, ask for or keep a private key (only a public key and a signature reach the
server), check a signature itself (the registry does), or hold licensing logic.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from service.errors import AtelierError, InvalidRequest
from service.registry.licences import CURRENCIES
from service.schemas import LicenceDecisionBody, LicenceIdBody, LicenceRequestBody, SigningKeyBody, TwinLicencesBody
from service.schemas.licences import LICENCE_ID_PATTERN
from service.studio.pages import (Viewer, acting, client_ip, core_of, first_error, form_of, is_htmx, page, see_other,
                                  signed_in, templates)
from service.studio.security import BASE

router = APIRouter(include_in_schema=False)
LicencesViewer = Annotated[Viewer, Depends(signed_in("talent", "licensing"))]
TalentViewer = Annotated[Viewer, Depends(signed_in("talent"))]
BrandViewer = Annotated[Viewer, Depends(signed_in("licensing"))]
BADGES = {"requested": "pending", "accepted": "active", "declined": "refused", "revoked": "refused"}
WHO = {"person": "the person", "representative": "their representative", "guardian": "their guardian"}
FORM_LIMITS = {"max_files": 0, "max_fields": 16}


# -- what a licence says, in plain words ---------------------------------------------------------------


def _when(text: str | None) -> str:
    """An ISO time as a day (midnight UTC) or a day and minute, in UTC."""
    moment = dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%d") if moment.time() == dt.time(0) else moment.strftime("%Y-%m-%d %H:%M UTC")


def _signed(signatures: list[dict], decision: str) -> str:
    return ", and ".join(f"{WHO[g['role']]} on {g['signed_at'][:10]}" for g in signatures if g["decision"] == decision)


def basis(licence: dict) -> str:
    """On what a licence stands: the person's signature (and when), or that it awaits one."""
    status, signatures = licence["status"], licence["signatures"]
    accepted, declined = _signed(signatures, "accept"), _signed(signatures, "decline")
    if status == "accepted":
        return f"signed by {accepted}"
    if status == "declined":
        return f"declined, signed by {declined}"
    if status == "revoked":
        ended = f"ended on {licence['revoked_at'][:10]}" if licence.get("revoked_at") else "ended"
        return f"{ended}; it had been signed by {accepted}" if accepted and licence.get("decided_at") else ended
    waiting = "the guardian" if licence["terms"].get("minor") and accepted else "the person"
    return f"accepted by {accepted}; waiting for {waiting}" if accepted else "not signed: waiting for the person"


def view(licence: dict, role: str | None = None) -> dict:
    """A licence (`licence_out`) with its terms in words, and what the viewer may do with it."""
    terms = licence["terms"]
    mine = next((g for g in licence["signatures"] if g["role"] == role), None)
    until = f" until {_when(terms['valid_until'])}" if terms.get("valid_until") else ", open-ended"
    return {**licence, "badge": BADGES.get(licence["status"], ""), "basis": basis(licence),
            "uses": ", ".join(terms["uses"]), "territories": ", ".join(terms["territories"]) or "worldwide",
            "valid": f"from {_when(terms['valid_from'])}{until}",
            "rate": f"{terms['rate_per_image']} {terms['currency']} per image",
            "excluded": ", ".join(terms.get("excluded_categories") or ()),
            "included": ", ".join(terms.get("included_categories") or ()),
            "my_decision": mine and mine["decision"],
            "can_decide": role is not None and licence["status"] == "requested" and mine is None,
            "can_revoke": role is not None and licence["status"] in ("requested", "accepted")}


def signed_licences(request: Request, viewer: Viewer) -> dict[str, list[dict]]:
    """Twin id -> the accepted licences the viewer may read (a person's, or a brand's with the
    `licensing` scope), for the Twins page; an operator's or a plain brand key's: none."""
    core, principal = core_of(request), viewer.principal
    if viewer.can("talent"):
        listed = core.licensing.person_licences(principal)["licences"]
    elif viewer.can("licensing"):
        listed = core.licensing.brand_licences(principal)["licences"]
    else:
        return {}
    signed: dict[str, list[dict]] = {}
    for licence in listed:
        if licence["status"] == "accepted":
            signed.setdefault(licence["twin_id"], []).append(view(licence))
    return signed


# -- the pages ---------------------------------------------------------------------------------------------


def _context(request: Request, viewer: Viewer) -> dict:
    core, principal = core_of(request), viewer.principal
    context: dict = {"talent": viewer.can("talent"), "brand": viewer.can("licensing"), "currencies": sorted(CURRENCIES)}
    if context["talent"]:
        role = principal.signs_as
        mine = [view(x, role) for x in core.licensing.person_licences(principal)["licences"]]
        twins = sorted(principal.twin_ids or ())
        context.update(role=role, twins=twins, by_twin={t: [x for x in mine if x["twin_id"] == t] for t in twins})
        try:
            context["person"] = core.licensing.me(principal)
        except AtelierError as exc:  # a key that names no twin, or a twin since deleted
            context["person_error"] = exc
    if context["brand"]:
        context["listed"] = [view(x) for x in core.licensing.brand_licences(principal)["licences"]]
    return context


@router.get("/licences", response_class=HTMLResponse)
def licences_page(request: Request, viewer: LicencesViewer):
    return page(request, "licences.html", viewer, active="licences", form={}, **_context(request, viewer))


@router.get("/licences/document")
def licence_document(request: Request, viewer: LicencesViewer,
                     licence_id: str = Query(..., pattern=LICENCE_ID_PATTERN)):
    """The signed licence as a file, for `atelier licence verify FILE` (the brand's or the person's)."""
    document = core_of(request).licensing.document(viewer.principal, licence_id)
    return Response(json.dumps(document, indent=2, sort_keys=True) + "\n", media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{licence_id}.json"'})


def _valid(model, data: dict):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc) from None


async def _act(request: Request, viewer: Viewer, scope: str, call):
    """One capability call, admitted as the API's route admits it (the key's limits spent)."""

    def run():
        with acting(request, viewer, scope) as principal:
            return call(principal, client_ip(request))

    return await anyio.to_thread.run_sync(run)


def _card(request: Request, viewer: Viewer, licence: dict) -> HTMLResponse:
    return templates.TemplateResponse(request, "_licence.html", {
        "l": view(licence, viewer.principal.signs_as), "base": BASE, "csrf": viewer.csrf, "person_view": True})


# -- the person: a key, a signed decision, an end ------------------------------------------------------


@router.post("/licences/signing-key", response_class=HTMLResponse)
async def signing_key(request: Request, viewer: TalentViewer):
    """Register the public half of the key this browser made (the private half never leaves it)."""
    form = await form_of(request, viewer, **FORM_LIMITS)
    body = _valid(SigningKeyBody, {"public_key": (form.get("public_key") or "").strip()})
    person = await _act(request, viewer, "talent",
                        lambda p, ip: core_of(request).licensing.register_key(p, body.public_key, client_ip=ip))
    if is_htmx(request):
        return templates.TemplateResponse(request, "_licence_key.html", {
            "person": person, "role": viewer.principal.signs_as, "base": BASE, "csrf": viewer.csrf})
    return see_other("/licences")


@router.post("/licences/decide", response_class=HTMLResponse)
async def decide(request: Request, viewer: TalentViewer):
    """A decision the browser signed; the registry checks it against the registered key."""
    form = await form_of(request, viewer, **FORM_LIMITS)
    body = _valid(LicenceDecisionBody, {name: (form.get(name) or "").strip()
                                        for name in ("licence_id", "decision", "signature")})
    licence = await _act(request, viewer, "talent",
                         lambda p, ip: core_of(request).licensing.decide(p, body, client_ip=ip))
    if is_htmx(request):
        return _card(request, viewer, licence)
    return see_other(f"/licences#licence-{licence['licence_id']}")


@router.post("/licences/revoke", response_class=HTMLResponse)
async def revoke(request: Request, viewer: TalentViewer):
    form = await form_of(request, viewer, **FORM_LIMITS)
    body = _valid(LicenceIdBody, {"licence_id": (form.get("licence_id") or "").strip()})
    licence = await _act(request, viewer, "talent",
                         lambda p, ip: core_of(request).licensing.revoke(p, body.licence_id, client_ip=ip))
    if is_htmx(request):
        return _card(request, viewer, licence)
    return see_other(f"/licences#licence-{licence['licence_id']}")


@router.post("/licences/end-twin", response_class=HTMLResponse)
async def end_twin(request: Request, viewer: TalentViewer):
    form = await form_of(request, viewer, **FORM_LIMITS)
    body = _valid(TwinLicencesBody, {"twin_id": (form.get("twin_id") or "").strip()})
    await _act(request, viewer, "talent",
               lambda p, ip: core_of(request).licensing.revoke_twin(p, body.twin_id, client_ip=ip))
    return see_other(f"/licences#twin-{body.twin_id}")


# -- the brand: a request ------------------------------------------------------------------------------------


def _list(form, name: str, upper: bool = False) -> list[str]:
    items = [x.strip() for x in (form.get(name) or "").replace(";", ",").split(",") if x.strip()]
    return [x.upper() for x in items] if upper else [x.lower() for x in items]


def _day(form, name: str) -> str | None:
    """A date field as the start of that day, UTC."""
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(0), dt.timezone.utc).isoformat()
    except ValueError:
        raise InvalidRequest(f"{name} must be a date, YYYY-MM-DD", field=name) from None


def request_body(form) -> LicenceRequestBody:
    return _valid(LicenceRequestBody, {
        "twin_id": (form.get("twin_id") or "").strip(), "purpose": (form.get("purpose") or "").strip(),
        "uses": _list(form, "uses"), "territories": _list(form, "territories", upper=True),
        "valid_from": _day(form, "valid_from"), "valid_until": _day(form, "valid_until"),
        "rate_per_image": (form.get("rate_per_image") or "").strip(), "currency": form.get("currency") or ""})


@router.post("/licences/request", response_class=HTMLResponse)
async def request_licence(request: Request, viewer: BrandViewer):
    """The brand's request: the same call (and record) as `POST /v1/licences`; on a refusal the
    form comes back with what was typed and the reason."""
    form = await form_of(request, viewer, **FORM_LIMITS)
    try:
        body = request_body(form)
        licence = await _act(request, viewer, "licensing",
                             lambda p, ip: core_of(request).licensing.request(p, body, client_ip=ip))
    except AtelierError as exc:
        if exc.status not in (404, 409, 422):
            raise
        context = await anyio.to_thread.run_sync(_context, request, viewer)
        response = page(request, "licences.html", viewer, status=exc.status, active="licences", error=exc,
                        form={k: v for k, v in form.items() if k != "csrf_token"}, **context)
        return response
    return see_other(f"/licences#licence-{licence['licence_id']}")
