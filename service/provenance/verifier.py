"""Verification as callers ask for it: one image, checked within the caller's bounds, answered
with what the caller may be told, and audited.

Owns: `Verifier.check`, the one verify of the `/v1/verify` route and Studio's Verify page:
one of the key's verify slots held while the image is read and checked (`limits.VerifySlots`),
the bounded check off the event loop (`verify.verify_image`), the disclosure rule
(`disclosure.disclose`: a generation's tenant and twin only for that tenant's keys and admin
keys), and the `verify` audit record of every outcome. The caller hands over how to read the
image (a request body, a form's file), so a body that cannot be read is recorded too. Must
never parse HTTP itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from service.audit.actions import audited_action
from service.audit.events import verify_event
from service.provenance.disclosure import disclose
from service.provenance.limits import VerifyLimits, VerifySlots
from service.provenance.verify import verify_image

ReadImage = Callable[[int], Awaitable[bytes]]  # (the most bytes to take) -> the image


class Verifier:
    def __init__(self, lookup: Callable[[str], Any], record: Callable[[dict[str, Any]], Any], *, max_bytes: int,
                 max_pixels: int, trust_anchors, limits: VerifyLimits, slots: VerifySlots):
        self.lookup = lookup  # watermark id -> its generation (the registry's watermark index)
        self.record = record
        self.max_bytes, self.max_pixels, self.trust_anchors = max_bytes, max_pixels, trust_anchors
        self.limits, self.slots = limits, slots

    async def check(self, principal, client_ip: str | None, read: ReadImage) -> dict:
        """The image's watermark id and C2PA state; whether this service made it, and what the
        caller may know of its generation."""
        details = {"upload": b"", "client_ip": client_ip, **principal.audit_fields()}
        with audited_action(self.record, verify_event, **details) as details, self.slots.hold(principal.key_id):
            data = details["upload"] = await read(self.max_bytes)
            report = await anyio.to_thread.run_sync(verify_image, data, self.max_pixels, self.trust_anchors, self.limits)
            report, body = await anyio.to_thread.run_sync(lambda: disclose(
                report, self.lookup, tenant_id=principal.tenant_id, admin="admin" in principal.scopes))
            details["report"] = report
        return body
