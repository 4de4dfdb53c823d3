"""Studio's browser security: the session cookie, CSRF tokens, and the headers of every response.

Owns: the session cookie (HttpOnly, SameSite=Strict, Path=/studio, Secure when the request
came over https: direct TLS, or a trusted proxy's `X-Forwarded-Proto`, which the HTTP edge
turns into the request's scheme; an untrusted peer's claim is ignored there), the sign-in
form's CSRF pair (a cookie holding a nonce and its issue time, and a form token that is the
HMAC of that cookie under a server secret: a pair cannot be made up or mixed, only issued,
and it expires after an hour), the check of a form's (or an htmx/fetch request's) CSRF token
against the session's, and the headers every Studio response carries: the
Content-Security-Policy (no inline script or style anywhere, everything from 'self', images
also from `data:` (a generated image shown before it is stored) and the S3 endpoint that
serves delivered job images), the other protective headers, and HSTS on https responses.
Must never put an API key in a cookie, a page or a header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from pathlib import Path
from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import Response

from service.errors import Forbidden

BASE = "/studio"
SESSION_COOKIE = "atelier_studio"
LOGIN_CSRF_COOKIE = "atelier_studio_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_TTL_S = 3600
# Two years, the preload list's minimum; no includeSubDomains: other hosts of the operator's
# domain are not Atelier's to decide for.
HSTS = b"max-age=63072000"
log = logging.getLogger("atelier.studio")


class CsrfRefused(Forbidden):
    code = "csrf_failed"


def is_https(request: Request) -> bool:
    """Direct TLS, or TLS ended at a trusted proxy (the edge set the scheme from its header)."""
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=BASE, httponly=True, samesite="strict",
                        secure=is_https(request))


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=BASE, httponly=True, samesite="strict", secure=is_https(request))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def login_secret(key_file: Path | None) -> bytes:
    """The server secret of sign-in CSRF tokens: derived from the gateway's audit checkpoint key
    (a secret every gateway replica of a deployment mounts, so a form served by one replica is
    accepted by another; the derivation never reveals the key), else random for this process."""
    try:
        material = key_file.read_bytes() if key_file is not None else b""
    except OSError:
        material = b""
    if not material:
        log.warning("no audit key to derive the sign-in CSRF secret from: a random one (this process only)")
        return secrets.token_bytes(32)
    return hmac.new(material, b"atelier studio sign-in csrf v1", hashlib.sha256).digest()


def _login_mac(secret: bytes, nonce: str) -> str:
    digest = hmac.new(secret, b"login\x00" + nonce.encode("ascii", "replace"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_login_csrf(secret: bytes, now: float | None = None) -> tuple[str, str]:
    """(cookie, form token) of a sign-in form: the cookie is `<issued>.<nonce>`, the token its HMAC."""
    cookie = f"{int(time.time() if now is None else now)}.{secrets.token_urlsafe(24)}"
    return cookie, _login_mac(secret, cookie)


def check_login_csrf(secret: bytes, cookie: str | None, presented: str | None, now: float | None = None) -> None:
    """Refuse (403 csrf_failed) unless `presented` is the HMAC of this browser's own, unexpired
    sign-in cookie: a token copied from another form, or a cookie set to equal a token, fails."""
    issued = (cookie or "").split(".", 1)[0]
    fresh = issued.isdigit() and 0 <= (time.time() if now is None else now) - int(issued) <= LOGIN_CSRF_TTL_S
    expected = _login_mac(secret, cookie) if cookie and len(cookie) <= 128 else None
    check_csrf(expected if fresh else None, presented)


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
                if scope.get("scheme") == "https":  # never over plain http, where it means nothing
                    headers.append((b"strict-transport-security", HSTS))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
