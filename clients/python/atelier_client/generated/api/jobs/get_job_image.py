from http import HTTPStatus
from io import BytesIO
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    *,
    job_id: None | str | Unset = UNSET,
    task_id: None | str | Unset = UNSET,
    index: int,
    n: int | Unset = 0,
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

    params["index"] = index

    params["n"] = n

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/jobs/image",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | ErrorBody | File | None:
    if response.status_code == 200:
        response_200 = File(payload=BytesIO(response.content))

        return response_200

    if response.status_code == 307:
        response_307 = cast(Any, None)
        return response_307

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | ErrorBody | File]:
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
    index: int,
    n: int | Unset = 0,
) -> Response[Any | ErrorBody | File]:
    """Image

     One image of a finished item: its bytes (inline delivery) or a redirect to its S3 URL.

    Needs a key with the `generate` scope.

    Args:
        job_id (None | str | Unset): The job's id (32 hex characters).
        task_id (None | str | Unset): Alias of job_id (BentoML's task naming).
        index (int):
        n (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorBody | File]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        task_id=task_id,
        index=index,
        n=n,
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
    index: int,
    n: int | Unset = 0,
) -> Any | ErrorBody | File | None:
    """Image

     One image of a finished item: its bytes (inline delivery) or a redirect to its S3 URL.

    Needs a key with the `generate` scope.

    Args:
        job_id (None | str | Unset): The job's id (32 hex characters).
        task_id (None | str | Unset): Alias of job_id (BentoML's task naming).
        index (int):
        n (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorBody | File
    """

    return sync_detailed(
        client=client,
        job_id=job_id,
        task_id=task_id,
        index=index,
        n=n,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    job_id: None | str | Unset = UNSET,
    task_id: None | str | Unset = UNSET,
    index: int,
    n: int | Unset = 0,
) -> Response[Any | ErrorBody | File]:
    """Image

     One image of a finished item: its bytes (inline delivery) or a redirect to its S3 URL.

    Needs a key with the `generate` scope.

    Args:
        job_id (None | str | Unset): The job's id (32 hex characters).
        task_id (None | str | Unset): Alias of job_id (BentoML's task naming).
        index (int):
        n (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | ErrorBody | File]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        task_id=task_id,
        index=index,
        n=n,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    job_id: None | str | Unset = UNSET,
    task_id: None | str | Unset = UNSET,
    index: int,
    n: int | Unset = 0,
) -> Any | ErrorBody | File | None:
    """Image

     One image of a finished item: its bytes (inline delivery) or a redirect to its S3 URL.

    Needs a key with the `generate` scope.

    Args:
        job_id (None | str | Unset): The job's id (32 hex characters).
        task_id (None | str | Unset): Alias of job_id (BentoML's task naming).
        index (int):
        n (int | Unset):  Default: 0.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | ErrorBody | File
    """

    return (
        await asyncio_detailed(
            client=client,
            job_id=job_id,
            task_id=task_id,
            index=index,
            n=n,
        )
    ).parsed
