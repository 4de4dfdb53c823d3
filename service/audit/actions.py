"""The audit record of one action, whatever its outcome: the wrapper every capability uses.

Owns: `audited_action(record, event, **details)`, which records `event(**details)` when a
block ends (with its error if it raised: refused or failed), and `audited(exc)`, the mark
that an error's record is written, so the gateway's error handler does not record it again.
Must never decide what an action does, nor record a body, a key or a secret (the caller's
`details` are what the record says).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def audited(exc: BaseException) -> BaseException:
    """Mark an error as recorded in the audit log, so the error handler does not record it again."""
    exc.audited = True  # type: ignore[attr-defined]
    return exc


@contextmanager
def audited_action(record: Callable[[dict[str, Any]], Any], event: Callable[..., dict], **details) -> Iterator[dict]:
    """Record `event(**details)` when the block ends, with its error if it raised. The block
    may add to the yielded details (what the record should say)."""
    try:
        yield details
    except Exception as exc:
        if not getattr(exc, "audited", False):
            record(event(error=exc, **details))
            audited(exc)
        raise
    record(event(**details))
