"""Operator routes: tenants, API keys, twin revocation, consent, delivery, presets, webhooks.

Owns: the `/v1/admin/{tenants,keys,consent,presets,webhooks}` routes and
`/v1/admin/twins/revoke`, each one
authenticated with an `admin` key, validated, run off the event loop and audited (done,
refused or failed) before it answers; and `audited_failure`, the error answer of every
route on the mounted `/v1` sub-app. Plain Starlette (mounted by `service.app`, which is the
only module that imports bentoml). Must never hold registry logic: it calls `Registry`,
`service.tenancy.manage` and `service.twins.admin`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.audit.events import admin_event
from service.audit.record import AuditError as AuditUnavailable
from service.errors import AtelierError, TwinNotFound
from service.http_edge import error_response, internal_error_response, validation_error
from service.registry.errors import KeyNotFound, TenantNotFound
from service.jobs.delivery import check_output_target
from service.jobs.presets import BUILTIN_SCENES
from service.jobs.webhooks import check_callback_url, new_secret
from service.schemas import (
    ConsentBody,
    DeliveryIdBody,
    DeliveryListBody,
    EmptyBody,
    PresetBody,
    TenantDeliveryBody,
    TenantIdBody,
    KeyCreateBody,
    KeyIdBody,
    KeyListBody,
    TenantCreateBody,
    TenantDisableBody,
    TwinIdBody,
    TwinRevokeBody,
)
from service.tenancy.manage import record_consent, shown
from service.twins.admin import revoke_twin

log = logging.getLogger("atelier.admin")

# operation(service, body, audit_details) -> JSON body; it adds what the audit record should say.
Operation = Callable[[Any, Any, dict], dict]


async def audited_failure(recorder, exc: Exception, event: dict) -> Response:
    """The error response of a /v1 sub-app route, recorded first (a failed record is a 503)."""
    if isinstance(exc, AtelierError):
        log.info("request refused", extra={"fields": {"code": exc.code, "status": exc.status}})
        response = error_response(exc)
    else:
        log.exception("request failed")
        response = internal_error_response()
    if recorder is not None and not isinstance(exc, AuditUnavailable):
        try:
            await anyio.to_thread.run_sync(recorder.record, event)
        except AtelierError:
            return error_response(AuditUnavailable("the audit log cannot record this request"))
    return response


async def caller(request: Request, scope: str):
    """The key behind this request, holding `scope` (401/403 otherwise), looked up off the loop."""
    atelier = request.app.state.atelier
    return await anyio.to_thread.run_sync(atelier.tenancy.authenticate, request.headers.get("authorization"), scope)


async def parsed(request: Request, model: type[BaseModel]):
    """The JSON body as `model` (the edge has validated it already; this is the typed copy)."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise validation_error(exc) from None


def admin_route(path: str, action: str, model: type[BaseModel], operation: Operation, status: int = 200) -> Route:
    async def endpoint(request: Request) -> Response:
        atelier = request.app.state.atelier
        ip = request.client.host if request.client else None
        details: dict = {}
        try:
            details["actor"] = (await caller(request, "admin")).audit_fields()
            body = await parsed(request, model)
            result = await anyio.to_thread.run_sync(operation, atelier, body, details)
            await anyio.to_thread.run_sync(atelier.audit.record, admin_event(action=action, client_ip=ip, **details))
        except Exception as exc:
            return await audited_failure(atelier.audit, exc, admin_event(action=action, client_ip=ip, error=exc, **details))
        return JSONResponse(result, status_code=status)

    return Route(path, endpoint, methods=["POST"])


def create_tenant(atelier, body: TenantCreateBody, details: dict) -> dict:
    details["tenant_id"] = body.tenant_id
    atelier.registry.create_tenant(body.tenant_id, body.name)
    return {"tenant": shown(atelier.registry.get_tenant(body.tenant_id))}


def list_tenants(atelier, body: EmptyBody, details: dict) -> dict:
    return {"tenants": [shown(t) for t in atelier.registry.list_tenants()]}


def disable_tenant(atelier, body: TenantDisableBody, details: dict) -> dict:
    details.update(tenant_id=body.tenant_id, disabled=body.disabled)
    atelier.registry.set_tenant_disabled(body.tenant_id, body.disabled)
    return {"tenant": shown(atelier.registry.get_tenant(body.tenant_id))}


def create_key(atelier, body: KeyCreateBody, details: dict) -> dict:
    key_id, token = atelier.registry.create_api_key(
        body.tenant_id, body.scopes, name=body.name,
        requests_per_minute=body.requests_per_minute, max_concurrent_jobs=body.max_concurrent_jobs,
    )
    details.update(tenant_id=body.tenant_id, key_id_created=key_id, scopes=sorted(body.scopes))  # never the token
    listing = next(k for k in atelier.registry.list_keys(body.tenant_id) if k.key_id == key_id)
    return {"key": shown(listing), "token": token, "note": "the token is shown once; store it now"}


def list_keys(atelier, body: KeyListBody, details: dict) -> dict:
    if body.tenant_id is not None and atelier.registry.get_tenant(body.tenant_id) is None:
        raise TenantNotFound(f"no tenant {body.tenant_id!r}", field="tenant_id")
    return {"keys": [shown(k) for k in atelier.registry.list_keys(body.tenant_id)]}


def revoke_key(atelier, body: KeyIdBody, details: dict) -> dict:
    details["key_id_revoked"] = body.key_id
    newly = atelier.registry.revoke_key(body.key_id)
    if not newly and not any(k.key_id == body.key_id for k in atelier.registry.list_keys()):
        raise KeyNotFound(f"no API key {body.key_id!r}", field="key_id")
    return {"key_id": body.key_id, "revoked": True, "already_revoked": not newly}


def revoke_twin_route(atelier, body: TwinRevokeBody, details: dict) -> dict:
    """Revoke (final) and, with `delete`, remove the adapter file. This replica evicts at once;
    the others within ATELIER_REGISTRY_POLL_MS, and no replica starts a new request for it."""
    details.update(twin_id=body.twin_id, delete=body.delete)
    info = revoke_twin(atelier.registry, atelier.engine.twins.store, body.twin_id, delete=body.delete)
    atelier.tenancy.watcher.poll_once()  # evicts here now, and records revocation_applied
    return {"twin": shown(info)}


def add_consent(atelier, body: ConsentBody, details: dict) -> dict:
    details["twin_id"] = body.twin_id
    record = record_consent(atelier.registry, body.twin_id, **body.model_dump(exclude={"twin_id"}))
    details.update(consent_id=record.id, version=record.version, tenants=sorted(record.tenants), uses=list(record.uses))
    return {"consent": shown(record)}


def consent_history(atelier, body: TwinIdBody, details: dict) -> dict:
    details["twin_id"] = body.twin_id
    if atelier.registry.get_twin(body.twin_id, include_deleted=True) is None:
        raise TwinNotFound(f"no twin {body.twin_id!r}", field="twin_id")
    return {"twin_id": body.twin_id, "versions": [shown(r) for r in atelier.registry.consent_history(body.twin_id)]}


def set_delivery(atelier, body: TenantDeliveryBody, details: dict) -> dict:
    """A tenant's output target, URL expiry and webhook; a new secret is shown once."""
    details["tenant_id"] = body.tenant_id
    if atelier.registry.get_tenant(body.tenant_id) is None:
        raise TenantNotFound(f"no tenant {body.tenant_id!r}", field="tenant_id")
    changes: dict = {}
    if body.output_target is not None:
        changes["output_target"] = check_output_target(body.output_target)
    if body.url_expiry_s is not None:
        changes["url_expiry_s"] = body.url_expiry_s
    if body.webhook_url is not None:
        changes["webhook_url"] = check_callback_url(body.webhook_url, allow_private=atelier.settings.dev_callbacks) if body.webhook_url else None
    current = atelier.jobs.store.tenant_delivery(body.tenant_id)
    secret = None
    if body.rotate_webhook_secret or (changes.get("webhook_url") and not current.webhook_secret):
        secret = changes["webhook_secret"] = new_secret()
    settings = atelier.jobs.store.set_tenant_delivery(body.tenant_id, **changes)
    details.update(changed=sorted(changes), secret_rotated=secret is not None)  # never the secret
    shown_settings = {"tenant_id": body.tenant_id, "output_target": settings.output_target,
                      "url_expiry_s": settings.url_expiry_s, "webhook_url": settings.webhook_url,
                      "has_webhook_secret": settings.webhook_secret is not None}
    return {"delivery": shown_settings, **({"webhook_secret": secret, "note": "the secret is shown once"} if secret else {})}


def put_preset(atelier, body: PresetBody, details: dict) -> dict:
    details.update(tenant_id=body.tenant_id, preset=body.name)
    if atelier.registry.get_tenant(body.tenant_id) is None:
        raise TenantNotFound(f"no tenant {body.tenant_id!r}", field="tenant_id")
    atelier.jobs.store.put_preset(body.tenant_id, body.name, body.prompt, body.negative_prompt)
    return list_presets(atelier, body, details)


def list_presets(atelier, body, details: dict) -> dict:
    if atelier.registry.get_tenant(body.tenant_id) is None:
        raise TenantNotFound(f"no tenant {body.tenant_id!r}", field="tenant_id")
    own = atelier.jobs.store.presets(body.tenant_id)
    merged = {name: {"prompt": p, "negative_prompt": n, "builtin": name not in own}
              for name, (p, n) in (BUILTIN_SCENES | own).items()}
    return {"tenant_id": body.tenant_id, "presets": merged}


def list_deliveries(atelier, body: DeliveryListBody, details: dict) -> dict:
    return {"deliveries": [shown(d) for d in atelier.jobs.store.deliveries(body.tenant_id, body.job_id)]}


def redeliver(atelier, body: DeliveryIdBody, details: dict) -> dict:
    details["delivery_id"] = body.delivery_id
    delivery = atelier.jobs.store.redeliver(body.delivery_id)
    atelier.jobs.dispatcher.wake()
    return {"delivery": shown(delivery)}



ROUTES: list[tuple[str, str, type[BaseModel], Operation, int]] = [
    ("/admin/tenants", "tenant_create", TenantCreateBody, create_tenant, 201),
    ("/admin/tenants/list", "tenant_list", EmptyBody, list_tenants, 200),
    ("/admin/tenants/disable", "tenant_disable", TenantDisableBody, disable_tenant, 200),
    ("/admin/keys", "key_create", KeyCreateBody, create_key, 201),
    ("/admin/keys/list", "key_list", KeyListBody, list_keys, 200),
    ("/admin/keys/revoke", "key_revoke", KeyIdBody, revoke_key, 200),
    ("/admin/twins/revoke", "revoke", TwinRevokeBody, revoke_twin_route, 200),
    ("/admin/consent", "consent_add", ConsentBody, add_consent, 201),
    ("/admin/consent/history", "consent_history", TwinIdBody, consent_history, 200),
    ("/admin/tenants/delivery", "tenant_delivery", TenantDeliveryBody, set_delivery, 200),
    ("/admin/presets", "preset_put", PresetBody, put_preset, 200),
    ("/admin/presets/list", "preset_list", TenantIdBody, list_presets, 200),
    ("/admin/webhooks/deliveries", "webhook_deliveries", DeliveryListBody, list_deliveries, 200),
    ("/admin/webhooks/redeliver", "webhook_redeliver", DeliveryIdBody, redeliver, 200),
]


def admin_routes() -> list[Route]:
    return [admin_route(path, action, model, op, status) for path, action, model, op, status in ROUTES]


def json_routes(prefix: str = "/v1") -> dict[str, type[BaseModel]]:
    """Path -> body model, for the HTTP edge's validation."""
    return {prefix + path: model for path, _action, model, _op, _status in ROUTES}
