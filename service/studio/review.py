"""Studio's review at a glance: what a job's state truly is, what its items are called, and its
approved images handed out (one by one, as one zip, and the items as a CSV).

Owns: a job's state as a reviewer reads it (`awaiting review` when only the reviewer is waited
on, `completed with 2 failed`, the approved, rejected and failed counts), pluralised counts,
a job's and an item's names (its title and SKU), the approved images of a job as a zip
streamed one image at a time (bounded: `MAX_ZIP_ITEMS` items, `MAX_ZIP_IMAGE_BYTES` an image),
the items as a CSV whose cells no spreadsheet runs, and an image's C2PA state read back for
the lightbox. Every read goes through the jobs capability (`CatalogJobs.results`, `.image`).
Must never decide an item, hold job logic, or hold more than one image in memory.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from service.errors import InvalidRequest
from service.studio.job_builder import csv_cell

log = logging.getLogger("atelier.studio")
MAX_ZIP_ITEMS = 100  # approved items in one zip (at most 4 images each): a larger job downloads in parts
MAX_ZIP_IMAGE_BYTES = 64 * 1024**2  # one image read back from S3
PAGE = 100
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 image`, `2 images`, `0 images`."""
    return f"{count} {word if count == 1 else many or word + 's'}"


@dataclass(frozen=True)
class JobState:
    label: str  # awaiting review | running | queued | completed | completed with 2 failed | failed | canceled
    tone: str  # a badge class: ok, warn, bad, review, running
    counts: str  # "4 approved · 1 rejected · 1 failed", "6 done"


def job_state(job: dict) -> JobState:
    """A job's state as it truly is: `awaiting review` when every item left waits only on the
    reviewer, `completed with N failed` when some failed; rejected items are counted apart."""
    total, done, failed = job["items_total"], job["items_done"], job["items_failed"]
    rejected, awaiting = job.get("items_rejected") or 0, job.get("items_awaiting_review") or 0
    in_flight = total - done - failed - rejected - awaiting
    status = job["status"]
    if status in ("queued", "running"):
        if awaiting and in_flight <= 0:
            label, tone = "awaiting review", "review"
        else:
            label, tone = status, "running"
    elif status == "completed":
        label, tone = (f"completed with {failed} failed", "warn") if failed else ("completed", "ok")
    else:
        label, tone = status, "bad"
    parts = [f"{done} approved" if job.get("review") else f"{done} done"]
    if awaiting:
        parts.append(f"{awaiting} to review")
    if rejected:
        parts.append(f"{rejected} rejected")
    if failed:
        parts.append(f"{failed} failed")
    return JobState(label, tone, " · ".join(parts))


def job_name(job: dict) -> str:
    return job.get("title") or f"Job {job['job_id'][:12]}"


def item_name(item: dict) -> str:
    return item.get("sku") or f"Item {item['index']}"


def safe_name(text: str | None, fallback: str) -> str:
    """A file name part: letters, digits, `.`, `_` and `-` only, at most 60 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text or "").strip("-.")[:60]
    return cleaned or fallback


def image_filename(item: dict, image: dict) -> str:
    """`007-AW26-COAT-RED-0.png`: the item's index (so names never collide), its SKU, the image."""
    return f"{item['index']:03d}-{safe_name(item.get('sku'), 'item')}-{image['n']}.{EXTENSIONS[image['format']]}"


# -- approved images ----------------------------------------------------------------------------


def zip_parts(job: dict) -> int:
    """How many zips a job's approved images come in (`MAX_ZIP_ITEMS` approved items each)."""
    return max(1, -(-job["items_done"] // MAX_ZIP_ITEMS))


def approved(jobs, tenant_id: str, job_id: str, part: int = 1) -> tuple[dict, list[tuple[dict, dict]]]:
    """The job's summary and each (item, image) of the approved items (`done`, not withheld) of
    part `part` (1-based), in item order, read a page at a time; 422 for a part it lacks."""
    offset, items, head = 0, [], None
    while offset is not None:
        page = jobs.results(tenant_id, job_id, offset, PAGE)
        head = head or page
        if part > zip_parts(head):
            raise InvalidRequest(f"this job's approved images come in {plural(zip_parts(head), 'part')}", field="part")
        items += [item for item in page["items"] if item["status"] == "done" and not item.get("withheld")]
        offset = page["next_offset"] if len(items) < part * MAX_ZIP_ITEMS else None
    chosen = items[(part - 1) * MAX_ZIP_ITEMS:part * MAX_ZIP_ITEMS]
    return head, [(item, image) for item in chosen for image in item.get("images") or ()]


class _Sink:
    """A write-only stream (zipfile then writes data descriptors): what was written since the last take."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def stream_zip(entries: list[tuple[dict, dict]], read: Callable[[dict, dict], bytes]) -> Iterator[bytes]:
    """A zip of `entries`' images, built and sent one image at a time (stored, not deflated:
    PNG and JPEG are compressed already). `read(item, image)` gives one image's bytes."""
    sink = _Sink()
    stamp = time.gmtime()[:6]
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for item, image in entries:
            info = zipfile.ZipInfo(image_filename(item, image), date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, read(item, image))
            yield sink.take()
    yield sink.take()


def image_reader(jobs, tenant_id: str, job_id: str) -> Callable[[dict, dict], bytes]:
    """One approved image's bytes: held or inline ones from the registry, S3 ones through their
    presigned URL (the operator's own S3 endpoint; no redirect, no proxy, bounded)."""

    def read(item: dict, image: dict) -> bytes:
        data, _, url = jobs.image(tenant_id, job_id, item["index"], image["n"])
        if data is not None:
            return data
        with httpx.Client(follow_redirects=False, trust_env=False, timeout=60) as client:
            with client.stream("GET", url) as response:
                response.raise_for_status()
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ZIP_IMAGE_BYTES:
                        raise InvalidRequest(f"an image is larger than {MAX_ZIP_IMAGE_BYTES} bytes", field="part")
                return bytes(body)

    return read


def items_csv(job: dict, items: list[dict], twin_names: dict[str, str]) -> bytes:
    """A job's items as CSV (index, SKU, twin, status, rejection reason, alt text, files): every
    cell that a spreadsheet would run as a formula is quoted (`csv_cell`)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["index", "sku", "twin", "status", "rejection_reason", "alt_text", "files", "error"])
    for item in items:
        files = " ".join(image_filename(item, image) for image in item.get("images") or ())
        writer.writerow([csv_cell(v) for v in (
            item["index"], item.get("sku"), twin_names.get(item.get("twin_id") or "", item.get("twin_id")),
            item["status"], item.get("rejection_reason"), item.get("alt_text"), files,
            (item.get("error") or {}).get("message"))])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def c2pa_state(data: bytes, settings) -> str:
    """The image's C2PA credential as Verify reads it (`valid`, `trusted`, ...), or `unread`."""
    try:
        from service.provenance.verify import verify_image

        return verify_image(data, settings.max_verify_pixels, settings.c2pa_trust_anchors).c2pa_state
    except Exception:  # noqa: BLE001 - the other provenance facts still show
        log.warning("could not read back an item's C2PA state")
        return "unread"
