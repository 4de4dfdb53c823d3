"""S3 clients for every S3-compatible endpoint Atelier talks to (adapter store, audit shipper).

Owns: client timeouts and retries (a dead endpoint fails in seconds, the caller decides what
to do next), path-style addressing (works with every S3-compatible server, no DNS per
bucket), and the credential-free form of an endpoint for messages. Credentials always come
from the standard AWS chain, never from Atelier's settings. Must never log a secret.
"""

from __future__ import annotations

from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 2
MAX_ATTEMPTS = 2


def make_client(endpoint_url: str | None, region: str | None, read_timeout: float):
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def public_endpoint(endpoint_url: str | None) -> str | None:
    """The endpoint as scheme://host:port, without any user:password part."""
    if not endpoint_url:
        return None
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
