"""One guarded, audited generation: the path every image takes, from HTTP or from a job.

Owns: the order admit (key, scope, limits) -> consent and prompt policy -> engine (with the
revocation guard between denoising steps) -> consent re-check before delivery, and the one
audit record of the outcome, written before the caller answers. Must never parse HTTP or
talk to a client: callers pass in how to admit the caller and get a result or a typed error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager

from service.audit.events import generation_event
from service.audit.recorder import Recorder
from service.engine import Engine, GenerationResult
from service.schemas import GenerateRequest
from service.tenancy import Principal, Tenancy

Admit = Callable[[], AbstractContextManager[Principal]]


class GuardedGeneration:
    def __init__(self, engine: Engine, tenancy: Tenancy, audit: Recorder):
        self.engine = engine
        self.tenancy = tenancy
        self.audit = audit

    def run(self, request: GenerateRequest, *, admit: Admit, route: str, client_ip: str | None,
            job: dict | None = None) -> GenerationResult:
        """Render `request` for the caller `admit` yields; audited whatever the outcome."""
        event = functools.partial(
            generation_event, route=route, request=request, client_ip=client_ip,
            base_model_id=self.engine.base_model_id, prompts=self.audit.prompts, job=job,
        )
        who: dict = {}
        result = None
        try:
            with admit() as principal:
                who = principal.audit_fields()
                grant = self.tenancy.gate.admit(principal, request)  # consent and prompt policy, before any GPU work
                who["consent"] = grant.audit_fields()
                result = self.engine.generate(request, between_steps=self.tenancy.watcher.guard(request.twin_id))
                if request.twin_id is not None:  # revoked while rendering: made, recorded, never delivered
                    self.tenancy.gate.decide(principal, request)
        except Exception as exc:
            self.audit.record(event(error=exc, result=result, **who))
            raise
        self.audit.record(event(result=result, **who))
        return result
