"""The Gateway service (CPU, min 1 replica): every public route, and the renderer behind it.

Owns: the BentoML declaration of the gateway, its dependency on the Renderer
(`bentoml.depends`: `bentoml serve` starts the renderer in its own process; on a platform it
is another deployment's URL), mounting the `/v1` router, the HTTP edge (body-size limits and
upload authentication before a body is read), the front door (`/docs.json` is the contract of
`service.gateway.openapi`, `/docs` its page; unmatched paths answer the error shape), and
start-up and shutdown. Must never hold
logic, and never import torch or diffusers: it starts in seconds, and cheap reads never wait
behind GPU work.
"""

from __future__ import annotations

import os

import bentoml

from service import __version__
from service.admission_seal import InternalCredential
from service.config import get_settings
from service.errors import NotReady
from service.gateway.api import build_api
from service.gateway.core import GatewayCore
from service.gateway.docs_page import FrontDoor
from service.gateway.openapi import Contract
from service.gateway.api import route_templates
from service.gateway.render_client import HttpRenderClient, LocalRenderClient
from service.gateway.http_edge import HttpEdge
from service.logs import configure_logging
from service.tenancy import Limits
from service.tenancy.preauth import trusted_networks
from service.renderer.service import Renderer
from service.studio import build_studio, studio_routes

# The server must not rewrite the client address from X-Forwarded-For itself (uvicorn trusts
# loopback peers by default): the edge does, and only from ATELIER_TRUSTED_PROXIES.
os.environ["FORWARDED_ALLOW_IPS"] = ""
API = build_api()
STUDIO = build_studio()  # the web console, on the same capabilities as API
# /docs.json is this contract (OpenAPI 3.1, from API's routes), not BentoML's generated document.
CONTRACT = Contract(API)


class UploadGuard:
    """Admits uploads at the edge (`Tenancy.admit`: key and scope), before their bodies are
    streamed in. No limit is spent here (the route's own admission spends it), and a refusal
    is recorded by the edge, which records every refusal it makes (size, length, key) alike.
    The public check takes no key (None): its route spends the source's budget and holds a
    slot before it reads the body."""

    core: GatewayCore | None = None
    scopes = {"/v1/admin/twins": "admin", "/v1/verify": "verify", "/v1/assets": "generate", "/v1/detect": None,
              "/studio/detect": None}

    def __call__(self, path: str, authorization: str | None):
        if self.core is None:
            raise NotReady("the service is starting")
        if self.scopes[path] is None:
            return None
        with self.core.tenancy.admit(authorization, self.scopes[path], limits=Limits.NONE) as principal:
            return principal


UPLOAD_GUARD = UploadGuard()


class EdgeAudit:
    """Records requests the HTTP edge refuses before any route runs."""

    core: GatewayCore | None = None

    def __call__(self, path: str, error, ip: str | None) -> None:
        if self.core is not None:  # before any route ran: no key was accepted yet
            self.core.trust.refused_unauthenticated(path, error, ip)


EDGE_AUDIT = EdgeAudit()


class SourceCheck:
    """Per-source limits, before any key is checked (cheap: no database, no audit write); a
    valid key passes a source whose budget is spent (checked in memory)."""

    core: GatewayCore | None = None

    def __call__(self, path: str, ip: str | None, authorization: str | None = None) -> None:
        if self.core is not None:
            self.core.trust.admit(ip, authorization)


SOURCE_CHECK = SourceCheck()


@bentoml.service(
    name="atelier-gateway",
    workers=1,
    # The gateway is ready without a renderer: probing it would start a GPU from zero on every
    # readiness check, and mark the gateway unready while one starts. Generations wait for a
    # renderer instead (ATELIER_RENDER_WAIT_S), and job items stay queued until one is up.
    runner_probe={"enabled": False},
    traffic={
        # A synchronous generation waits for its render call (up to the renderer's 600 s).
        "timeout": 660,
        # Cheap reads, verify and waiting generations share the gateway; GPU work is the
        # renderer's, so this cap only guards the process itself.
        "max_concurrency": 256,
    },
    labels={"owner": "atelier", "version": __version__, "role": "gateway"},
)
@bentoml.asgi_app(API, path="/v1")
@bentoml.asgi_app(STUDIO, path="/studio")
class Gateway:
    """The public API: keys, consent, jobs, verify, usage, admin. Renders on the Renderer."""

    renderer = bentoml.depends(Renderer)

    def __init__(self) -> None:
        settings = get_settings()
        configure_logging(settings.log_level)
        renderer = self.renderer
        url = type(self).renderer.url  # set when the renderer is another process
        # Over HTTP every call carries the internal credential (ATELIER_INTERNAL_TOKEN[_FILE]).
        client = (HttpRenderClient(url, credential=InternalCredential.from_settings(settings)) if url
                  else LocalRenderClient(renderer))
        self.core = GatewayCore.build(settings, client)
        API.state.core = STUDIO.state.core = UPLOAD_GUARD.core = EDGE_AUDIT.core = SOURCE_CHECK.core = self.core
        self.core.trust.refusals.known_routes = route_templates() | studio_routes()

    def __is_ready__(self) -> bool:
        return self.core is not None and self.core.audit.available()  # not while the audit log cannot write

    @bentoml.on_shutdown
    def close(self) -> None:
        """Stop dispatching (unfinished items go back to the queue), then seal the audit log."""
        self.core.close()


Gateway.add_asgi_middleware(
    HttpEdge,
    max_body_bytes=lambda: get_settings().max_body_bytes,
    body_limits={"/v1/jobs/submit": lambda: get_settings().max_job_body_bytes,
                 "/studio/verify": lambda: get_settings().max_verify_bytes + 64 * 1024,
                 # Studio's garment upload and an edit's mask: an asset's limit and a form's margin
                 "/studio/garments": lambda: get_settings().max_asset_bytes + 64 * 1024,
                 "/studio/edit": lambda: get_settings().max_asset_bytes + 64 * 1024,
                 # the job builder's CSV import: a catalogue job's limit, as the API's
                 "/studio/jobs/new": lambda: get_settings().max_job_body_bytes},
    on_refused=EDGE_AUDIT,
    before_upload=UPLOAD_GUARD,
    before_request=SOURCE_CHECK,
    trusted_proxies=lambda: trusted_networks(get_settings().trusted_proxies),
    streamed_limits={
        "/v1/admin/twins": lambda: get_settings().max_upload_bytes + 64 * 1024,
        "/v1/verify": lambda: get_settings().max_verify_bytes + 64 * 1024,
        "/v1/detect": lambda: get_settings().max_verify_bytes + 64 * 1024,
        "/studio/detect": lambda: get_settings().max_verify_bytes + 64 * 1024,
        "/v1/assets": lambda: get_settings().max_asset_bytes + 64 * 1024,
    },
)
# Inside the edge: /docs.json, /docs and / are the gateway's own, and whatever no route matched
# answers in the API's error shape.
Gateway.add_asgi_middleware(FrontDoor, contract=CONTRACT.json_bytes)
