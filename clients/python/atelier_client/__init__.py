"""Atelier's official Python client.

`atelier_client.generated` is generated from the API contract (clients/openapi.json) by
openapi-python-client (`make clients` regenerates it; never edit it by hand): one module per
operation, `sync`/`sync_detailed`/`asyncio`/`asyncio_detailed`, and typed models. The modules
beside it are the thin hand-written layer: `connect` (a client whose requests retry 429 and 503
after their `Retry-After`), `jobs` (submit, wait, page, download), `webhooks` (Standard Webhooks
verification) and `errors` (`ApiError`, `unwrap`). Must never hold generated code.
"""

from __future__ import annotations

import httpx

from .errors import ApiError, unwrap
from .generated import AuthenticatedClient, Client
from .jobs import DownloadError, JobTimeout, download, iter_results, run_job, submit_job, wait_for_job
from .retries import AsyncRetryTransport, RetryPolicy, RetryTransport, retry_after_s
from .webhooks import WebhookVerificationError, verify_webhook

__version__ = "0.1.0"


def connect(base_url: str, api_key: str, *, timeout_s: float = 120.0, retries: RetryPolicy | None = None,
            headers: dict[str, str] | None = None) -> AuthenticatedClient:
    """An authenticated client for `base_url` (e.g. "http://127.0.0.1:3000"), sending
    `Authorization: Bearer <api_key>`; every request (sync and async) retries 429/503 per `retries`."""
    policy = retries or RetryPolicy()
    sent = {**(headers or {}), "Authorization": f"Bearer {api_key}"}
    timeout = httpx.Timeout(timeout_s)
    client = AuthenticatedClient(base_url=base_url, token=api_key, timeout=timeout, headers=dict(headers or {}))
    client.set_httpx_client(httpx.Client(base_url=base_url, headers=sent, timeout=timeout,
                                         transport=RetryTransport(policy=policy)))
    client.set_async_httpx_client(httpx.AsyncClient(base_url=base_url, headers=sent, timeout=timeout,
                                                    transport=AsyncRetryTransport(policy=policy)))
    return client


__all__ = [
    "ApiError", "AsyncRetryTransport", "AuthenticatedClient", "Client", "DownloadError", "JobTimeout", "RetryPolicy",
    "RetryTransport", "WebhookVerificationError", "connect", "download", "iter_results", "retry_after_s", "run_job",
    "submit_job", "unwrap", "verify_webhook", "wait_for_job",
]
