"""Reading a whole ASGI request body under a byte cap.

Owns: the one loop that buffers an ASGI body and stops at a limit, used by the gateway's HTTP
edge and the renderer's door alike. Must never decide what the limit is, log the body, or
import anything but `service.errors`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from service.errors import PayloadTooLarge

Receive = Callable[[], Awaitable[dict]]


async def read_body(receive: Receive, limit: int, too_large: str) -> bytes:
    """The body's bytes; PayloadTooLarge(`too_large`) as soon as more than `limit` arrived."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
