"""Dependencies of the gateway's routes: the core, the caller per scope, the client's address.

Owns: `Core`, `GenerateCaller`, `VerifyCaller`, `AdminCaller`, `TalentCaller`, `LicensingCaller` (one admission
dependency per scope: `Tenancy.admit` with the request's Authorization header, its route and
client address, holding the key's limits for the route's duration), `ClientIp`, and
`audited_action`, the one wrapper that records an action's outcome (done, refused or failed)
before the response goes out. Must never hold a route's logic, nor check a key itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request

from service.audit import actions
from service.errors import NotReady
from service.gateway.core import GatewayCore
from service.tenancy import Limits, Principal


# The two lookups below are `async def` on purpose: FastAPI runs a plain `def` dependency in its
# thread pool, a hop each (a thread hand-off both ways) on every request for a dict lookup.
async def get_core(request: Request) -> GatewayCore:
    core = getattr(request.app.state, "core", None)
    if core is None:
        raise NotReady("the service is starting")
    return core


Core = Annotated[GatewayCore, Depends(get_core)]


def client_ip_of(request: Request) -> str | None:
    return request.client.host if request.client else None


async def get_client_ip(request: Request) -> str | None:
    return client_ip_of(request)


ClientIp = Annotated[str | None, Depends(get_client_ip)]


def route_template(request: Request) -> str:
    """The matched route's path (`/v1/jobs/status`), never the client's own path text."""
    route = request.scope.get("route")
    return request.scope.get("root_path", "") + getattr(route, "path", "(unmatched)")


def _caller(scope: str) -> Callable[..., Iterator[Principal]]:
    def caller(request: Request, core: Core) -> Iterator[Principal]:
        with core.tenancy.admit(request.headers.get("authorization"), scope, route=route_template(request),
                                client_ip=client_ip_of(request), limits=Limits.REQUEST) as principal:
            request.state.principal = principal  # the route's own refusals name the key
            yield principal

    caller.__name__ = f"{scope}_caller"
    return caller


# scope="function": the caller's concurrency slot is given back when the route returns, before
# its answer is sent. A client that waits for each answer must never find its finished request
# still counted against `max_concurrent_jobs` (FastAPI's default ends a yield dependency after
# the response is sent, racing the client's next request).
GenerateCaller = Annotated[Principal, Depends(_caller("generate"), scope="function")]
VerifyCaller = Annotated[Principal, Depends(_caller("verify"), scope="function")]
AdminCaller = Annotated[Principal, Depends(_caller("admin"), scope="function")]
TalentCaller = Annotated[Principal, Depends(_caller("talent"), scope="function")]
LicensingCaller = Annotated[Principal, Depends(_caller("licensing"), scope="function")]


def audited_action(core: GatewayCore, event: Callable[..., dict], **details):
    """Record `event(**details)` when the block ends, with its error if it raised
    (`service.audit.actions`, into the gateway's audit log)."""
    return actions.audited_action(core.audit.record, event, **details)
