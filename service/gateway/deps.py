"""Dependencies of the gateway's routes: the core, the caller per scope, the client's address.

Owns: `Core`, `GenerateCaller`, `VerifyCaller`, `AdminCaller`, `TalentCaller` (one authentication dependency
per scope: key -> scope -> rate limit, held for the route's duration), `ClientIp`, and
`audited_action`, the one wrapper that records an action's outcome (done, refused or failed)
before the response goes out. Must never hold a route's logic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request

from service.errors import NotReady
from service.gateway.core import GatewayCore
from service.generation import audited
from service.tenancy import Principal


def get_core(request: Request) -> GatewayCore:
    core = getattr(request.app.state, "core", None)
    if core is None:
        raise NotReady("the service is starting")
    return core


Core = Annotated[GatewayCore, Depends(get_core)]


def get_client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientIp = Annotated[str | None, Depends(get_client_ip)]


def _caller(scope: str) -> Callable[..., Iterator[Principal]]:
    def caller(request: Request, core: Core) -> Iterator[Principal]:
        principal = core.tenancy.authenticate(request.headers.get("authorization"), scope)
        request.state.principal = principal
        with core.tenancy.limits(principal):
            yield principal

    caller.__name__ = f"{scope}_caller"
    return caller


GenerateCaller = Annotated[Principal, Depends(_caller("generate"))]
VerifyCaller = Annotated[Principal, Depends(_caller("verify"))]
AdminCaller = Annotated[Principal, Depends(_caller("admin"))]
TalentCaller = Annotated[Principal, Depends(_caller("talent"))]


@contextmanager
def audited_action(core: GatewayCore, event: Callable[..., dict], **details) -> Iterator[dict]:
    """Record `event(**details)` when the block ends, with its error if it raised. The block
    may add to the yielded details (what the record should say)."""
    try:
        yield details
    except Exception as exc:
        if not getattr(exc, "audited", False):
            core.audit.record(event(error=exc, **details))
            audited(exc)
        raise
    core.audit.record(event(**details))
