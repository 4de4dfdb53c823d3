"""The gateway's one router: every public `/v1` route, as a FastAPI app mounted by the service.

Owns: assembling the route modules (by capability) and the error handlers. `/docs.json` is
built from this app's routes by `service.gateway.openapi` (not by BentoML). Must never hold a
route's logic.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from service import __version__
from service.gateway.errors import install_error_handlers
from service.gateway.routes import admin, assets, audit, detect, generate, jobs, licences, review, twins, usage, verify

ROUTERS = (generate.router, assets.router, jobs.router, review.router, twins.router, verify.router, detect.router,
           usage.router, admin.router, audit.router, licences.router)


def route_templates(prefix: str = "/v1") -> set[str]:
    """Every public route's path: what a refusal may be filed under (else `(unmatched)`)."""
    return {prefix + r.path for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)}


def build_api() -> FastAPI:
    app = FastAPI(title="Atelier", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  description="Digital-twin fashion imagery: one front door for generation, jobs, verify and admin.")
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    return app
