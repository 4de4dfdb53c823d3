"""The BentoML service: routes only. Translates HTTP to engine calls and results back to HTTP.

Owns: the route table, loading the engine once at start-up, readiness, and turning typed
errors into responses (through `service.http_edge`). Must never hold generation logic.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import logging
from pathlib import Path

import anyio
import bentoml
from PIL.Image import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import __version__
from service.config import get_settings
from service.engine import Engine, GenerationResult
from service.generation import GuardedGeneration
from service.jobs.catalog import CatalogJobs
from service.jobs_api import job_routes
from service.errors import AtelierError, InvalidRequest, MalformedRequest, NotReady, PayloadTooLarge
from service.http_edge import HttpEdge, error_response, internal_error_response
from service.admin_api import admin_routes, audited_failure
from service.admin_api import json_routes as admin_json_routes
from service.audit.events import admin_event, edge_refusal_event, generation_event, replay_event, verify_event
from service.audit.record import AuditError as AuditUnavailable
from service.audit.recorder import Recorder
from service.audit.usage import aggregate, to_csv
from service.logs import configure_logging
from service.provenance.marking import ProvenanceMarker
from service.provenance.verify import verify_image
from service.schemas import (
    MEDIA_TYPES,
    EmptyBody,
    EvictResponse,
    GenerateRequest,
    GenerateResponse,
    JobSubmitBody,
    ImageOut,
    PrefetchBody,
    PrefetchResponse,
    RegisterResponse,
    Timings,
    TwinIdBody,
    TwinListResponse,
    TwinState,
)
from service.registry import TwinInfo, check_idempotency_key, open_registry, request_hash
from service.tenancy import Principal, Tenancy
from service.twins.metrics import PrometheusCacheEvents
from service.twins.records import check_twin_id

log = logging.getLogger("atelier.app")


def maps_errors(route):
    """Return typed errors as our JSON error body; log and hide anything unexpected."""

    @functools.wraps(route)
    def wrapper(self, *args, **kwargs):
        try:
            return route(self, *args, **kwargs)
        except AtelierError as exc:
            log.info("request refused", extra={"fields": {"route": route.__name__, "code": exc.code, "status": exc.status}})
            response = error_response(exc)
        except Exception:
            log.exception("request failed", extra={"fields": {"route": route.__name__}})
            response = internal_error_response()
        ctx = kwargs.get("ctx")
        if ctx is not None:  # BentoML copies ctx.response.status_code onto the response
            ctx.response.status_code = response.status_code
        return response

    return wrapper


def client_ip(ctx: bentoml.Context) -> str | None:
    client = ctx.request.client
    return client.host if client else None


class EdgeAudit:
    """Records requests the HTTP edge refuses before any route runs (set up by the service)."""

    recorder: Recorder | None = None

    def __call__(self, path: str, error: AtelierError, ip: str | None) -> None:
        if self.recorder is not None:
            self.recorder.record(edge_refusal_event(route=path, error=error, client_ip=ip))


EDGE_AUDIT = EdgeAudit()


class UploadGuard:
    """Authenticates uploads at the edge, before their bodies are streamed in."""

    tenancy: Tenancy | None = None
    scopes = {"/v1/admin/twins": "admin", "/v1/verify": "verify"}

    def __call__(self, path: str, authorization: str | None) -> None:
        if self.tenancy is None:
            raise NotReady("the service is starting")
        self.tenancy.authenticate(authorization, self.scopes[path])


UPLOAD_GUARD = UploadGuard()


def to_response(result: GenerationResult) -> GenerateResponse:
    return GenerateResponse(
        generation_id=result.generation_id,
        twin_id=result.twin_id,
        seed=result.seed,
        images=[
            ImageOut(
                index=img.index,
                format=img.format,
                width=img.width,
                height=img.height,
                seed=img.seed,
                sha256=img.sha256,
                watermark_id=img.watermark_id,
                data_base64=base64.b64encode(img.data).decode("ascii"),
            )
            for img in result.images
        ],
        timings_ms=Timings(**result.timings_ms),
    )


@bentoml.service(
    name="atelier",
    # One GPU per replica; one worker owns it (the pipeline, the adapter slot and the caches
    # are per process). Threads let requests queue in-process while the GPU renders one.
    resources={"gpu": 1, "gpu_type": "nvidia-h100-80gb"},
    workers=1,
    threads=8,
    traffic={
        # The slowest allowed request: 4 images of 2048x2048 at 100 steps. On an H100 that is
        # about 100 s; on an L4-class GPU about 6x that: 600 s covers both.
        "timeout": 600,
        # Beyond 8 requests in a replica, waiting in its queue is worse than a 429/503 that
        # the platform retries on another replica.
        "max_concurrency": 8,
        # BentoCloud scales on in-flight requests per replica: at 2 one is rendering and one
        # waits, so a third request means a new replica is worth starting.
        "concurrency": 2,
        # BentoCloud holds requests in its own queue while replicas start (scale from zero).
        "external_queue": True,
    },
    labels={"owner": "atelier", "version": __version__},
)
class Atelier:
    """Digital-twin image generation. Models load once here; every route is one engine call."""

    def __init__(self) -> None:
        settings = get_settings()
        configure_logging(settings.log_level)
        self.settings = settings
        self.registry = open_registry(settings.db_url, migrate=settings.db_migrate)
        self.audit = Recorder.from_settings(settings)
        EDGE_AUDIT.recorder = self.audit
        marker = ProvenanceMarker.from_settings(settings)  # every image is watermarked and signed
        self.engine = Engine.from_settings(settings, self.registry, events=PrometheusCacheEvents(), marker=marker)
        self.tenancy = Tenancy.build(self.registry, self._drop_revoked, settings.registry_poll_ms / 1000)
        self.tenancy.watcher.start()
        self.generation = GuardedGeneration(self.engine, self.tenancy, self.audit)
        self.jobs = CatalogJobs.build(settings, self.registry, self.generation)
        if settings.jobs_worker:
            self.jobs.start()
        UPLOAD_GUARD.tenancy = self.tenancy
        V1_EXTRA.state.atelier = self
        log.info("ready", extra={"fields": {"base_model": str(settings.base_model), "device": str(self.engine.device),
                                            "backend": self.engine.backend.name, "startup_ms": self.engine.startup_ms}})

    def __is_ready__(self) -> bool:
        return self.engine.ready

    @bentoml.api(route="/v1/generate")
    @maps_errors
    def generate(self, body: GenerateRequest, /, ctx: bentoml.Context) -> GenerateResponse:
        """Generate images of a twin; returns JSON with base64 images, seeds and timings.
        With an `Idempotency-Key`, a retry with the same body within 24 h replays the first
        successful response instead of generating again."""
        raw_key = ctx.request.headers.get("idempotency-key")
        if raw_key is None:
            return to_response(self._run(body, ctx, "/v1/generate"))
        return self._generate_idempotent(body, ctx, raw_key)

    def _generate_idempotent(self, body: GenerateRequest, ctx: bentoml.Context, raw_key: str):
        """Replay the stored response for (tenant, key, body) if the twin may still be used
        (a revocation or expiry since stops the replay too); else generate and store it.
        Only successes are stored: a refused or failed request may be retried. Every refusal
        here is audited like any other generation refusal."""
        digest = request_hash(body.model_dump(mode="json"))
        who: dict = {}
        try:
            key = check_idempotency_key(raw_key)
            principal = self.tenancy.authenticate(ctx.request.headers.get("authorization"), "generate")
            who = principal.audit_fields()
            stored = self.registry.idempotency_get(principal.tenant_id, key, digest)  # 409 for another body
            if stored is not None and body.twin_id is not None:
                self.tenancy.gate.decide(principal, body)
        except AtelierError as exc:
            self.audit.record(generation_event(route="/v1/generate", request=body, error=exc, client_ip=client_ip(ctx),
                                               base_model_id=self.engine.base_model_id, prompts=self.audit.prompts, **who))
            raise
        if stored is None:
            response = to_response(self._run(body, ctx, "/v1/generate", principal))
            stored = self.registry.idempotency_put(principal.tenant_id, key, digest, response.model_dump(mode="json"), 200)
            if stored.response["generation_id"] == response.generation_id:
                return response
        # a retry, or a concurrent twin of this request that stored its response first
        self.audit.record(replay_event(route="/v1/generate", client_ip=client_ip(ctx),
                                       generation_id=stored.response.get("generation_id"), **who))
        return JSONResponse(stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})

    @bentoml.api(route="/v1/generate/image")
    @maps_errors
    def generate_image(self, body: GenerateRequest, /, ctx: bentoml.Context) -> Image:
        """Generate and return the first image's bytes, with its Content-Type."""
        if ctx.request.headers.get("idempotency-key") is not None:
            raise InvalidRequest("Idempotency-Key is supported on /v1/generate and /v1/jobs/submit, not on "
                                 "/v1/generate/image", field="Idempotency-Key")
        result = self._run(body, ctx, "/v1/generate/image")
        first = result.images[0]
        return Response(
            content=first.data,
            media_type=MEDIA_TYPES[first.format],
            headers={
                "X-Generation-Id": result.generation_id,
                "X-Seed": str(first.seed),
                "X-Image-Sha256": first.sha256,
                "Content-Disposition": f'inline; filename="{result.generation_id}.{first.format}"',
            },
        )

    # -- admin: twins and their adapters ---------------------------------------------------

    @bentoml.api(route="/v1/admin/twins")
    @maps_errors
    def register_twin(
        self,
        ctx: bentoml.Context,
        twin_id: str = "",
        display_name: str = "",
        adapter_key: str = "",
        adapter: Path = None,  # type: ignore[assignment]  # BentoML needs a plain Path for files
    ) -> RegisterResponse:
        """Add or update a twin: multipart upload of its LoRA (`adapter`) or a store `adapter_key`."""
        with self._audited(ctx, "register", twin_id=twin_id, adapter_key=adapter_key or None) as details:
            data = None
            if adapter is not None:
                if adapter.stat().st_size > self.settings.max_upload_bytes:
                    raise PayloadTooLarge(f"the adapter is larger than {self.settings.max_upload_bytes} bytes")
                data = adapter.read_bytes()
            record, previous = self.engine.register(twin_id, display_name or None, data, adapter_key or None)
            details.update(sha256=record.sha256, replaced_sha256=previous.sha256 if previous else None)
        log.info("twin registered", extra={"fields": {"twin_id": record.id, "sha256": record.sha256}})
        return RegisterResponse(
            twin=TwinState(**self.engine.twin_state(record)),
            created=previous is None,
            replaced_sha256=previous.sha256 if previous and previous.sha256 != record.sha256 else None,
        )

    @bentoml.api(route="/v1/admin/twins/list")
    @maps_errors
    def list_twins(self, body: EmptyBody, /, ctx: bentoml.Context) -> TwinListResponse:
        """Every twin with the cache tiers holding its adapter, and the cache's totals."""
        with self._audited(ctx, "list"):
            return TwinListResponse(twins=self.engine.twin_states(), cache=self.engine.twins.cache.stats())

    @bentoml.api(route="/v1/admin/twins/evict")
    @maps_errors
    def evict_twin(self, body: TwinIdBody, /, ctx: bentoml.Context) -> EvictResponse:
        """Drop a twin's adapter from every cache tier and from the pipeline's slot."""
        with self._audited(ctx, "evict", twin_id=body.twin_id) as details:
            details["evicted_from"] = self.engine.evict(body.twin_id)
            return EvictResponse(twin_id=body.twin_id, evicted_from=details["evicted_from"])

    @bentoml.api(route="/v1/admin/twins/prefetch")
    @maps_errors
    def prefetch_twins(self, body: PrefetchBody, /, ctx: bentoml.Context) -> PrefetchResponse:
        """Warm twins' adapters onto the device; twin id -> serving tier or error code."""
        with self._audited(ctx, "prefetch", twin_ids=body.twin_ids):
            return PrefetchResponse(results=self.engine.prefetch(body.twin_ids))

    @contextlib.contextmanager
    def _audited(self, ctx: bentoml.Context, action: str, **details):
        """Authenticate an admin key, then record the action (refused, failed or done) before
        the response goes out."""
        try:
            details["actor"] = self._admin(ctx).audit_fields()
            yield details
        except Exception as exc:
            self.audit.record(admin_event(action=action, client_ip=client_ip(ctx), error=exc, **details))
            raise
        self.audit.record(admin_event(action=action, client_ip=client_ip(ctx), **details))

    @bentoml.on_shutdown
    def close(self) -> None:
        """Stop taking jobs (the current item finishes) and polling the registry; final audit
        checkpoint and seal (every record is already on disk)."""
        self.jobs.stop()
        self.tenancy.watcher.stop()
        self.audit.close()

    def _admin(self, ctx: bentoml.Context) -> Principal:
        return self.tenancy.authenticate(ctx.request.headers.get("authorization"), "admin")

    def _drop_revoked(self, twin: TwinInfo) -> None:
        """A twin was revoked (here or on another replica): its adapter leaves every tier."""
        evicted = self.engine.drop_adapter(twin.adapter_sha256)
        self.audit.record(admin_event(action="revocation_applied", client_ip=None, twin_id=twin.id,
                                      deleted=twin.deleted, evicted_from=evicted))

    def _run(self, body: GenerateRequest, ctx: bentoml.Context, route: str,
             principal: Principal | None = None) -> GenerationResult:
        """One generation, audited whatever its outcome; the record is durable before we answer.
        `principal`: the caller when the route has authenticated it already."""

        @contextlib.contextmanager
        def admit():
            caller = principal or self.tenancy.authenticate(ctx.request.headers.get("authorization"), "generate")
            with self.tenancy.limits(caller):
                yield caller

        result = self.generation.run(body, admit=admit, route=route, client_ip=client_ip(ctx))
        log.info(
            "generation",
            extra={
                "fields": {
                    "generation_id": result.generation_id,
                    "twin_id": result.twin_id,
                    "size": f"{body.width}x{body.height}",
                    "steps": body.steps,
                    "num_images": body.num_images,
                    "timings_ms": result.timings_ms,
                }
            },
        )
        return result


async def verify_endpoint(request: Request) -> Response:
    """POST /v1/verify: the image as the raw body, or as multipart field `image`."""
    settings = get_settings()
    data = b""
    ip = request.client.host if request.client else None
    who: dict = {}
    try:
        tenancy: Tenancy = request.app.state.atelier.tenancy
        principal = await anyio.to_thread.run_sync(tenancy.authenticate, request.headers.get("authorization"), "verify")
        who = principal.audit_fields()
        with tenancy.limits(principal):
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "multipart/form-data":
                form = await request.form(max_files=1, max_fields=4, max_part_size=settings.max_verify_bytes)
                upload = form.get("image")
                if upload is None or isinstance(upload, str):
                    raise MalformedRequest("send the image as the multipart file field 'image'", field="image")
                data = await upload.read()
            else:
                data = await request.body()
            report = await anyio.to_thread.run_sync(verify_image, data, settings.max_verify_pixels, settings.c2pa_trust_anchors)
        body = report.as_dict()
        recorder = EDGE_AUDIT.recorder
        if recorder is not None:
            body["audit"] = await anyio.to_thread.run_sync(recorder.generation_summary, report.generation_id)
            await anyio.to_thread.run_sync(recorder.record, verify_event(upload=data, report=report, client_ip=ip, **who))
    except Exception as exc:
        return await audited_failure(EDGE_AUDIT.recorder, exc, verify_event(upload=data, error=exc, client_ip=ip, **who))
    return JSONResponse(body)


async def usage_endpoint(request: Request) -> Response:
    """GET /v1/usage?twin=&from=YYYY-MM-DD&to=YYYY-MM-DD&format=json|csv (admin): images per
    day, tenant and twin, aggregated from the audit log (for the twins' compensation)."""
    ip = request.client.host if request.client else None
    params = dict(request.query_params)
    actor: dict = {}
    try:
        tenancy: Tenancy = request.app.state.atelier.tenancy
        principal = await anyio.to_thread.run_sync(tenancy.authenticate, request.headers.get("authorization"), "admin")
        actor = principal.audit_fields()
        query = usage_query(params)
        recorder = EDGE_AUDIT.recorder
        if recorder is None:
            raise AuditUnavailable("the audit log is not open")
        rows = await anyio.to_thread.run_sync(lambda: aggregate(recorder.log.iter_records(), query["twin"], query["from"], query["to"]))
        await anyio.to_thread.run_sync(recorder.record, admin_event(action="usage", client_ip=ip, query=params, actor=actor))
    except Exception as exc:
        return await audited_failure(EDGE_AUDIT.recorder, exc, admin_event(action="usage", client_ip=ip, error=exc, query=params, actor=actor))
    if query["format"] == "csv":
        return Response(to_csv(rows), media_type="text/csv")
    return JSONResponse({"rows": rows})


def usage_query(params: dict[str, str]) -> dict:
    unknown = set(params) - {"twin", "from", "to", "format"}
    if unknown:
        raise InvalidRequest(f"unknown query parameter {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    query: dict = {"twin": check_twin_id(params["twin"]) if params.get("twin") else None, "format": params.get("format", "json")}
    if query["format"] not in ("json", "csv"):
        raise InvalidRequest("format must be json or csv", field="format")
    for key in ("from", "to"):
        try:
            query[key] = dt.date.fromisoformat(params[key]) if params.get(key) else None
        except ValueError:
            raise InvalidRequest(f"{key} must be a date as YYYY-MM-DD", field=key) from None
    return query


# Mounted after BentoML's own routes, so only /v1 paths that no API claims reach it.
V1_EXTRA = Starlette(
    routes=[Route("/verify", verify_endpoint, methods=["POST"]), Route("/usage", usage_endpoint, methods=["GET"]),
            *admin_routes(), *job_routes()]
)
Atelier.mount_asgi_app(V1_EXTRA, path="/v1", name="v1-extra")

Atelier.add_asgi_middleware(
    HttpEdge,
    json_routes={
        "/v1/generate": GenerateRequest,
        "/v1/generate/image": GenerateRequest,
        "/v1/admin/twins/list": EmptyBody,
        "/v1/admin/twins/evict": TwinIdBody,
        "/v1/admin/twins/prefetch": PrefetchBody,
        **admin_json_routes(),
        "/v1/jobs/submit": JobSubmitBody,
    },
    max_body_bytes=lambda: get_settings().max_body_bytes,
    body_limits={"/v1/jobs/submit": lambda: get_settings().max_job_body_bytes},
    on_refused=EDGE_AUDIT,
    before_upload=UPLOAD_GUARD,
    streamed_limits={
        "/v1/admin/twins": lambda: get_settings().max_upload_bytes + 64 * 1024,
        "/v1/verify": lambda: get_settings().max_verify_bytes + 64 * 1024,
    },
)
