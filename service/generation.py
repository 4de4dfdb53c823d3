"""One guarded, audited generation: the path every image takes, from HTTP or from a job.

Owns: the order admit (key, scope, limits) -> consent and prompt policy -> one render call
to the renderer (which cancels between denoising steps if the twin is revoked meanwhile) ->
consent re-check before delivery, and the one audit record of each outcome, written before
the caller answers. Several admitted requests may share one render call (a job's items of
one twin and shape). Must never parse HTTP or talk to a client: callers pass in how to admit
the caller and get a result or a typed error per request. Never imports torch.
"""

from __future__ import annotations

import functools
import secrets
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field

from service.audit.events import generation_event
from service.audit.recorder import Recorder
from service.errors import RemoteError, RendererUnavailable
from service.rendering import GenerationResult, RenderBatch, RenderClient, RenderItem, result_of
from service.schemas import MAX_SEED, GenerateRequest
from service.tenancy import Principal, Tenancy

Admit = Callable[[], AbstractContextManager[Principal]]


def audited(exc: BaseException) -> BaseException:
    """Mark an error as recorded in the audit log, so the error handler does not record it again."""
    exc.audited = True  # type: ignore[attr-defined]
    return exc


@dataclass
class Pending:
    """A request on its way to the renderer, with the id and seed chosen for it here."""

    request: GenerateRequest
    admit: Admit
    route: str
    client_ip: str | None = None
    job: dict | None = None
    generation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seed: int = -1

    def __post_init__(self) -> None:
        if self.seed < 0:
            self.seed = self.request.seed if self.request.seed is not None else secrets.randbelow(MAX_SEED + 1)


class GuardedGeneration:
    def __init__(self, renderer: RenderClient, tenancy: Tenancy, audit: Recorder, wait_s: float = 120.0):
        self.renderer = renderer
        self.tenancy = tenancy
        self.audit = audit
        self.wait_s = wait_s
        self.base_model_id: str | None = None  # as the renderer last reported it

    def run(self, request: GenerateRequest, *, admit: Admit, route: str, client_ip: str | None,
            job: dict | None = None) -> GenerationResult:
        """Render `request` for the caller `admit` yields; audited whatever the outcome."""
        [outcome] = self.run_batch([Pending(request, admit, route, client_ip, job)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def run_batch(self, pending: list[Pending], *, wait_s: float | None = None, stop: threading.Event | None = None,
                  retry_later: bool = False) -> list[GenerationResult | BaseException]:
        """Admit each request, render the admitted ones in one call, re-check and audit each.

        With `retry_later` (the job dispatcher), a renderer that stays unavailable raises
        RendererUnavailable for the whole batch, unrecorded: the items go back to the queue."""
        outcomes: list[GenerationResult | BaseException | None] = [None] * len(pending)
        events = [functools.partial(generation_event, route=p.route, request=p.request, client_ip=p.client_ip,
                                    prompts=self.audit.prompts, job=p.job) for p in pending]
        who: list[dict] = [{} for _ in pending]
        principals: dict[int, Principal] = {}
        with ExitStack() as stack:
            for i, p in enumerate(pending):
                try:
                    principal = stack.enter_context(p.admit())
                    who[i] = principal.audit_fields()
                    grant = self.tenancy.gate.admit(principal, p.request)  # consent and prompt policy, before any GPU work
                    who[i]["consent"] = grant.audit_fields()
                    principals[i] = principal
                except Exception as exc:
                    self._record(events[i](error=exc, base_model_id=self.base_model_id, **who[i]))
                    outcomes[i] = audited(exc)
            admitted = sorted(principals)
            if admitted:
                batch = RenderBatch(items=[RenderItem(generation_id=pending[i].generation_id, seed=pending[i].seed,
                                                      request=pending[i].request) for i in admitted])
                try:
                    rendered = self.renderer.render(batch, wait_s=self.wait_s if wait_s is None else wait_s, stop=stop)
                except RendererUnavailable:
                    if retry_later:
                        raise
                    rendered = None
                    failure: BaseException = RendererUnavailable("no renderer could take the request in time; retry later")
                except Exception as exc:
                    rendered, failure = None, exc
                if rendered is None:
                    for i in admitted:
                        self._record(events[i](error=failure, base_model_id=self.base_model_id, **who[i]))
                        outcomes[i] = audited(failure)
                else:
                    self.base_model_id = rendered.base_model or self.base_model_id
                    for i, outcome in zip(admitted, rendered.outcomes):
                        outcomes[i] = self._deliverable(pending[i], principals[i], outcome, events[i], who[i], rendered.worker)
        return outcomes  # type: ignore[return-value]

    def _deliverable(self, p: Pending, principal: Principal, outcome, event, who: dict, worker: str):
        """The result if it may go out (consent still holds), audited either way."""
        result = None
        try:
            if outcome.error is not None:
                e = outcome.error
                raise RemoteError(e.status, e.code, e.message, e.field)
            result = result_of(outcome, worker)
            if p.request.twin_id is not None:  # revoked while rendering: made, recorded, never delivered
                self.tenancy.gate.decide(principal, p.request)
        except Exception as exc:
            self._record(event(error=exc, result=result, base_model_id=self.base_model_id, **who))
            return audited(exc)
        self._record(event(result=result, base_model_id=self.base_model_id, **who))
        return result

    def _record(self, event: dict) -> None:
        self.audit.record(event)
