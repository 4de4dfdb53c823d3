"""Studio's browser security: the session cookie, CSRF tokens, and the headers of every response.

Owns: the session cookie (HttpOnly, SameSite=Strict, Path=/studio, Secure when the request
came over https), the sign-in form's double-submit CSRF cookie, the check of a form's (or an
htmx/fetch request's) CSRF token against the session's, and the Content-Security-Policy and
other headers every Studio response carries: no inline script or style anywhere, everything
from 'self', images also from `data:` (a generated image shown before it is stored) and the
S3 endpoint that serves delivered job images. Must never put an API key in a cookie, a page
or a header.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import Response

from service.errors import Forbidden

BASE = "/studio"
SESSION_COOKIE = "atelier_studio"
LOGIN_CSRF_COOKIE = "atelier_studio_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class CsrfRefused(Forbidden):
    code = "csrf_failed"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=BASE, httponly=True, samesite="strict",
                        secure=is_https(request))


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=BASE, httponly=True, samesite="strict", secure=is_https(request))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def check_csrf(expected: str | None, presented: str | None) -> None:
    """Refuse (403 csrf_failed) unless `presented` equals the session's (or cookie's) token."""
    if not expected or not presented or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise CsrfRefused("this form has expired or did not come from Studio; reload the page and try again")


def csp(s3_endpoint_url: str | None) -> str:
    images = ["'self'", "data:"]
    if s3_endpoint_url:
        parsed = urlparse(s3_endpoint_url)
        images.append(f"{parsed.scheme}://{parsed.netloc}")
    else:
        images.append("https://*.amazonaws.com")  # presigned URLs of delivered job images
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self'", f"img-src {' '.join(images)}",
        "connect-src 'self'", "font-src 'self'", "form-action 'self'", "frame-ancestors 'none'",
        "base-uri 'none'", "object-src 'none'",
    ])


class SecurityHeaders:
    """ASGI middleware: every Studio response gets the CSP and the other protective headers;
    pages and fragments are never cached (they hold a CSRF token and the tenant's data)."""

    def __init__(self, app, policy):
        self.app = app
        self.policy = policy  # () -> the Content-Security-Policy value

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = any(scope["path"].startswith(f"{prefix}/{kind}/") for prefix in (BASE, "") for kind in ("static", "vendor"))

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control" or static]
                headers += [
                    (b"content-security-policy", self.policy().encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
