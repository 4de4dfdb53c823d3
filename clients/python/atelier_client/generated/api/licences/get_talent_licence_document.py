from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.licence_document import LicenceDocument
from ...types import UNSET, Response


def _get_kwargs(
    *,
    licence_id: str,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["licence_id"] = licence_id

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/talent/licences/document",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | LicenceDocument | None:
    if response.status_code == 200:
        response_200 = LicenceDocument.from_dict(response.json())

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ErrorBody | LicenceDocument]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    licence_id: str,
) -> Response[ErrorBody | LicenceDocument]:
    """Person Document

     A signed licence of one of this person's twins.

    Needs a key with the `talent` scope.

    Args:
        licence_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | LicenceDocument]
    """

    kwargs = _get_kwargs(
        licence_id=licence_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    licence_id: str,
) -> ErrorBody | LicenceDocument | None:
    """Person Document

     A signed licence of one of this person's twins.

    Needs a key with the `talent` scope.

    Args:
        licence_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | LicenceDocument
    """

    return sync_detailed(
        client=client,
        licence_id=licence_id,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    licence_id: str,
) -> Response[ErrorBody | LicenceDocument]:
    """Person Document

     A signed licence of one of this person's twins.

    Needs a key with the `talent` scope.

    Args:
        licence_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | LicenceDocument]
    """

    kwargs = _get_kwargs(
        licence_id=licence_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    licence_id: str,
) -> ErrorBody | LicenceDocument | None:
    """Person Document

     A signed licence of one of this person's twins.

    Needs a key with the `talent` scope.

    Args:
        licence_id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | LicenceDocument
    """

    return (
        await asyncio_detailed(
            client=client,
            licence_id=licence_id,
        )
    ).parsed
