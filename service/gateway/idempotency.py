"""The one Idempotency-Key helper of the gateway's routes.

Owns: checking the header, finding a stored response for (tenant, key, body) — a different
body under the same key is a 409 — storing a first response, and the replayed response with
its `Idempotent-Replayed` header. Routes decide what to run and whether a replay may still be
served (a revoked twin's images are not). Must never run a generation or create a job itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from starlette.responses import JSONResponse

from service.registry import Registry, check_idempotency_key, request_hash
from service.tenancy import Principal


@dataclass
class Idempotency:
    registry: Registry
    principal: Principal
    key: str | None
    digest: str

    @classmethod
    def of(cls, registry: Registry, principal: Principal, header: str | None, body: BaseModel) -> "Idempotency":
        return cls(registry, principal, check_idempotency_key(header), request_hash(body.model_dump(mode="json")))

    def stored(self):
        """The response stored for this key and body, or None (409 for another body)."""
        if self.key is None:
            return None
        return self.registry.idempotency_get(self.principal.tenant_id, self.key, self.digest)

    def store(self, response: dict, status: int):
        """Store `response` unless another request with this key stored one first; returns
        what is stored now (compare it with yours to know which request won)."""
        return self.registry.idempotency_put(self.principal.tenant_id, self.key, self.digest, response, status)


def replayed(stored) -> JSONResponse:
    return JSONResponse(stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})
