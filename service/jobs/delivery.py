"""Where a job's images go: inline (base64 in the job's result) or the brand's S3 bucket.

Owns: the output target format (`inline` or `s3://bucket/prefix`), writing each image as
`{prefix}/{job_id}/{item}-{n}.{ext}` with a sidecar JSON next to it (generation id, twin,
prompt, seed, sha256, watermark id, SKU and metadata), and presigned GET URLs with an
expiry, minted when a client reads the result (so a late reader still gets working links).
Credentials come from the standard AWS chain (env, profile, role), never from a request.

Deliveries survive outages: an item whose delivery to S3 fails is not failed at once. Its
rendered images are staged (`Staging`) and the item waits as `delivering` in the registry
(`service.registry.item_deliveries`), where any gateway's `DeliveryRetrier` claims it when its
next try is due and tries again: exponential backoff with jitter (`retry_delay`), until
`ATELIER_DELIVERY_DEADLINE_S` after the first failed try; only then is it failed with
`delivery_failed`. The image is never rendered again to retry. Where staged images wait:
- in the shared object store, when the asset store is S3 (`staging/{job}/{item}-{n}.{ext}`
  beside the assets: outlives any pod, and costs the database nothing);
- in the item's row of the registry (base64, as inline and review results already are), when
  the asset store is a local directory (a pod's disk is not durable; with the embedded SQLite
  the row lives on that same disk anyway), or when the object store refuses the copy too (the
  same S3 is down for the brand's bucket and ours: the registry then holds the bytes, bounded
  by one item's images and only while the outage lasts; they go when the item is delivered).
A delivery given up after its deadline keeps its staged copy (an operator may redeliver it,
`/v1/admin/jobs/redeliver`) until the job is purged with its retention.
Must never log image bytes or URLs' signatures, and never render anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from service.errors import AdapterUnavailable, AtelierError, InvalidRequest
from service.registry import DeliveryClaim, ItemDeliveries
from service.registry.job_records import PENDING_DELIVERY
from service.rendering import GeneratedImage
from service.s3client import make_client

log = logging.getLogger("atelier.delivery")

RETRY_FIRST_S = 10.0  # the delay after the first failed try (before jitter); doubles each try
RETRY_CAP_S = 900.0  # ... up to 15 minutes
CLAIM_HOLD_S = 300.0  # a claimed try's hold: longer than one try takes (two PUTs per image, 60 s timeouts)

MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class DeliveryFailed(AdapterUnavailable):
    """The brand's bucket refused or could not be reached (the item fails, the job goes on)."""

    code = "delivery_failed"


def check_output_target(target: str) -> str:
    if target == "inline":
        return target
    bucket = target[5:].split("/", 1)[0] if target.startswith("s3://") else ""
    if not bucket or not all(c.isalnum() or c in "-." for c in bucket) or ".." in target or len(target) > 1024:
        raise InvalidRequest("output_target must be 'inline' or 's3://bucket[/prefix]'", field="output_target")
    return target.rstrip("/")


class Deliverer(Protocol):
    def store(self, job_id: str, index: int, n: int, image, sidecar: dict) -> dict: ...

    def with_urls(self, entry: dict, expiry_s: int) -> dict: ...


def _entry(image) -> dict:
    return {"n": image.index, "format": image.format, "width": image.width, "height": image.height,
            "seed": image.seed, "sha256": image.sha256, "watermark_id": image.watermark_id}


class InlineDelivery:
    def store(self, job_id: str, index: int, n: int, image, sidecar: dict) -> dict:
        return {**_entry(image), "data_base64": base64.b64encode(image.data).decode("ascii")}

    def with_urls(self, entry: dict, expiry_s: int) -> dict:
        return entry


class S3Delivery:
    def __init__(self, target: str, endpoint_url: str | None, region: str | None):
        bucket, _, prefix = target[5:].partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = make_client(endpoint_url, region, read_timeout=60)

    def key(self, job_id: str, index: int, n: int, ext: str) -> str:
        name = f"{job_id}/{index}-{n}.{ext}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def store(self, job_id: str, index: int, n: int, image, sidecar: dict) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(job_id, index, n, image.format)
        sidecar_key = key.rsplit(".", 1)[0] + ".json"
        body = {**sidecar, **_entry(image), "key": key}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=image.data, ContentType=MEDIA[image.format])
            self.client.put_object(Bucket=self.bucket, Key=sidecar_key, ContentType="application/json",
                                   Body=json.dumps(body, indent=2, sort_keys=True).encode())
        except (BotoCoreError, ClientError) as exc:
            raise DeliveryFailed(f"the image could not be written to s3://{self.bucket}/{key}: {type(exc).__name__}") from None
        return {**_entry(image), "key": key, "sidecar_key": sidecar_key}

    def with_urls(self, entry: dict, expiry_s: int) -> dict:
        sign = lambda key: self.client.generate_presigned_url(  # noqa: E731
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expiry_s)
        return {**entry, "url": sign(entry["key"]), "sidecar_url": sign(entry["sidecar_key"])}


def deliverer_for(target: str, endpoint_url: str | None, region: str | None) -> Deliverer:
    return InlineDelivery() if target == "inline" else S3Delivery(target, endpoint_url, region)


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones: 10 s, 20 s, 40 s ... up to 15
    minutes, with equal jitter (half fixed, half random) so that a fleet's retries after one
    outage do not arrive at the bucket together."""
    delay = min(RETRY_CAP_S, RETRY_FIRST_S * 2 ** max(0, attempts - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


class StagedImageLost(DeliveryFailed):
    """A staged image is gone or damaged: no retry can deliver it (the item fails at once)."""


class Staging:
    """Where the rendered images of a delivery being retried wait (see the module's docstring).
    `blobs`: the shared object store (the S3 asset store's blobs), or None to keep them in the
    item's row."""

    def __init__(self, blobs=None):
        self.blobs = blobs

    def put(self, job_id: str, index: int, images) -> list[dict]:
        """Stage each image; returns what the item's row keeps of them."""
        staged = []
        for image in images:
            facts = {"n": image.index, "format": image.format, "width": image.width, "height": image.height,
                     "seed": image.seed, "sha256": image.sha256, "watermark_id": image.watermark_id}
            if self.blobs is not None:
                key = f"staging/{job_id}/{index}-{image.index}.{image.format}"
                try:
                    self.blobs.put(key, image.data)
                    staged.append({**facts, "blob": key})
                    continue
                except AtelierError:  # the object store is down too: the registry holds the bytes
                    log.warning("staging store unreachable; image kept in the registry",
                                extra={"fields": {"job_id": job_id, "item": index}})
            staged.append({**facts, "data_base64": base64.b64encode(image.data).decode("ascii")})
        return staged

    def image(self, entry: dict) -> GeneratedImage:
        """A staged image back, its sha256 checked. AdapterUnavailable while the store cannot be
        read (try again later); StagedImageLost when it is gone or damaged."""
        if "data_base64" in entry:
            data = base64.b64decode(entry["data_base64"])
        else:
            data = self.blobs.get(entry["blob"]) if self.blobs is not None else None
        if data is None or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise StagedImageLost(f"the staged copy of image {entry['n']} is missing or damaged; it cannot be delivered")
        return GeneratedImage(index=entry["n"], format=entry["format"], width=entry["width"], height=entry["height"],
                              seed=entry["seed"], data=data, sha256=entry["sha256"], watermark_id=entry.get("watermark_id"))

    def drop(self, staged: dict) -> None:
        """Delete the staged copies of a delivered item (best effort: a leftover is only storage)."""
        for entry in staged.get("images", []):
            if "blob" in entry and self.blobs is not None:
                try:
                    self.blobs.delete(entry["blob"])
                except Exception:  # noqa: BLE001 - never fail a delivery over its cleanup
                    log.warning("staged copy not deleted", extra={"fields": {"key": entry["blob"]}})


class DeliveryRetrier:
    """Retries deliveries that failed: stages them (`pending`), then, from a thread of its own
    on every gateway, claims each due one (one gateway per try) and tries it again."""

    def __init__(self, retries: ItemDeliveries, deliverer_for: Callable[[str], Deliverer], staging: Staging,
                 deadline_s: float, on_finished: Callable[[], None] = lambda: None, *, poll_s: float = 1.0,
                 hold_s: float = CLAIM_HOLD_S, rng: random.Random | None = None):
        self.retries = retries
        self.deliverer_for = deliverer_for
        self.staging = staging
        self.deadline_s = deadline_s
        self.on_finished = on_finished  # wakes the webhook sender
        self.poll_s, self.hold_s, self.rng = poll_s, hold_s, rng
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.deadline_s > 0

    def pending(self, job_id: str, index: int, result: dict, sidecar: dict, images, error: AtelierError,
                now: datetime) -> dict:
        """What `Leases.finish_items` records for an item whose first try failed: its images
        staged and its next try scheduled (`result[PENDING_DELIVERY]`)."""
        staged = {"result": {**result, "images": []}, "sidecar": sidecar, "images": self.staging.put(job_id, index, images)}
        deadline = now + timedelta(seconds=self.deadline_s)
        retry_at = min(deadline, now + timedelta(seconds=retry_delay(1, self.rng)))
        log.warning("delivery failed; will retry", extra={"fields": {"job_id": job_id, "item": index,
                                                                     "retry_at": retry_at.isoformat(), "error": error.code}})
        return {**result, "images": [], PENDING_DELIVERY: {"staged": staged, "retry_at": retry_at, "deadline": deadline,
                                                           "error": error.message}}

    def run_once(self, now: datetime | None = None) -> int:
        """Claim the due tries and make them; returns how many items were settled (delivered
        or given up)."""
        settled = 0
        for claim in self.retries.claim_due(self.hold_s, now=now):
            settled += self.attempt(claim, now)
        return settled

    def attempt(self, claim: DeliveryClaim, now: datetime | None = None) -> int:
        staged = claim.staged or {}
        fields = {"job_id": claim.job_id, "item": claim.index, "attempt": claim.attempt}
        try:
            deliverer = self.deliverer_for(claim.output_target)
            images = [deliverer.store(claim.job_id, claim.index, entry["n"], self.staging.image(entry), staged["sidecar"])
                      for entry in staged.get("images", [])]
        except AtelierError as exc:
            now = now or self.retries.db.now()
            if isinstance(exc, StagedImageLost) or now >= claim.deadline:
                why = exc.message if isinstance(exc, StagedImageLost) else (
                    f"not delivered after {claim.attempt} tries until its deadline; last error: {exc.message}")
                finish = self.retries.record_try(claim, error={"code": "delivery_failed", "message": why, "field": None},
                                                 last_error=exc.message, now=now)
                log.warning("delivery given up", extra={"fields": fields})
                if finish.recorded:
                    self.on_finished()
                return int(finish.recorded)
            retry_at = min(claim.deadline, now + timedelta(seconds=retry_delay(claim.attempt, self.rng)))
            self.retries.record_try(claim, retry_at=retry_at, last_error=exc.message, now=now)
            log.info("delivery retry failed", extra={"fields": {**fields, "retry_at": retry_at.isoformat()}})
            return 0
        finish = self.retries.record_try(claim, result={**staged["result"], "images": images}, now=now)
        if finish.recorded:
            self.staging.drop(staged)
            log.info("delivered on retry", extra={"fields": fields})
            self.on_finished()
        return int(finish.recorded)

    # -- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="atelier-delivery-retry", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop; a try in flight keeps its claim until the hold lapses (another gateway takes it then)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(grace_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue  # S3 is back: drain what is due without waiting a poll per few items
            except Exception:  # never kill the loop: the claims lapse and are tried again
                log.exception("delivery retry failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()
