"""Where a job's images go: inline (base64 in the job's result) or the brand's S3 bucket.

Owns: the output target format (`inline` or `s3://bucket/prefix`), writing each image as
`{prefix}/{job_id}/{item}-{n}.{ext}` with a sidecar JSON next to it (generation id, twin,
prompt, seed, sha256, watermark id, SKU and metadata), and presigned GET URLs with an
expiry, minted when a client reads the result (so a late reader still gets working links).
Credentials come from the standard AWS chain (env, profile, role), never from a request.
Must never log image bytes or URLs' signatures.
"""

from __future__ import annotations

import base64
import json
from typing import Protocol

from service.errors import AdapterUnavailable, InvalidRequest
from service.s3client import make_client

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
