"""Live generation for Studio: one guarded generation, its denoising steps streamed as server-sent events.

Owns: running one `GuardedGeneration` for the signed-in caller in a worker thread (the same
admission, consent, audit record and rate limits as `POST /v1/generate`, recorded under the
route `/studio/generate`), turning the renderer's step reports into `progress` events, and
closing the stream with one `result` event (the result's HTML) or one `error` event (a
message, never a stack trace or JSON error body). The stream is the response to the
form's POST, read by studio.js with `fetch` (an EventSource can only GET, which would need
the request held server-side between two calls, on one replica). Must never hold generation
logic or render HTML itself: it is given how to render a result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable

import anyio

from service.errors import AtelierError
from service.rendering import GenerationResult
from service.schemas import GenerateRequest
from service.tenancy import Limits, Principal

log = logging.getLogger("atelier.studio")
ROUTE = "/studio/generate"


def sse(event: str, data: dict) -> str:
    """One server-sent event (the data is one line of JSON)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def generate(core, principal: Principal, request: GenerateRequest, client_ip: str | None,
             progress: Callable[[int, int], None] | None = None) -> GenerationResult:
    """One guarded, audited generation (the capability `POST /v1/generate` calls)."""
    # Admitted for the generation's duration within the key's rate limits (as the API's); a
    # refusal is recorded in the generation's own record (no `route`: not audited twice).
    return core.generation.run(request, admit=lambda: core.tenancy.admit(principal, "generate", limits=Limits.REQUEST),
                               route=ROUTE, client_ip=client_ip, progress=progress)


def message_of(exc: BaseException) -> dict:
    if isinstance(exc, AtelierError):
        return {"code": exc.code, "message": exc.message, "status": exc.status}
    return {"code": "internal_error", "message": "an unexpected error occurred; it has been logged", "status": 500}


async def generation_events(core, principal: Principal, request: GenerateRequest, client_ip: str | None,
                            render_result: Callable[[GenerationResult], str]) -> AsyncIterator[str]:
    """`progress` events ({step, steps}) while the renderer denoises, then `result` ({html}) or `error`."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def emit(kind: str, value) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        try:
            result = generate(core, principal, request, client_ip,
                              progress=lambda step, steps: emit("progress", {"step": step, "steps": steps}))
            emit("result", result)
        except Exception as exc:  # noqa: BLE001 - every outcome is recorded by the generation itself
            if not isinstance(exc, AtelierError) or exc.status >= 500:
                log.warning("studio generation failed", extra={"fields": {"error": type(exc).__name__}})
            emit("error", exc)

    threading.Thread(target=work, name="atelier-studio-generate", daemon=True).start()
    last = (0, request.steps)
    yield sse("progress", {"step": 0, "steps": request.steps})  # at once, before the renderer takes it
    while True:
        kind, value = await queue.get()
        if kind == "progress":
            if (value["step"], value["steps"]) != last:  # the renderer's own first report repeats step 0
                last = (value["step"], value["steps"])
                yield sse("progress", value)
        elif kind == "result":
            try:
                html = await anyio.to_thread.run_sync(render_result, value)
            except Exception as exc:  # noqa: BLE001
                log.exception("studio result could not be shown")
                yield sse("error", message_of(exc))
            else:
                yield sse("result", {"html": html, "generation_id": value.generation_id})
            return
        else:
            yield sse("error", message_of(value))
            return
