"""The Idempotency-Key of the gateway's routes: the replayed response.

Owns: the replayed response with its `Idempotent-Replayed` header. Checking and claiming a
key is `service.registry.idempotency.Idempotency` (re-exported here), which the jobs
capability uses too. Must never run a generation or create a job itself.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from service.registry.idempotency import Idempotency

__all__ = ["Idempotency", "replayed"]


def replayed(stored) -> JSONResponse:
    return JSONResponse(stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})
