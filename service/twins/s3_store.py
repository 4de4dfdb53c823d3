"""Adapter files in an S3 bucket (AWS or any S3-compatible server): bytes by key, under a prefix.

Owns: the S3 backend of the AdapterStore interface: object naming (prefix + "/" + key), the
client's timeouts and retries, the size limit on reads, and turning every S3 or network failure
into AdapterUnavailable. Keys are validated exactly as the local store validates them, before any
request is sent. Credentials come from the standard AWS chain (environment, profile, role), never
from Atelier's settings. Must never put credentials in an error or a log line, read an object
larger than MAX_ADAPTER_BYTES, wait minutes on an unreachable store, or parse what it reads
(verifying and loading adapters is `store.parse_adapter`'s job).
"""

from __future__ import annotations

from service.config import ConfigError
from service.errors import AdapterUnavailable, InvalidRequest
from service.s3client import make_client, public_endpoint
from service.twins.keys import MAX_ADAPTER_BYTES, check_adapter_key

# An unreachable or hung store fails within seconds (service.s3client: short connect timeout,
# two attempts). The read timeout bounds one wait for bytes on the socket, not the whole
# download of a large adapter.
READ_TIMEOUT_S = 5


class S3AdapterStore:
    """Adapter files as objects in one bucket, under an optional key prefix."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, client=None):
        if not bucket or "/" in bucket:
            raise ConfigError(f"S3 bucket name must be non-empty and contain no '/', got {bucket!r}")
        self.bucket = bucket
        self.prefix = "/".join(part for part in (prefix or "").split("/") if part)
        self.endpoint = public_endpoint(endpoint_url)
        self.client = client if client is not None else make_client(endpoint_url, region, READ_TIMEOUT_S)

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None, region: str | None = None) -> "S3AdapterStore":
        """A store from `s3://bucket[/prefix]`."""
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise ConfigError(f"an S3 adapter store URL looks like 's3://bucket[/prefix]', got {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        return cls(bucket, prefix, endpoint_url=endpoint_url, region=region)

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def object_key(self, key: str) -> str:
        """The S3 object key of adapter `key`; refuses keys that are not plain .safetensors paths."""
        try:
            check_adapter_key(key)
        except InvalidRequest as exc:
            raise AdapterUnavailable(exc.message) from None
        return f"{self.prefix}/{key}" if self.prefix else key

    def read_bytes(self, key: str) -> bytes:
        object_key = self.object_key(key)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
            body = response["Body"]
            try:
                if response.get("ContentLength", 0) > MAX_ADAPTER_BYTES:
                    raise AdapterUnavailable(f"adapter {key!r} is larger than {MAX_ADAPTER_BYTES} bytes")
                # Never trust the header alone: read at most one byte past the limit.
                data = body.read(MAX_ADAPTER_BYTES + 1)
            finally:
                body.close()
        except ClientError as exc:
            raise self._client_error(exc, key, "read from") from None
        except (BotoCoreError, OSError) as exc:
            raise self._unreachable(exc, key, "read from") from None
        if len(data) > MAX_ADAPTER_BYTES:
            raise AdapterUnavailable(f"adapter {key!r} is larger than {MAX_ADAPTER_BYTES} bytes")
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        """One PUT: S3 makes the object visible whole or not at all."""
        object_key = self.object_key(key)
        if len(data) > MAX_ADAPTER_BYTES:
            raise AdapterUnavailable(f"adapter {key!r} is larger than {MAX_ADAPTER_BYTES} bytes")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=object_key, Body=bytes(data))
        except ClientError as exc:
            raise self._client_error(exc, key, "written to") from None
        except (BotoCoreError, OSError) as exc:
            raise self._unreachable(exc, key, "written to") from None

    def delete(self, key: str) -> None:
        """Deleting a missing key is not an error (as with the local store)."""
        object_key = self.object_key(key)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if self._is_missing(exc):
                return
            raise self._client_error(exc, key, "deleted from") from None
        except (BotoCoreError, OSError) as exc:
            raise self._unreachable(exc, key, "deleted from") from None

    @staticmethod
    def _is_missing(exc) -> bool:
        """The object is not there (a missing bucket is a broken store, not a missing file)."""
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket")

    def _client_error(self, exc, key: str, action: str) -> AdapterUnavailable:
        # Only the error code and status: a server's message may echo request details.
        if self._is_missing(exc) and action == "read from":
            return AdapterUnavailable(f"adapter file {key!r} is missing from the store")
        code = exc.response.get("Error", {}).get("Code") or "unknown"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return AdapterUnavailable(
            f"adapter file {key!r} cannot be {action} the adapter store {self.describe()}: "
            f"S3 error {code} (HTTP {status})"
        )

    def _unreachable(self, exc, key: str, action: str) -> AdapterUnavailable:
        # The class name says what went wrong (EndpointConnectionError, ConnectTimeoutError,
        # NoCredentialsError, ...) without echoing anything the exception may carry.
        return AdapterUnavailable(
            f"adapter file {key!r} cannot be {action} the adapter store {self.describe()}: "
            f"the store is unreachable ({type(exc).__name__})"
        )
