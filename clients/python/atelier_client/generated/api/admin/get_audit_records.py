from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.audit_records import AuditRecords
from ...models.error_body import ErrorBody
from ...types import UNSET, Response


def _get_kwargs(
    *,
    generation_id: str,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["generation_id"] = generation_id

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/admin/audit/records",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> AuditRecords | ErrorBody | None:
    if response.status_code == 200:
        response_200 = AuditRecords.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = ErrorBody.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ErrorBody.from_dict(response.json())

        return response_403

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
) -> Response[AuditRecords | ErrorBody]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    generation_id: str,
) -> Response[AuditRecords | ErrorBody]:
    """Records

     A generation's audit records (its generation record, and verify or replay records naming it),
    in sequence order, each with its hash in the chain.

    Needs a key with the `admin` scope.

    Args:
        generation_id (str): The generation's id.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AuditRecords | ErrorBody]
    """

    kwargs = _get_kwargs(
        generation_id=generation_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    generation_id: str,
) -> AuditRecords | ErrorBody | None:
    """Records

     A generation's audit records (its generation record, and verify or replay records naming it),
    in sequence order, each with its hash in the chain.

    Needs a key with the `admin` scope.

    Args:
        generation_id (str): The generation's id.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AuditRecords | ErrorBody
    """

    return sync_detailed(
        client=client,
        generation_id=generation_id,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    generation_id: str,
) -> Response[AuditRecords | ErrorBody]:
    """Records

     A generation's audit records (its generation record, and verify or replay records naming it),
    in sequence order, each with its hash in the chain.

    Needs a key with the `admin` scope.

    Args:
        generation_id (str): The generation's id.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AuditRecords | ErrorBody]
    """

    kwargs = _get_kwargs(
        generation_id=generation_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    generation_id: str,
) -> AuditRecords | ErrorBody | None:
    """Records

     A generation's audit records (its generation record, and verify or replay records naming it),
    in sequence order, each with its hash in the chain.

    Needs a key with the `admin` scope.

    Args:
        generation_id (str): The generation's id.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AuditRecords | ErrorBody
    """

    return (
        await asyncio_detailed(
            client=client,
            generation_id=generation_id,
        )
    ).parsed
