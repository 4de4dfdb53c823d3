from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.twin_list_response import TwinListResponse
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    cache: bool | Unset = False,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["cache"] = cache

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/admin/twins/list",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | TwinListResponse | None:
    if response.status_code == 200:
        response_200 = TwinListResponse.from_dict(response.json())

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
) -> Response[ErrorBody | TwinListResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    cache: bool | Unset = False,
) -> Response[ErrorBody | TwinListResponse]:
    """List Twins

     Every twin that may be served; with `cache=true`, one renderer worker's cache state.

    Needs a key with the `admin` scope.

    Args:
        cache (bool | Unset): Also ask a renderer worker which cache tiers hold each adapter
            (starts one if none is running). Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | TwinListResponse]
    """

    kwargs = _get_kwargs(
        cache=cache,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    cache: bool | Unset = False,
) -> ErrorBody | TwinListResponse | None:
    """List Twins

     Every twin that may be served; with `cache=true`, one renderer worker's cache state.

    Needs a key with the `admin` scope.

    Args:
        cache (bool | Unset): Also ask a renderer worker which cache tiers hold each adapter
            (starts one if none is running). Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | TwinListResponse
    """

    return sync_detailed(
        client=client,
        cache=cache,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    cache: bool | Unset = False,
) -> Response[ErrorBody | TwinListResponse]:
    """List Twins

     Every twin that may be served; with `cache=true`, one renderer worker's cache state.

    Needs a key with the `admin` scope.

    Args:
        cache (bool | Unset): Also ask a renderer worker which cache tiers hold each adapter
            (starts one if none is running). Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | TwinListResponse]
    """

    kwargs = _get_kwargs(
        cache=cache,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    cache: bool | Unset = False,
) -> ErrorBody | TwinListResponse | None:
    """List Twins

     Every twin that may be served; with `cache=true`, one renderer worker's cache state.

    Needs a key with the `admin` scope.

    Args:
        cache (bool | Unset): Also ask a renderer worker which cache tiers hold each adapter
            (starts one if none is running). Default: False.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | TwinListResponse
    """

    return (
        await asyncio_detailed(
            client=client,
            cache=cache,
        )
    ).parsed
