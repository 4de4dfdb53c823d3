"""Verifying Atelier's webhooks, per Standard Webhooks (https://www.standardwebhooks.com).

Owns: checking a received event before it is trusted: the `webhook-id`, `webhook-timestamp`
and `webhook-signature` headers (names in any case), a timestamp within `tolerance_s` of now
(either side), and one `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{raw body}">` among the
space-separated signatures made with the `whsec_<base64 key>` secret; then the event, parsed.
Must never parse the body before it is verified, never compare signatures in variable time,
and never put the secret or the body in an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class WebhookVerificationError(Exception):
    """A webhook that is not authentic or not fresh: answer it 400 and drop it."""


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the webhook secret is not valid base64") from None
    if not key:
        raise WebhookVerificationError("the webhook secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value Atelier sends for this message (for tests of a receiver)."""
    digest = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_webhook(secret: str, body: bytes, headers: Mapping[str, str], *, tolerance_s: int = 300,
                   now: float | None = None) -> dict[str, Any]:
    """The event (`{"type", "timestamp", "data"}`) of an authentic, fresh webhook, or WebhookVerificationError.

    `body` is the raw request body, exactly as received; `headers` the request's headers."""
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "").strip()
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is too old or too new")
    expected = sign(secret, msg_id, int(stamp), bytes(body)).encode("ascii")
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode("ascii", "replace"), expected):
            return json.loads(body)
    raise WebhookVerificationError("no signature matches")
