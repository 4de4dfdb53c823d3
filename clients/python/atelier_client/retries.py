"""Retries on 429 and 503, honouring `Retry-After`: an httpx transport around another one.

Owns: when a request is sent again (Atelier's two "try later" statuses, 429 and 503, which
carry `Retry-After`) and how long to wait first (`Retry-After` in seconds or as an HTTP date;
without it, exponential back-off from `backoff_s`), at most `max_retries` times and never
longer than `max_wait_s` at once: a longer `Retry-After` comes back to the caller unretried,
who decides. Must never retry any other status or a network error (a request that may have
been processed is the caller's to resend, with its `Idempotency-Key`), and never wait except
through the policy's `sleep` / `async_sleep`.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timezone

import httpx

RETRY_STATUSES = frozenset({429, 503})


def retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds to wait that a `Retry-After` value asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


@dataclass
class RetryPolicy:
    """How many times, and after how long, a 429 or 503 is tried again."""

    max_retries: int = 3
    max_wait_s: float = 60.0
    backoff_s: float = 1.0
    statuses: frozenset[int] = RETRY_STATUSES
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.time  # wall clock: Retry-After may be an HTTP date

    def delay(self, response: httpx.Response, retries_done: int) -> float | None:
        """Seconds to wait before trying again after `response`, or None to give it to the caller."""
        if response.status_code not in self.statuses or retries_done >= self.max_retries:
            return None
        wait = retry_after_s(response.headers.get("retry-after"), self.clock())
        if wait is None:
            wait = self.backoff_s * 2**retries_done
        return None if wait > self.max_wait_s else wait


class RetryTransport(httpx.BaseTransport):
    """Sends a request through `transport`, again after each 429/503 the policy allows."""

    def __init__(self, transport: httpx.BaseTransport | None = None, policy: RetryPolicy | None = None):
        self.transport = transport or httpx.HTTPTransport()
        self.policy = policy or RetryPolicy()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a streamed body (multipart) is kept, so that it can be sent again
        retries = 0
        while True:
            response = self.transport.handle_request(request)
            wait = self.policy.delay(response, retries)
            if wait is None:
                return response
            response.read()
            response.close()
            self.policy.sleep(wait)
            retries += 1

    def close(self) -> None:
        self.transport.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """The same, for `httpx.AsyncClient` (the generated `asyncio*` functions)."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, policy: RetryPolicy | None = None):
        self.transport = transport or httpx.AsyncHTTPTransport()
        self.policy = policy or RetryPolicy()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        retries = 0
        while True:
            response = await self.transport.handle_async_request(request)
            wait = self.policy.delay(response, retries)
            if wait is None:
                return response
            await response.aread()
            await response.aclose()
            await self.policy.async_sleep(wait)
            retries += 1

    async def aclose(self) -> None:
        await self.transport.aclose()
