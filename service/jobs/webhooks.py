"""Webhooks to e-commerce platforms, per the Standard Webhooks spec (https://www.standardwebhooks.com).

Owns: webhook secrets (`whsec_` + base64 of the HMAC key), signing and verifying
(`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`), the SSRF guard on callback URLs, one delivery attempt (an HTTP
POST pinned to the address that the guard checked, so a DNS answer that changes between check
and connect cannot redirect it inside the network; the guard itself is `service.netguard`),
and the retry schedule. Must never log,
store in an error or echo a secret or a payload body, never follow a redirect, never use a
proxy from the environment, never connect to an address that the guard has not checked, and
never import bentoml or any part of `service` except `service.errors` and `service.__version__`.
Who retries, and where attempts are recorded, is the caller's business (`next_attempt_delay`
only says when).

Signing is implemented here with `hmac`/`hashlib` rather than with the reference library
`standardwebhooks` (1.1.0: pure Python, no dependencies), because its API does not fit: its
`verify` has a fixed 5-minute tolerance and reads the wall clock (no `tolerance_s`/`now`), it
raises `ValueError`/`binascii.Error` rather than its own error on a malformed signature list,
and its `sign` takes a `datetime` and a `str` body (bytes are decoded and re-encoded). The
algorithm is a few lines; `tests/test_webhooks.py` checks it against the library in both
directions and against the spec's published test vector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlunsplit

import httpx

from service import __version__
from service.errors import InvalidRequest
from service.netguard import Target, check_target

log = logging.getLogger("atelier.webhooks")

RETRY_SCHEDULE_S: tuple[float, ...] = (0, 30, 120, 480, 1200)
"""Delays in seconds before tries 1..5: five tries over about 30 minutes."""

SECRET_PREFIX = "whsec_"
MAX_URL_LENGTH = 2048
USER_AGENT = f"Atelier-Webhooks/{__version__}"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_ERROR_TEXT_MAX = 200

Resolver = Callable[..., list]


class CallbackRefused(InvalidRequest):
    """A callback URL that webhooks may not be sent to (scheme, credentials, or a non-public address)."""

    status = 422
    code = "callback_url_refused"

    def __init__(self, message: str, *, field: str | None = "webhook_url", code: str | None = None):
        super().__init__(message, field=field, code=code)


class WebhookVerificationError(Exception):
    """A webhook whose headers are missing, whose timestamp is stale, or whose signature does not match."""


# --- secrets and signatures -------------------------------------------------------------------


def new_secret() -> str:
    """A fresh secret: `whsec_` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret. The error never contains the secret."""
    if not isinstance(secret, str):
        raise ValueError("webhook secret must be a string")
    encoded = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not valid base64") from None
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`, the `webhook-signature` value."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("timestamp must be an int (unix seconds)")
    if not isinstance(body, bytes | bytearray):
        raise TypeError("body must be bytes")
    digest = _signature(_secret_key(secret), msg_id, timestamp, bytes(body))
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers_for(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one webhook request: the three `webhook-*` headers, content type and user agent."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: int | None = None,
) -> None:
    """Check a received webhook; raise `WebhookVerificationError` unless it is authentic and fresh.

    Header names are matched case-insensitively. The timestamp must be within `tolerance_s`
    of `now` (either side). `webhook-signature` may hold several space-separated signatures
    (during a secret rotation); one valid `v1` signature is enough, others are ignored.
    """
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    ts_text = lowered.get("webhook-timestamp", "").strip()
    sig_header = lowered.get("webhook-signature", "")
    if not (msg_id and ts_text and sig_header):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not _TIMESTAMP.fullmatch(ts_text):
        raise WebhookVerificationError("webhook-timestamp is not an integer number of seconds")
    timestamp = int(ts_text)
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance (too old or too new)")
    try:
        key = _secret_key(secret)
    except ValueError as exc:
        raise WebhookVerificationError(str(exc)) from None
    expected = _signature(key, msg_id, timestamp, bytes(body))
    for candidate in sig_header.split():
        version, sep, encoded = candidate.partition(",")
        if not sep or version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return
    raise WebhookVerificationError("no matching signature")


# --- the SSRF guard (service.netguard) -------------------------------------------------------


def _check(url: str, *, allow_private: bool, resolve: Resolver) -> Target:
    return check_target(url, allow_private=allow_private, resolve=resolve, refuse=CallbackRefused, label="webhook_url",
                        max_length=MAX_URL_LENGTH)


def check_callback_url(url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> str:
    """Return `url` unchanged if webhooks may be sent to it, else raise `CallbackRefused`.

    Refused: schemes other than https (and http, which only `allow_private` permits), user
    info, no host, over 2048 characters, a host that does not resolve, and, unless
    `allow_private`, a host of which ANY resolved address is not publicly routable. Numeric
    host spellings ("2130706433", "0x7f.1", "[::ffff:127.0.0.1]") are normalised by `resolve`
    (getaddrinfo) before the addresses are checked.
    """
    _check(url, allow_private=allow_private, resolve=resolve)
    return url


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery attempt. `error` is "<ExceptionClass>: short text" or None."""

    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


def _error_text(exc: BaseException, secret: str) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if secret and secret in text:
        text = text.replace(secret, "[secret]")
    if len(text) > _ERROR_TEXT_MAX:
        text = text[: _ERROR_TEXT_MAX - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def post_webhook(
    url: str,
    secret: str,
    msg_id: str,
    payload: dict[str, Any],
    *,
    allow_private: bool,
    timeout_s: float = 10.0,
    now: int | None = None,
    resolve: Resolver = socket.getaddrinfo,
) -> Attempt:
    """POST `payload` (compact, sorted-key JSON) to `url`, signed with `secret`; never raises.

    The URL is checked again (its DNS may have changed since it was saved) and resolved once;
    the request goes to the first checked address, with the original `Host` header and, for
    https, the original name as TLS SNI and for certificate checks. Redirects are not
    followed and environment proxies are ignored, and the response body is never read. `ok`
    is True for a 2xx answer only; any other answer gives its `status_code` and `error=None`.
    A refused URL, a network or TLS failure, a malformed secret or a payload that is not
    JSON-serialisable gives `status_code=None` and `error="<ExceptionClass>: short text"`.
    """
    started = time.perf_counter()

    def done(ok: bool, status_code: int | None, error: str | None) -> Attempt:
        attempt = Attempt(ok=ok, status_code=status_code, error=error,
                          duration_ms=round((time.perf_counter() - started) * 1000, 3))
        log.info("webhook attempt", extra={"fields": {"msg_id": msg_id, "ok": ok, "status_code": status_code,
                                                      "error": error, "duration_ms": attempt.duration_ms}})
        return attempt

    try:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(time.time()) if now is None else now
        headers = headers_for(secret, msg_id, timestamp, body)
        target = _check(url, allow_private=allow_private, resolve=resolve)
    except Exception as exc:  # CallbackRefused, a malformed secret, an unserialisable payload
        return done(False, None, _error_text(exc, secret))

    address = target.addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    explicit_port = target.parts.port
    netloc = f"{literal}:{explicit_port}" if explicit_port else literal
    pinned = urlunsplit((target.parts.scheme.lower(), netloc, target.parts.path or "/", target.parts.query, ""))
    host_name = f"[{target.host}]" if ":" in target.host else target.host
    headers["host"] = f"{host_name}:{explicit_port}" if explicit_port else host_name
    extensions = {"sni_hostname": target.host} if target.parts.scheme.lower() == "https" else {}
    try:
        with httpx.Client(follow_redirects=False, trust_env=False, timeout=timeout_s) as client:
            with client.stream("POST", pinned, content=body, headers=headers, extensions=extensions) as response:
                status = response.status_code  # the body is never read: it may be anything
        return done(200 <= status < 300, status, None)
    except Exception as exc:  # httpx.HTTPError, OSError, ssl errors: a failed attempt, not a crash
        return done(False, None, _error_text(exc, secret))


def next_attempt_delay(attempts_made: int, schedule: tuple[float, ...] = RETRY_SCHEDULE_S) -> float | None:
    """Seconds to wait before the next try after `attempts_made` tries, or None when all are used."""
    if attempts_made < 0:
        raise ValueError("attempts_made must be >= 0")
    if attempts_made >= len(schedule):
        return None
    return float(schedule[attempts_made])
