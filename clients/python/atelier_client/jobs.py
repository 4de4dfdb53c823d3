"""Catalogue jobs end to end: submit, wait, page through the results, download the images.

Owns: the flow docs/INTEGRATION.md describes, over the generated functions: `submit_job`
(with the `Idempotency-Key` that makes a resend safe), `wait_for_job` (polls the status until
it is `completed`, `failed` or `canceled`), `iter_results` (follows `next_offset` page by page),
`download` (an inline image through the gateway with the key; an S3 image from its presigned
URL, without the key; its sha256 checked) and `run_job`, all four in order. Must never send
the API key anywhere but the gateway, and never wait except through the given `sleep`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from .errors import ApiError, unwrap
from .generated import AuthenticatedClient
from .generated.api.jobs import get_job_results, get_job_status
from .generated.api.jobs import submit_job as submit_job_op
from .generated.models import JobAccepted, JobImage, JobItemResult, JobSubmitBody, JobSummary

TERMINAL = ("completed", "failed", "canceled")


class JobTimeout(TimeoutError):
    """The job did not finish in time; `status` is the last one seen (poll it again later)."""

    def __init__(self, job_id: str, status: JobSummary | None):
        super().__init__(f"job {job_id} is still {status.status if status else 'unknown'}")
        self.job_id, self.status = job_id, status


class DownloadError(Exception):
    """An image that could not be fetched, or whose bytes do not match its sha256."""


def submit_job(client: AuthenticatedClient, body: JobSubmitBody | Mapping[str, Any], *,
               idempotency_key: str | None = None) -> JobAccepted:
    """Queue a job (202). Send an `idempotency_key` derived from your own batch id: a resend
    with the same key and body returns the same job instead of queueing it twice."""
    if not isinstance(body, JobSubmitBody):
        body = JobSubmitBody.from_dict(dict(body))
    kwargs = {} if idempotency_key is None else {"idempotency_key": idempotency_key}
    return unwrap(submit_job_op.sync_detailed(client=client, body=body, **kwargs))


def wait_for_job(client: AuthenticatedClient, job_id: str, *, timeout_s: float = 600.0, poll_s: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 on_status: Callable[[JobSummary], None] | None = None) -> JobSummary:
    """Poll the job's status until it ends; `completed` means at least one item is done (check
    `items_failed`). Raises JobTimeout after `timeout_s`."""
    deadline = clock() + timeout_s
    status: JobSummary | None = None
    while True:
        status = unwrap(get_job_status.sync_detailed(client=client, job_id=job_id))
        if on_status is not None:
            on_status(status)
        if status.status in TERMINAL:
            return status
        if clock() >= deadline:
            raise JobTimeout(job_id, status)
        sleep(poll_s)


def iter_results(client: AuthenticatedClient, job_id: str, *, page_size: int = 100) -> Iterator[JobItemResult]:
    """Every item of the job, in index order, page after page (partial while the job runs)."""
    offset: int | None = 0
    while offset is not None:
        page = unwrap(get_job_results.sync_detailed(client=client, job_id=job_id, offset=offset, limit=page_size))
        yield from page.items
        offset = page.next_offset if isinstance(page.next_offset, int) else None


def download(client: AuthenticatedClient, image: JobImage, *, timeout_s: float = 120.0) -> bytes:
    """One image's bytes, checked against its sha256."""
    url = image.url if isinstance(image.url, str) else None
    if not url:
        raise DownloadError(f"image {image.n} has no URL")
    if url.startswith("/"):  # inline delivery: the gateway's /v1/jobs/image, with the key
        response = client.get_httpx_client().get(url, timeout=timeout_s)
        if response.status_code != 200:
            raise ApiError.from_answer(response.status_code, response.content, response.headers)
    else:  # S3 delivery: a presigned URL, never with the key
        response = httpx.get(url, timeout=timeout_s, follow_redirects=False)
        if response.status_code != 200:
            raise DownloadError(f"image {image.n}: {response.status_code} from its presigned URL")
    data = response.content
    if hashlib.sha256(data).hexdigest() != image.sha256:
        raise DownloadError(f"image {image.n}: its bytes do not match its sha256")
    return data


def run_job(client: AuthenticatedClient, body: JobSubmitBody | Mapping[str, Any], *, idempotency_key: str | None = None,
            timeout_s: float = 600.0, poll_s: float = 2.0, sleep: Callable[[float], None] = time.sleep,
            ) -> tuple[JobSummary, list[tuple[JobItemResult, JobImage, bytes]]]:
    """Submit, wait, then download every image: the final status, and (item, image, bytes) per image."""
    accepted = submit_job(client, body, idempotency_key=idempotency_key)
    status = wait_for_job(client, accepted.job_id, timeout_s=timeout_s, poll_s=poll_s, sleep=sleep)
    images = []
    for item in iter_results(client, accepted.job_id):
        for image in item.images if isinstance(item.images, list) else []:  # failed items have none
            images.append((item, image, download(client, image)))
    return status, images
