"""Strict multipart and form bodies: the fields a route names, each once, of the right kind.

Owns: a route dependency (`strict_form`) that refuses, in our error shape and before the
route runs, a form with a field the route does not name (422 `invalid_field`, naming it), a
field sent more than once (two files in `adapter`: 422), a file where text belongs or text
where a file belongs (422), and a body the parser could not read (400). FastAPI and Starlette
parse the body first (bounded: 1,000 parts and fields); the parsed form is cached on the
request, so this reads it again for free. Must never read a file's content.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from service.errors import InvalidRequest, MalformedRequest

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def strict_form(*, fields: set[str], files: set[str]) -> Callable[[Request], Awaitable[None]]:
    async def check(request: Request) -> None:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in FORM_TYPES:
            return
        try:
            form = await request.form()
        except HTTPException:
            raise MalformedRequest("the form body could not be parsed (check its boundary and parts)") from None
        items = form.multi_items()
        for name, _ in items:
            if name not in fields and name not in files:
                shown = name[:64]
                raise InvalidRequest(f"unknown field {shown!r}; this route takes {', '.join(sorted(fields | files))}",
                                     field=shown)
        repeated = [name for name, count in Counter(name for name, _ in items).items() if count > 1]
        if repeated:
            raise InvalidRequest(f"field {repeated[0]!r} was sent more than once; send it once", field=repeated[0])
        for name, value in items:
            if name in files and not isinstance(value, UploadFile):
                raise InvalidRequest(f"{name!r} must be a file part", field=name)
            if name in fields and isinstance(value, UploadFile):
                raise InvalidRequest(f"{name!r} must be a text field, not a file", field=name)

    return check
