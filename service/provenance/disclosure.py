"""What /v1/verify may say about the generation behind an image, and to whom.

Owns: resolving an image to a generation through the registry's watermark index (also for
`/v1/edit`, which must know whose generation its source is: `identify`), and the
disclosure rule. A generation is named only when
- the watermark is found and its id is in the index (a JPEG re-encode drops C2PA but keeps
  the watermark: it still resolves, on any replica), or
- the C2PA manifest is Valid or Trusted (intact and signed) and the watermark id it carries
  is in the index for the very generation the manifest names.
A manifest that is Invalid (chunks copied onto other pixels, edited bytes) names nothing, and
what it claims is never echoed. Tenant and twin go only to keys of the tenant that made the
image and to admin keys; any other key learns that this service made the image and its
generation id. Must never read the audit log (an O(log size) scan on one replica) or trust a
manifest's claims by themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from service.provenance.limits import VerifyLimits
from service.provenance.verify import VerifyReport, verify_image
from service.registry import WatermarkInfo

SIGNED = ("Valid", "Trusted")


def resolve(report: VerifyReport, lookup: Callable[[str], WatermarkInfo | None]) -> tuple[WatermarkInfo | None, str | None]:
    """(the indexed image, found by "watermark" or "manifest"), or (None, None)."""
    if report.watermark_found and report.watermark_id:
        mark = lookup(report.watermark_id)
        if mark is not None:
            return mark, "watermark"
    if report.c2pa_state in SIGNED and report.claimed_watermark_id and report.claimed_generation_id:
        mark = lookup(report.claimed_watermark_id)
        if mark is not None and mark.generation_id == report.claimed_generation_id:
            return mark, "manifest"
    return None, None


def identify(data: bytes, lookup: Callable[[str], WatermarkInfo | None], *, max_pixels: int,
             trust_anchors: Path | None, limits: VerifyLimits | None = None) -> str | None:
    """The watermark id under which the index holds the generation an image is, read as
    /v1/verify reads it (same bounds, same resolution), or None for an image Atelier did not
    make. Raises verify's typed 4xx errors for an image it will not read."""
    mark, _ = resolve(verify_image(data, max_pixels, trust_anchors, limits), lookup)
    return mark.watermark_id if mark is not None else None


def disclose(report: VerifyReport, lookup: Callable[[str], WatermarkInfo | None], *, tenant_id: str,
             admin: bool) -> tuple[VerifyReport, dict]:
    """The report with its generation id resolved, and the answer's body for this caller."""
    mark, found_by = resolve(report, lookup)
    report = replace(report, generation_id=mark.generation_id if mark else None)
    body = report.as_dict()
    body["made_by_this_service"] = mark is not None
    body["found_by"] = found_by
    if mark is not None and (admin or mark.tenant_id == tenant_id):
        body["audit"] = {"generation_id": mark.generation_id, "tenant": mark.tenant_id, "twin_id": mark.twin_id,
                         "image_index": mark.image_index, "ts": mark.created_at.isoformat(), "outcome": "ok"}
    return report, body
