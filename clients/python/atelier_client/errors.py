"""Atelier's error answers as one exception, and `unwrap` for the generated functions' responses.

Owns: turning a non-2xx answer (always `{"error": {"code", "message", "field"?}}`) into
`ApiError`, with its status, stable `code`, `message`, `field` and `Retry-After`. Must never
hide the code behind a message, and never hold the response body of a success.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

from .generated.models import ErrorBody
from .generated.types import Response

T = TypeVar("T")


class ApiError(Exception):
    """An error answer: `status` (HTTP), `code` (stable, snake_case), `message`, `field` (or None)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after: str | None = None):
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field
        self.retry_after = retry_after

    @classmethod
    def from_answer(cls, status: int, content: bytes, headers: Mapping[str, str]) -> "ApiError":
        try:
            error = json.loads(content)["error"]
            code, message, field = str(error["code"]), str(error.get("message", "")), error.get("field")
        except (ValueError, KeyError, TypeError):
            code, message, field = "unexpected_answer", content[:200].decode(errors="replace"), None
        return cls(status, code, message, field, retry_after=headers.get("retry-after"))


def unwrap(response: Response[T | ErrorBody]) -> T:
    """The parsed success of a generated `sync_detailed` / `asyncio_detailed` call; else ApiError."""
    status = int(response.status_code)
    if 200 <= status < 300 and response.parsed is not None and not isinstance(response.parsed, ErrorBody):
        return response.parsed
    raise ApiError.from_answer(status, response.content, response.headers)
