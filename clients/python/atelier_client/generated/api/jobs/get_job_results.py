from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.job_page import JobPage
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    job_id: None | str | Unset = UNSET,
    task_id: None | str | Unset = UNSET,
    offset: int | Unset = 0,
    limit: int | Unset = 20,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_job_id: None | str | Unset
    if isinstance(job_id, Unset):
        json_job_id = UNSET
    else:
        json_job_id = job_id
    params["job_id"] = json_job_id

    json_task_id: None | str | Unset
    if isinstance(task_id, Unset):
        json_task_id = UNSET
    else:
        json_task_id = task_id
    params["task_id"] = json_task_id

    params["offset"] = offset

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/jobs/get",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ErrorBody | JobPage | None:
    if response.status_code == 200:
        response_200 = JobPage.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = ErrorBody.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ErrorBody.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = ErrorBody.from_dict(response.json())

        return response_404

    if response.status_code == 422:
        response_422 = ErrorBody.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = ErrorBody.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = ErrorBody.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = ErrorBody.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[ErrorBody | JobPage]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    job_id: None | str | Unset = UNSET,
    task_id: None | str | Unset = UNSET,
    offset: int | Unset = 0,
    limit: int | Unset = 20,
) -> Response[ErrorBody | JobPage]:
    """Results

     One page of a job's items, each with its images as URLs (presigned S3, or
    `/v1/jobs/image` for inline delivery); `next_offset` is null on the last page.

    Needs a key with the `generate` scope.

    Args:
        job_id (None | str | Unset): The job's id (32 hex characters).
        task_id (None | str | Unset): Alias of job_id (BentoML's task naming).
        offset (int | Unset): First item of the page. Default: 0.
        limit (int | Unset): Items per page. Default: 20.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | JobPage]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        task_id=task_id,
        offset=offset,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    job_id: None | str | Unset = UNSET,
    task_id: None | str | Unset = UNSET,
    offset: int | Unset = 0,
    limit: int | Unset = 20,
) -> ErrorBody | JobPage | None:
    """Results

     One page of a job's items, each with its images as URLs (presigned S3, or
    `/v1/jobs/image` for inline delivery); `next_offset` is null on the last page.

    Needs a key with the `generate` scope.

    Args:
        job_id (None | str | Unset): The job's id (32 hex characters).
        task_id (None | str | Unset): Alias of job_id (BentoML's task naming).
        offset (int | Unset): First item of the page. Default: 0.
        limit (int | Unset): Items per page. Default: 20.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | JobPage
    """

    return sync_detailed(
        client=client,
        job_id=job_id,
        task_id=task_id,
        offset=offset,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    job_id: None | str | Unset = UNSET,
    task_id: None | str | Unset = UNSET,
    offset: int | Unset = 0,
    limit: int | Unset = 20,
) -> Response[ErrorBody | JobPage]:
    """Results

     One page of a job's items, each with its images as URLs (presigned S3, or
    `/v1/jobs/image` for inline delivery); `next_offset` is null on the last page.

    Needs a key with the `generate` scope.

    Args:
        job_id (None | str | Unset): The job's id (32 hex characters).
        task_id (None | str | Unset): Alias of job_id (BentoML's task naming).
        offset (int | Unset): First item of the page. Default: 0.
        limit (int | Unset): Items per page. Default: 20.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | JobPage]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        task_id=task_id,
        offset=offset,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    job_id: None | str | Unset = UNSET,
    task_id: None | str | Unset = UNSET,
    offset: int | Unset = 0,
    limit: int | Unset = 20,
) -> ErrorBody | JobPage | None:
    """Results

     One page of a job's items, each with its images as URLs (presigned S3, or
    `/v1/jobs/image` for inline delivery); `next_offset` is null on the last page.

    Needs a key with the `generate` scope.

    Args:
        job_id (None | str | Unset): The job's id (32 hex characters).
        task_id (None | str | Unset): Alias of job_id (BentoML's task naming).
        offset (int | Unset): First item of the page. Default: 0.
        limit (int | Unset): Items per page. Default: 20.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | JobPage
    """

    return (
        await asyncio_detailed(
            client=client,
            job_id=job_id,
            task_id=task_id,
            offset=offset,
            limit=limit,
        )
    ).parsed
