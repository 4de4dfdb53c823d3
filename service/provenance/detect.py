"""The free public check (EU AI Act Article 50): does an image carry Atelier's marks, and is it
AI-generated? Nothing about whose it is.

Owns: `Detector.check`, the one check of `POST /v1/detect` and Studio's public Detect page:
1. the source's budget of public checks is spent before anything is read (`admit`: in memory,
   no query, and a key buys nothing here);
2. one of the public check's own slots is held (one per source, a few in all: never a verify
   slot) while the image is read and checked with verify's bounds (`verify.verify_image`: body
   size, container structure, declared pixels, time budget);
3. the answer (`detection`) says only
   - `watermark`: Atelier's invisible watermark decodes AND its id is in this service's
     watermark index (the scheme is public code, so a mark someone else embeds does not count);
   - `c2pa_manifest`: the manifest is Trusted (intact, chaining to `ATELIER_C2PA_TRUST_ANCHORS`)
     and its signing certificate names Atelier's signer (the subject organization and common
     name of `ATELIER_C2PA_CHAIN`'s leaf, when the gateway can read that public file: another
     holder of a certificate from the same CA is not Atelier);
   - `ai_generated`: the watermark, or the manifest's digital source type; and the manifest's
     digital source type, training-mining assertion and licence assertion (a signed licence's
     id and hash, or a paper consent record's id and version: opaque ids, which only the
     brand, the person and the operator can look up) when the manifest counts.

Audit: every refusal (budget, slots, size, structure, an unreadable image) goes to the compact
refusal ledger under the door's route (`refused`: the first of each kind per source and minute
in full, then counts), marked `audited` so the error handler does not record it again. A
successful check writes no audit record: it changes nothing, names no one, and a keyless flood
must not grow the append-only log; it is counted on /metrics (`atelier_public_checks_total`).

Must never put a tenant, twin, person, generation id, watermark id, prompt or any other claim of
a manifest but those above into an answer, a record or a log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import anyio
from cryptography import x509
from cryptography.x509.oid import NameOID

from service.audit.actions import audited
from service.errors import AtelierError
from service.provenance.limits import VerifyLimits, VerifySlots
from service.provenance.verify import VerifyReport, verify_image
from service.provenance.xmp import COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, TRAINED_ALGORITHMIC_MEDIA
from service.tenancy.preauth import source_key

log = logging.getLogger("atelier.provenance")
ReadImage = Callable[[int], Awaitable[bytes]]  # (the most bytes to take) -> the image
AI_SOURCE_TYPES = frozenset({TRAINED_ALGORITHMIC_MEDIA, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA})
ROUTE = "/v1/detect"


@dataclass(frozen=True)
class AtelierSigner:
    """Who signs Atelier's manifests: the subject of the signing certificate, as the C2PA
    reader reports a manifest's signer (`signature_info`: organization, common name)."""

    organization: str | None
    common_name: str | None

    @property
    def subject(self) -> tuple[str | None, str | None]:
        return self.organization, self.common_name

    @classmethod
    def from_chain(cls, path: Path | None) -> "AtelierSigner | None":
        """The leaf of the signing chain (a public file); None when this process cannot read it
        (a gateway that mounts only the trust anchors): then Trusted alone decides."""
        try:
            leaf = x509.load_pem_x509_certificates(Path(path).read_bytes())[0]
        except (OSError, TypeError, ValueError, IndexError):
            log.info("no C2PA signing chain here: the public check trusts any certificate under the trust anchors")
            return None

        def first(oid) -> str | None:
            found = leaf.subject.get_attributes_for_oid(oid)
            return str(found[0].value) if found else None

        return cls(first(NameOID.ORGANIZATION_NAME), first(NameOID.COMMON_NAME))


def detection(report: VerifyReport, lookup: Callable[[str], Any], signer: AtelierSigner | None) -> dict:
    """The answer for one verified image: Atelier's marks, and that it is AI-generated; nothing else."""
    watermark = bool(report.watermark_found and report.watermark_id and lookup(report.watermark_id) is not None)
    manifest = report.c2pa_state == "Trusted" and (signer is None or report.manifest_signer == signer.subject)
    source_type = report.manifest_source_type if manifest else None
    return {
        "ai_generated": watermark or source_type in AI_SOURCE_TYPES,
        "watermark": watermark,
        "c2pa_manifest": manifest,
        "digital_source_type": source_type,
        "training_mining": report.training_mining if manifest else None,
        "licence": report.licence if manifest else None,
    }


@cache
def _checks():
    from prometheus_client import Counter

    return Counter("atelier_public_checks", "Public checks answered (POST /v1/detect, Studio's Detect page)",
                   ["answer"])


class Detector:
    def __init__(self, lookup: Callable[[str], Any], *, admit: Callable[[str | None], None],
                 refused: Callable[[str, AtelierError, str | None], None], slots: VerifySlots, max_bytes: int,
                 max_pixels: int, trust_anchors: Path | None, limits: VerifyLimits, signer: AtelierSigner | None):
        self.lookup = lookup  # watermark id -> its generation (the registry's watermark index)
        self.admit = admit  # the source's budget of public checks (raises 429)
        self.refused = refused  # the compact refusal ledger: (route, error, client address)
        self.slots = slots
        self.max_bytes, self.max_pixels, self.trust_anchors = max_bytes, max_pixels, trust_anchors
        self.limits, self.signer = limits, signer

    async def check(self, client_ip: str | None, read: ReadImage, route: str = ROUTE) -> dict:
        """Whether the image carries Atelier's watermark and a valid Atelier manifest, and
        whether it is AI-generated; a refusal is recorded compactly and raised."""
        try:
            self.admit(client_ip)  # before a byte of the body is read
            with self.slots.hold(source_key(client_ip)):
                data = await read(self.max_bytes)
                report = await anyio.to_thread.run_sync(verify_image, data, self.max_pixels, self.trust_anchors,
                                                        self.limits)
                answer = await anyio.to_thread.run_sync(detection, report, self.lookup, self.signer)
        except AtelierError as refusal:
            await anyio.to_thread.run_sync(self.refused, route, refusal, client_ip)
            raise audited(refusal)  # recorded: the error handler must not record it again
        _checks().labels(answer="ai_generated" if answer["ai_generated"] else "no_mark").inc()
        return answer
