"""Operator routes (`admin` scope): tenants, API keys, consent, twins, delivery, presets, webhooks.

Owns: one route per operation, each audited (done, refused or failed) before it answers,
with GET for reads; twin registration by multipart upload (the file is checked from its
header here; its fit to the base model's layer sizes when a renderer first loads it); and
the routes that act on a renderer's adapter cache (list with `cache=true`, evict, prefetch),
which reach the renderer worker that answers. Must never hold registry logic: it calls
`Registry`, `service.tenancy.manage`, `service.twins` and `service.jobs`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from service.audit.events import admin_event
from service.errors import InvalidRequest, PayloadTooLarge, TwinNotFound
from service.gateway.deps import AdminCaller, ClientIp, Core, audited_action
from service.gateway.errors import answers
from service.schemas import (ConsentAnswer, ConsentHistory, DeliveryAnswer, KeyCreated, KeyList, KeyRevoked,
                            PresetList, TenantAnswer, TenantList, TwinRevokeResponse, WebhookDeliveryAnswer,
                            WebhookDeliveryList)
from service.gateway.uploads import strict_form
from service.jobs.delivery import check_output_target
from service.jobs.presets import BUILTIN_SCENES
from service.jobs.webhooks import check_callback_url, new_secret
from service.registry.errors import KeyNotFound, TenantNotFound
from service.schemas import (
    TENANT_ID_PATTERN,
    TWIN_ID_PATTERN,
    ConsentBody,
    DeliveryIdBody,
    EvictResponse,
    ItemRedeliverAnswer,
    ItemRedeliverBody,
    KeyCreateBody,
    KeyIdBody,
    PrefetchBody,
    PrefetchResponse,
    PresetBody,
    RegisterByKeyBody,
    RegisterResponse,
    TenantCreateBody,
    TenantDeliveryBody,
    TenantDisableBody,
    TwinIdBody,
    TwinListResponse,
    TwinRevokeBody,
)
from service.tenancy.manage import keep_admin_access, record_consent, shown
from service.twins.admin import register_twin, revoke_twin
from service.twins.views import twin_state

router = APIRouter(prefix="/admin", tags=["admin"])
TenantQuery = Query(None, pattern=TENANT_ID_PATTERN)


def _action(core, ip, principal, action: str, **details):
    return audited_action(core, admin_event, action=action, client_ip=ip, actor=principal.audit_fields(), **details)


def _tenant(core, tenant_id: str | None) -> None:
    if tenant_id is not None and core.registry.tenants.get_tenant(tenant_id) is None:
        raise TenantNotFound(f"no tenant {tenant_id!r}", field="tenant_id")


# -- tenants and keys ------------------------------------------------------------------------


@router.post("/tenants", status_code=201, operation_id="createTenant", response_model=TenantAnswer,
             responses=answers("tenant_exists"))
def create_tenant(body: TenantCreateBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    with _action(core, ip, principal, "tenant_create", tenant_id=body.tenant_id):
        core.registry.tenants.create_tenant(body.tenant_id, body.name)
        return {"tenant": shown(core.registry.tenants.get_tenant(body.tenant_id))}


@router.get("/tenants/list", operation_id="listTenants", response_model=TenantList)
def list_tenants(core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    with _action(core, ip, principal, "tenant_list"):
        return {"tenants": [shown(t) for t in core.registry.tenants.list_tenants()]}


@router.post("/tenants/disable", operation_id="disableTenant", response_model=TenantAnswer,
             responses=answers("tenant_not_found", "would_lock_out"))
def disable_tenant(body: TenantDisableBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    with _action(core, ip, principal, "tenant_disable", tenant_id=body.tenant_id, disabled=body.disabled):
        if body.disabled:
            keep_admin_access(core.registry, principal, disable_tenant=body.tenant_id)
        core.registry.tenants.set_tenant_disabled(body.tenant_id, body.disabled)
        return {"tenant": shown(core.registry.tenants.get_tenant(body.tenant_id))}


@router.post("/keys", status_code=201, operation_id="createKey", response_model=KeyCreated,
             responses=answers("tenant_not_found", "twin_not_found", "person_not_found"))
def create_key(body: KeyCreateBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    """Mint an API key; its token is shown once."""
    with _action(core, ip, principal, "key_create", tenant_id=body.tenant_id, scopes=sorted(body.scopes),
                 twin_ids=body.twin_ids, person_id=body.person_id) as details:
        twin_ids = body.twin_ids
        if body.person_id is not None:  # a person's key: their twins (issue 28)
            if twin_ids is not None:
                raise InvalidRequest("give twin_ids or person_id, not both", field="person_id")
            core.registry.persons.get_person(body.person_id)
            twin_ids = core.registry.persons.twins_of(body.person_id) or None
            if twin_ids is None:
                raise InvalidRequest(f"person {body.person_id!r} has no twin yet", field="person_id")
        key_id, token = core.registry.tenants.create_api_key(
            body.tenant_id, body.scopes, name=body.name,
            requests_per_minute=body.requests_per_minute, max_concurrent_jobs=body.max_concurrent_jobs,
            twin_ids=twin_ids)
        details["key_id_created"] = key_id  # never the token
        listing = next(k for k in core.registry.tenants.list_keys(body.tenant_id) if k.key_id == key_id)
        return {"key": shown(listing), "token": token, "note": "the token is shown once; store it now"}


@router.get("/keys/list", operation_id="listKeys", response_model=KeyList, responses=answers("tenant_not_found"))
def list_keys(core: Core, principal: AdminCaller, ip: ClientIp, tenant_id: str | None = TenantQuery) -> dict:
    with _action(core, ip, principal, "key_list", tenant_id=tenant_id):
        _tenant(core, tenant_id)
        return {"keys": [shown(k) for k in core.registry.tenants.list_keys(tenant_id)]}


@router.post("/keys/revoke", operation_id="revokeKey", response_model=KeyRevoked,
             responses=answers("key_not_found", "would_lock_out"))
def revoke_key(body: KeyIdBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    with _action(core, ip, principal, "key_revoke", key_id_revoked=body.key_id):
        keep_admin_access(core.registry, principal, revoke_key=body.key_id)
        newly = core.registry.tenants.revoke_key(body.key_id)
        if not newly and not any(k.key_id == body.key_id for k in core.registry.tenants.list_keys()):
            raise KeyNotFound(f"no API key {body.key_id!r}", field="key_id")
        return {"key_id": body.key_id, "revoked": True, "already_revoked": not newly}


# -- consent ---------------------------------------------------------------------------------


@router.post("/consent", status_code=201, operation_id="addConsent", response_model=ConsentAnswer,
             responses=answers("twin_not_found", "tenant_not_found", "twin_revoked", "consent_conflict"))
def add_consent(body: ConsentBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    """Record a new, signed consent version for a twin."""
    with _action(core, ip, principal, "consent_add", twin_id=body.twin_id) as details:
        record = record_consent(core.registry, body.twin_id, **body.model_dump(exclude={"twin_id"}))
        details.update(consent_id=record.id, version=record.version, tenants=sorted(record.tenants), uses=list(record.uses))
        return {"consent": shown(record)}


@router.get("/consent/history", operation_id="getConsentHistory", response_model=ConsentHistory,
            responses=answers("twin_not_found"))
def consent_history(core: Core, principal: AdminCaller, ip: ClientIp,
                    twin_id: str = Query(..., pattern=TWIN_ID_PATTERN)) -> dict:
    with _action(core, ip, principal, "consent_history", twin_id=twin_id):
        if core.registry.twins.get_twin(twin_id, include_deleted=True) is None:
            raise TwinNotFound(f"no twin {twin_id!r}", field="twin_id")
        return {"twin_id": twin_id, "versions": [shown(r) for r in core.registry.consent.consent_history(twin_id)]}


# -- twins -----------------------------------------------------------------------------------


async def json_registration(request: Request) -> RegisterByKeyBody | None:
    """A registration by store key sent as JSON (`{"twin_id", "adapter_key", "display_name"?}`)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return None
    try:
        return RegisterByKeyBody.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]) from None


JsonRegistration = Annotated[RegisterByKeyBody | None, Depends(json_registration)]
# Registration forms name exactly these parts, each once (service.gateway.uploads).
REGISTER_FORM = strict_form(fields={"twin_id", "display_name", "adapter_key", "same_person_as"}, files={"adapter"})


@router.post("/twins", status_code=201, operation_id="registerTwin", response_model=RegisterResponse,
             responses=answers("twin_revoked", "adapter_in_use", "likeness_in_use", "twin_not_found",
                               "adapter_incompatible", "adapter_unavailable", "length_required"),
             dependencies=[Depends(REGISTER_FORM)], openapi_extra={"requestBody": {"content": {
    "application/json": {"schema": RegisterByKeyBody.model_json_schema()}}}})
def register(core: Core, principal: AdminCaller, ip: ClientIp, as_json: JsonRegistration,
             twin_id: Annotated[str, Form()] = "", display_name: Annotated[str, Form()] = "",
             adapter_key: Annotated[str, Form()] = "", adapter: Annotated[UploadFile | None, File()] = None,
             same_person_as: Annotated[str, Form()] = ""):
    """Add or update a twin: multipart upload of its LoRA (`adapter`, safetensors) or a store
    `adapter_key` (multipart, form or JSON). An adapter whose likeness is another person's
    twin's is refused (409 `likeness_in_use`) unless the form's `same_person_as` names that
    twin: the admin's statement that it is the same person (the twins are then revoked together)."""
    if as_json is not None:
        twin_id, display_name, adapter_key = as_json.twin_id, as_json.display_name, as_json.adapter_key
    with _action(core, ip, principal, "register", twin_id=twin_id, adapter_key=adapter_key or None,
                 same_person_as=same_person_as or None) as details:
        data = None
        if adapter is not None:
            if adapter.size is not None and adapter.size > core.settings.max_upload_bytes:
                raise PayloadTooLarge(f"the adapter is larger than {core.settings.max_upload_bytes} bytes", field="adapter")
            data = adapter.file.read()
        record, previous = register_twin(core.twins, core.adapters, core.settings.lora_slot_rank, core.settings.lora_targets,
                                         twin_id, display_name or None, data, adapter_key or None,
                                         same_person_as=same_person_as or None)
        details.update(sha256=record.sha256, replaced_sha256=previous.sha256 if previous else None)
    return RegisterResponse(twin=twin_state(record, None), created=previous is None,
                            replaced_sha256=previous.sha256 if previous and previous.sha256 != record.sha256 else None)


@router.get("/twins/list", operation_id="listRegisteredTwins", response_model=TwinListResponse,
            responses=answers("renderer_unavailable"))
def list_twins(core: Core, principal: AdminCaller, ip: ClientIp,
               cache: bool = Query(False, description="Also ask a renderer worker which cache tiers hold each "
                                                      "adapter (starts one if none is running).")):
    """Every twin that may be served; with `cache=true`, one renderer worker's cache state."""
    return core.twin_views.registered(principal.audit_fields(), ip, cache=cache)


@router.post("/twins/evict", operation_id="evictTwin", response_model=EvictResponse,
             responses=answers("twin_not_found", "revoked", "renderer_unavailable"))
def evict(body: TwinIdBody, core: Core, principal: AdminCaller, ip: ClientIp):
    """Drop a twin's adapter from every cache tier and the slot of the renderer worker that answers."""
    with _action(core, ip, principal, "evict", twin_id=body.twin_id) as details:
        core.twins.get(body.twin_id)
        evicted = core.renderer.evict(body.twin_id, wait_s=core.settings.render_wait_s)
        details["evicted_from"] = evicted.evicted_from
        return EvictResponse(twin_id=body.twin_id, evicted_from=evicted.evicted_from)


@router.post("/twins/prefetch", operation_id="prefetchTwins", response_model=PrefetchResponse,
             responses=answers("renderer_unavailable"))
def prefetch(body: PrefetchBody, core: Core, principal: AdminCaller, ip: ClientIp):
    """Warm twins' adapters onto the device of the renderer worker that answers."""
    with _action(core, ip, principal, "prefetch", twin_ids=body.twin_ids):
        prefetched = core.renderer.prefetch(body.twin_ids, wait_s=core.settings.render_wait_s)
        return PrefetchResponse(results=prefetched.results)


@router.post("/twins/revoke", operation_id="revokeTwin", response_model=TwinRevokeResponse,
             responses=answers("twin_not_found"))
def revoke(body: TwinRevokeBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    """Revoke a twin (final): no new request starts anywhere once this returns; renderers evict
    its adapter and cancel its in-flight work within ATELIER_REGISTRY_POLL_MS."""
    with _action(core, ip, principal, "revoke", twin_id=body.twin_id, delete=body.delete):
        return {"twin": shown(revoke_twin(core.registry, core.adapters, body.twin_id, delete=body.delete))}


# -- delivery, presets, webhooks -------------------------------------------------------------


@router.post("/tenants/delivery", operation_id="setTenantDelivery", response_model=DeliveryAnswer,
             response_model_exclude_unset=True,
             responses=answers("tenant_not_found", "callback_url_refused"))
def set_delivery(body: TenantDeliveryBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    """A tenant's output target, URL expiry and webhook; a new secret is shown once."""
    with _action(core, ip, principal, "tenant_delivery", tenant_id=body.tenant_id) as details:
        _tenant(core, body.tenant_id)
        changes: dict = {}
        if body.output_target is not None:
            changes["output_target"] = check_output_target(body.output_target)
        if body.url_expiry_s is not None:
            changes["url_expiry_s"] = body.url_expiry_s
        if body.webhook_url is not None:
            changes["webhook_url"] = (check_callback_url(body.webhook_url, allow_private=core.settings.dev_callbacks)
                                      if body.webhook_url else None)
        current = core.jobs.store.delivery.tenant_delivery(body.tenant_id)
        secret = None
        if body.rotate_webhook_secret or (changes.get("webhook_url") and not current.webhook_secret):
            secret = changes["webhook_secret"] = new_secret()
        settings = core.jobs.store.delivery.set_tenant_delivery(body.tenant_id, **changes)
        details.update(changed=sorted(changes), secret_rotated=secret is not None)  # never the secret
        shown_settings = {"tenant_id": body.tenant_id, "output_target": settings.output_target,
                          "url_expiry_s": settings.url_expiry_s, "webhook_url": settings.webhook_url,
                          "has_webhook_secret": settings.webhook_secret is not None}
        return {"delivery": shown_settings, **({"webhook_secret": secret, "note": "the secret is shown once"} if secret else {})}


def _presets(core, tenant_id: str) -> dict:
    own = core.jobs.store.delivery.presets(tenant_id)
    merged = {name: {"prompt": p, "negative_prompt": n, "builtin": name not in own}
              for name, (p, n) in (BUILTIN_SCENES | own).items()}
    return {"tenant_id": tenant_id, "presets": merged}


@router.post("/presets", operation_id="putPreset", response_model=PresetList, responses=answers("tenant_not_found"))
def put_preset(body: PresetBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    with _action(core, ip, principal, "preset_put", tenant_id=body.tenant_id, preset=body.name):
        _tenant(core, body.tenant_id)
        core.jobs.store.delivery.put_preset(body.tenant_id, body.name, body.prompt, body.negative_prompt)
        return _presets(core, body.tenant_id)


@router.get("/presets/list", operation_id="listPresets", response_model=PresetList,
            responses=answers("tenant_not_found"))
def list_presets(core: Core, principal: AdminCaller, ip: ClientIp,
                 tenant_id: str = Query(..., pattern=TENANT_ID_PATTERN)) -> dict:
    with _action(core, ip, principal, "preset_list", tenant_id=tenant_id):
        _tenant(core, tenant_id)
        return _presets(core, tenant_id)


@router.get("/webhooks/deliveries", operation_id="listWebhookDeliveries", response_model=WebhookDeliveryList)
def list_deliveries(core: Core, principal: AdminCaller, ip: ClientIp, tenant_id: str | None = TenantQuery,
                    job_id: str | None = Query(None, pattern=r"^[0-9a-f]{32}$")) -> dict:
    with _action(core, ip, principal, "webhook_deliveries"):
        return {"deliveries": [shown(d) for d in core.jobs.store.delivery.log(tenant_id, job_id)]}


@router.post("/webhooks/redeliver", operation_id="redeliverWebhook", response_model=WebhookDeliveryAnswer,
             responses=answers("delivery_not_found"))
def redeliver(body: DeliveryIdBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    with _action(core, ip, principal, "webhook_redeliver", delivery_id=body.delivery_id):
        delivery = core.jobs.store.delivery.redeliver(body.delivery_id)
        core.jobs.dispatcher.wake()
        return {"delivery": shown(delivery)}


@router.post("/jobs/redeliver", operation_id="redeliverJobItem", response_model=ItemRedeliverAnswer,
             responses=answers("job_not_found", "item_not_found", "not_redeliverable"))
def redeliver_item(body: ItemRedeliverBody, core: Core, principal: AdminCaller, ip: ClientIp) -> dict:
    """Try a catalogue item's S3 delivery again now, with a fresh deadline: one waiting to
    deliver, or one failed with delivery_failed whose images are kept."""
    with _action(core, ip, principal, "job_item_redeliver", job_id=body.job_id, index=body.index):
        return core.jobs.redeliver(body.job_id, body.index)
