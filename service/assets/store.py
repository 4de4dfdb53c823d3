"""Tenant-scoped input images, stored by sha256 beside the adapter store.

Owns: where an asset's bytes and metadata live (`assets/<tenant>/<sha256>` and its `.json`,
in a local directory or an S3 prefix; a listed garment's record beside them, at
`garments/<tenant>/<sha256>.json`), reading them back with the sha256 checked, the tenant
scoping (another tenant's asset reads exactly like a missing one), and deleting assets older
than the job-retention period (a listed garment's record with its asset). Must never
decode an image (`bounds` does) or fetch a URL (`fetch` does).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from service.errors import AdapterUnavailable, AtelierError
from service.files import atomic_write

ASSET_ID = re.compile(r"^[0-9a-f]{64}$")
TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KINDS = ("garment", "pose", "mask", "source")
PUT_WORKERS = 8  # S3 PUTs one S3Blobs runs at once (boto3's default pool holds 10 connections)


class AssetNotFound(AtelierError):
    status = 404
    code = "asset_not_found"


@dataclass(frozen=True)
class AssetInfo:
    asset_id: str  # the sha256 of the bytes
    tenant_id: str
    kind: str
    format: str
    media_type: str
    width: int
    height: int
    bytes: int
    created_at: str
    source_url: str | None = None

    def shown(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "tenant_id"}


class BlobStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes, durable: bool = True) -> None: ...

    def put_many(self, writes: list[tuple[str, bytes]], durable: bool = True) -> None:
        """Write every (key, bytes); all are written when it returns, in no promised order."""
        ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...


class LocalBlobs:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise AssetNotFound("no such asset")
        return path

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes, durable: bool = True) -> None:
        atomic_write(self._path(key), data, durable)

    def put_many(self, writes: list[tuple[str, bytes]], durable: bool = True) -> None:
        for key, data in writes:  # a local write is mostly Python work: threads would only share the GIL
            self.put(key, data, durable)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))


class S3Blobs:
    def __init__(self, url: str, endpoint_url: str | None, region: str | None):
        from service.s3client import make_client

        bucket, _, prefix = url[5:].partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = make_client(endpoint_url, region, read_timeout=30)
        self._writers: ThreadPoolExecutor | None = None  # put_many's concurrent PUTs, made on first use
        self._writers_lock = threading.Lock()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise AdapterUnavailable("the asset store cannot be read right now", code="asset_store_unavailable") from None
        except BotoCoreError:
            raise AdapterUnavailable("the asset store cannot be reached right now", code="asset_store_unavailable") from None

    def put(self, key: str, data: bytes, durable: bool = True) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (BotoCoreError, ClientError):
            raise AdapterUnavailable("the asset store cannot be written right now", code="asset_store_unavailable") from None

    def put_many(self, writes: list[tuple[str, bytes]], durable: bool = True) -> None:
        """The PUTs at once (a boto3 client is thread-safe; its pool holds 10 connections): a
        request that keeps several objects waits one round trip to S3, not one per object."""
        if len(writes) < 2:
            for key, data in writes:
                self.put(key, data, durable)
            return
        with self._writers_lock:
            if self._writers is None:
                self._writers = ThreadPoolExecutor(max_workers=PUT_WORKERS, thread_name_prefix="s3-put")
        pending = [self._writers.submit(self.put, key, data, durable) for key, data in writes]
        for future in pending:
            future.result()  # every write finished, or the first failure (asset_store_unavailable) raised

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def keys(self, prefix: str) -> list[str]:
        found, token = [], None
        while True:
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(prefix),
                                               **({"ContinuationToken": token} if token else {}))
            found += [o["Key"][len(self.prefix) + 1:] if self.prefix else o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]


def garment_key(tenant_id: str, asset_id: str) -> str:
    """Where a listed garment's record lives (`service.assets.garment_list`), beside its asset."""
    return f"garments/{tenant_id}/{asset_id}.json"


class AssetStore:
    """Assets of each tenant, content-addressed: uploading the same bytes twice stores them once."""

    def __init__(self, blobs: BlobStore):
        self.blobs = blobs

    @staticmethod
    def _key(tenant_id: str, asset_id: str) -> str:
        if not TENANT.fullmatch(tenant_id or "") or not ASSET_ID.fullmatch(asset_id or ""):
            raise AssetNotFound(f"no asset {asset_id!r}", field="asset_id")
        return f"assets/{tenant_id}/{asset_id}"

    def put(self, info: AssetInfo, data: bytes, durable: bool = True) -> AssetInfo:
        existing = self.info(info.tenant_id, info.asset_id, missing_ok=True)
        if existing is not None:
            return existing
        for key, value in self.writes(info, data):  # the bytes before the record that makes them visible
            self.blobs.put(key, value, durable)
        return info

    def writes(self, info: AssetInfo, data: bytes) -> list[tuple[str, bytes]]:
        """The objects of one asset, bytes then record, for a caller that writes them together
        with others (`BlobStore.put_many`) and answers only once all are written."""
        key = self._key(info.tenant_id, info.asset_id)
        return [(key, data), (key + ".json", json.dumps(asdict(info), sort_keys=True).encode())]

    def info(self, tenant_id: str, asset_id: str, *, missing_ok: bool = False) -> AssetInfo | None:
        raw = self.blobs.get(self._key(tenant_id, asset_id) + ".json")
        if raw is None:
            if missing_ok:
                return None
            raise AssetNotFound(f"no asset {asset_id!r}", field="asset_id")
        return AssetInfo(**json.loads(raw))

    def read(self, tenant_id: str, asset_id: str) -> tuple[AssetInfo, bytes]:
        info = self.info(tenant_id, asset_id)
        data = self.blobs.get(self._key(tenant_id, asset_id))
        if data is None or hashlib.sha256(data).hexdigest() != asset_id:
            raise AdapterUnavailable(f"asset {asset_id} is missing or damaged in the store", code="asset_unavailable")
        return info, data

    def purge(self, older_than: timedelta, now: datetime | None = None) -> int:
        """Delete assets created before now - older_than (the job-retention rule), and a
        deleted garment's record in its tenant's garment list."""
        cutoff = (now or datetime.now(timezone.utc)) - older_than
        removed = 0
        for key in self.blobs.keys("assets/"):
            if not key.endswith(".json"):
                continue
            raw = self.blobs.get(key)
            if raw is None:
                continue
            created = datetime.fromisoformat(json.loads(raw)["created_at"])
            if created < cutoff:
                self.blobs.delete(key[: -len(".json")])
                self.blobs.delete(key)
                _, tenant_id, asset_id = key[: -len(".json")].split("/", 2)
                self.blobs.delete(garment_key(tenant_id, asset_id))  # off the garment list with it
                removed += 1
        return removed


def open_asset_store(settings) -> AssetStore:
    """Local under $ATELIER_HOME/assets, or beside an S3 adapter store (prefix `<store>-assets`)."""
    target = settings.asset_store
    if target == "local":
        return AssetStore(LocalBlobs(settings.home))
    return AssetStore(S3Blobs(target, settings.s3_endpoint_url, settings.s3_region))
