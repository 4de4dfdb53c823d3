from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.add_asset_files_body import AddAssetFilesBody
from ...models.add_asset_json_body import AddAssetJsonBody
from ...models.asset_out import AssetOut
from ...models.error_body import ErrorBody
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: AddAssetFilesBody | AddAssetJsonBody | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/assets",
    }

    if isinstance(body, AddAssetFilesBody):
        _kwargs["files"] = body.to_multipart()

        headers["Content-Type"] = "multipart/form-data; boundary=+++"
    if isinstance(body, AddAssetJsonBody):
        _kwargs["json"] = body.to_dict()

        headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> AssetOut | ErrorBody | None:
    if response.status_code == 201:
        response_201 = AssetOut.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = ErrorBody.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorBody.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ErrorBody.from_dict(response.json())

        return response_403

    if response.status_code == 411:
        response_411 = ErrorBody.from_dict(response.json())

        return response_411

    if response.status_code == 413:
        response_413 = ErrorBody.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = ErrorBody.from_dict(response.json())

        return response_415

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
) -> Response[AssetOut | ErrorBody]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: AddAssetFilesBody | AddAssetJsonBody | Unset = UNSET,
) -> Response[AssetOut | ErrorBody]:
    """Add Asset

     Add an input image for generations of this tenant: a garment (packshot, flat-lay, ghost
    mannequin), a pose image, a mask or a source photo. Stored once per sha256; its id is the
    sha256. URLs are fetched through the SSRF guard (public https addresses only).

    Needs a key with the `generate` scope.

    Args:
        body (AddAssetFilesBody):
        body (AddAssetJsonBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AssetOut | ErrorBody]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: AddAssetFilesBody | AddAssetJsonBody | Unset = UNSET,
) -> AssetOut | ErrorBody | None:
    """Add Asset

     Add an input image for generations of this tenant: a garment (packshot, flat-lay, ghost
    mannequin), a pose image, a mask or a source photo. Stored once per sha256; its id is the
    sha256. URLs are fetched through the SSRF guard (public https addresses only).

    Needs a key with the `generate` scope.

    Args:
        body (AddAssetFilesBody):
        body (AddAssetJsonBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AssetOut | ErrorBody
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: AddAssetFilesBody | AddAssetJsonBody | Unset = UNSET,
) -> Response[AssetOut | ErrorBody]:
    """Add Asset

     Add an input image for generations of this tenant: a garment (packshot, flat-lay, ghost
    mannequin), a pose image, a mask or a source photo. Stored once per sha256; its id is the
    sha256. URLs are fetched through the SSRF guard (public https addresses only).

    Needs a key with the `generate` scope.

    Args:
        body (AddAssetFilesBody):
        body (AddAssetJsonBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[AssetOut | ErrorBody]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: AddAssetFilesBody | AddAssetJsonBody | Unset = UNSET,
) -> AssetOut | ErrorBody | None:
    """Add Asset

     Add an input image for generations of this tenant: a garment (packshot, flat-lay, ghost
    mannequin), a pose image, a mask or a source photo. Stored once per sha256; its id is the
    sha256. URLs are fetched through the SSRF guard (public https addresses only).

    Needs a key with the `generate` scope.

    Args:
        body (AddAssetFilesBody):
        body (AddAssetJsonBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        AssetOut | ErrorBody
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
