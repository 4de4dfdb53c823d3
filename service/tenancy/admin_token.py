"""The admin token: a bearer secret from config that unlocks the admin routes.

Owns: checking `Authorization: Bearer <token>` against `ATELIER_ADMIN_TOKEN` in constant
time. With no token configured the admin routes are closed (403), never open. The API-key
registry with scopes replaces this; until then it is the only admin credential. Must never
log or echo a token.
"""

from __future__ import annotations

import hmac

from service.errors import Forbidden, Unauthorized


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def check_admin(authorization: str | None, admin_token: str | None) -> None:
    if not admin_token:
        raise Forbidden("admin routes are disabled: set ATELIER_ADMIN_TOKEN to enable them", code="admin_disabled")
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized("send the admin token as 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(token.encode(), admin_token.encode()):
        raise Unauthorized("the admin token is not valid")
