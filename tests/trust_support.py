"""A whole gateway in this process, on a private copy of the demo home, for the trust tests.

`build_world` copies the demo home, loads the real pipeline with the real provenance marker
(every image watermarked and signed), wraps it in a renderer runtime reached in-process, builds
the gateway's core and its `/v1` router mounted as BentoML mounts it, behind the same HTTP edge
(source checks, compact refusals, size limits, upload authentication, trusted proxies). It
adds a second brand (`rival`, generate+verify) and an operators' tenant (`ops`, admin) with keys.
Nothing is mocked; only the BentoML process model is left out (the served tests cover it).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from builds.demo import ENV_FILE, read_demo_env
from tests.conftest import snapshot_registry


@dataclass
class World:
    home: Path
    settings: object
    core: object
    runtime: object
    app: object
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, key: str | None = "demo", source: str = "203.0.113.10") -> TestClient:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return TestClient(self.app, headers=headers, client=(source, 40000), raise_server_exceptions=False)

    def close(self) -> None:
        self.runtime.watcher.stop()
        self.core.close()


def build_world(demo_home: Path, tmp: Path, env: dict[str, str] | None = None, before_open=None) -> World:
    """`before_open(home)` runs on the copied home before anything opens it (e.g. to put the
    demo's rows into another database)."""
    from service.config import Settings
    from service.engine import Engine
    from service.gateway.api import build_api
    from service.gateway.core import GatewayCore
    from service.gateway.api import route_templates
    from service.gateway.render_client import LocalRenderClient
    from service.gateway.http_edge import HttpEdge
    from service.provenance.marking import ProvenanceMarker
    from service.registry import open_registry
    from service.renderer.runtime import RendererRuntime
    from service.tenancy import Limits
    from service.tenancy.preauth import trusted_networks
    from service.tenancy.revocation import RevocationWatcher

    home = tmp / "home"
    shutil.copytree(demo_home, home, ignore=shutil.ignore_patterns("cache", "registry.db*", "audit", "bentoml"))
    snapshot_registry(demo_home, home / "registry.db")
    if before_open is not None:
        before_open(home)
    settings = Settings.from_env({"ATELIER_HOME": str(home), "ATELIER_WARMUP": "0", "ATELIER_JOBS_WORKER": "0",
                                  "ATELIER_REGISTRY_POLL_MS": "100", **(env or {})})
    registry = open_registry(settings.db_url)
    engine = Engine.from_settings(settings, registry, marker=ProvenanceMarker.from_settings(settings))
    runtime = RendererRuntime(settings, registry, engine, None)  # type: ignore[arg-type]
    runtime.watcher = RevocationWatcher(registry, runtime._drop_revoked, 0.1)
    runtime.watcher.start()
    core = GatewayCore.build(settings, LocalRenderClient(runtime))
    api = build_api()
    api.state.core = core

    def before_upload(path: str, authorization: str | None):
        scope = {"/v1/admin/twins": "admin", "/v1/verify": "verify"}.get(path, "generate")
        with core.tenancy.admit(authorization, scope, limits=Limits.NONE) as principal:  # as the Gateway's UploadGuard
            return principal

    app = HttpEdge(
        Starlette(routes=[Mount("/v1", app=api)]),
        max_body_bytes=settings.max_body_bytes,
        body_limits={"/v1/jobs/submit": settings.max_job_body_bytes},
        on_refused=core.trust.refused_unauthenticated,
        before_upload=before_upload,
        before_request=lambda path, ip, authorization: core.trust.admit(ip, authorization),
        trusted_proxies=trusted_networks(settings.trusted_proxies),
        streamed_limits={"/v1/admin/twins": settings.max_upload_bytes + 65536,
                         "/v1/verify": settings.max_verify_bytes + 65536},
    )
    core.trust.refusals.known_routes = route_templates()
    keys = read_demo_env(home / ENV_FILE)
    world = World(home, settings, core, runtime, app, {"demo": keys["ATELIER_DEMO_KEY"], "admin": keys["ATELIER_ADMIN_KEY"]})
    registry = core.registry
    for tenant, name in (("rival", "Rival brand"), ("ops", "Operators")):
        if registry.get_tenant(tenant) is None:  # the demo registry may have it from an earlier test
            registry.create_tenant(tenant, name)
    world.keys["rival"] = registry.create_api_key("rival", ["generate", "verify"], requests_per_minute=10_000)[1]
    world.keys["ops"] = registry.create_api_key("ops", ["admin", "generate", "verify"], requests_per_minute=10_000)[1]
    return world


def audit_records(world: World, **match) -> list[dict]:
    from tests.audit_reading import every_record

    return [r for r in every_record(world.settings.db_url) if all(r.get(k) == v for k, v in match.items())]


def audit_bytes(world: World) -> int:
    """The size of every committed record (their canonical JSON lines)."""
    from tests.audit_reading import audit_store

    return audit_store(world.settings.db_url).total_bytes()


def freeze_minute(world: World, monkeypatch) -> None:
    """One minute for the source guard and the refusal ledger, whatever the wall clock does.

    The ledger starts empty: an earlier test's minute (frozen to another wall minute) would
    otherwise be rolled over, and its summary written, by this test's first refusal (a CI run
    that crossed a minute between two tests measured that summary as this test's growth).
    """
    import time

    world.core.trust.refusals.flush(everything=True)
    now, wall = time.monotonic(), time.time()
    monkeypatch.setattr(world.core.trust.sources, "_clock", lambda: now - now % 60 + 30)
    monkeypatch.setattr(world.core.trust.refusals, "_clock", lambda: wall - wall % 60 + 30)
