"""Fetching an asset from an https URL, through the SSRF guard.

Owns: refusing URLs the guard refuses (`service.netguard`: only public addresses, https
only unless development callbacks are on), connecting to the checked address only (pinned,
with the original Host and TLS name), never following redirects or environment proxies,
and reading at most `max_bytes` with a time limit. Must never keep or log the bytes.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlunsplit

import httpx

from service import __version__
from service.errors import AtelierError, PayloadTooLarge
from service.netguard import Resolver, check_target

USER_AGENT = f"Atelier-Assets/{__version__}"


class UrlRefused(AtelierError):
    status = 422
    code = "url_refused"

    def __init__(self, message: str, *, field: str | None = "url", code: str | None = None):
        super().__init__(message, field=field, code=code)


class FetchFailed(AtelierError):
    status = 422
    code = "fetch_failed"


def fetch_url(url: str, *, max_bytes: int, allow_private: bool = False, timeout_s: float = 20.0,
              resolve: Resolver = socket.getaddrinfo, field: str = "url") -> bytes:
    """The body of a GET of `url` (2xx only), at most `max_bytes`; typed 4xx errors otherwise."""
    target = check_target(url, allow_private=allow_private, resolve=resolve,
                          refuse=lambda message: UrlRefused(message, field=field), label=field)
    if target.parts.scheme.lower() != "https" and not allow_private:
        raise UrlRefused(f"{field} must use https", field=field)
    address = target.addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    port = target.parts.port
    pinned = urlunsplit((target.parts.scheme.lower(), f"{literal}:{port}" if port else literal,
                         target.parts.path or "/", target.parts.query, ""))
    host = f"[{target.host}]" if ":" in target.host else target.host
    headers = {"host": f"{host}:{port}" if port else host, "user-agent": USER_AGENT, "accept": "image/*"}
    extensions = {"sni_hostname": target.host} if target.parts.scheme.lower() == "https" else {}
    deadline = time.monotonic() + timeout_s
    try:
        with httpx.Client(follow_redirects=False, trust_env=False, timeout=timeout_s) as client:
            with client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
                if not 200 <= response.status_code < 300:
                    raise FetchFailed(f"{field} answered HTTP {response.status_code} (redirects are not followed)",
                                      field=field)
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise PayloadTooLarge(f"{field} serves {declared} bytes; the limit is {max_bytes}", field=field)
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(f"{field} serves more than {max_bytes} bytes", field=field)
                    if time.monotonic() > deadline:
                        raise FetchFailed(f"{field} took longer than {timeout_s:.0f} s", field=field)
                    chunks.append(chunk)
                return b"".join(chunks)
    except AtelierError:
        raise
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{field} could not be fetched ({type(exc).__name__})", field=field) from None
