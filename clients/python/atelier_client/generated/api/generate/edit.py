from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.edit_request import EditRequest
from ...models.error_body import ErrorBody
from ...models.generate_response import GenerateResponse
from ...types import Response


def _get_kwargs(
    *,
    body: EditRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/edit",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | GenerateResponse | None:
    if response.status_code == 200:
        response_200 = GenerateResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorBody.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorBody.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = ErrorBody.from_dict(response.json())

        return response_403

    if response.status_code == 404:
        response_404 = ErrorBody.from_dict(response.json())

        return response_404

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
) -> Response[ErrorBody | GenerateResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: EditRequest,
) -> Response[ErrorBody | GenerateResponse]:
    """Edit

     Repaint the mask's white area of a photo of the twin (re-dress it with garments and/or a
    prompt), or with `invert_mask` everything outside a person mask (a background swap). The
    source is an earlier generation of this tenant or an uploaded photo (`kind: source`); the
    pixels outside the repainted area are kept. The C2PA manifest names the source as an
    ingredient; the watermark is embedded afresh. The twin's consent is checked before any
    asset is read; the source must be this tenant's generation of the same twin (an uploaded
    photo only where an operator allows the tenant).

    Needs a key with the `generate` scope.

    Args:
        body (EditRequest): Body of `POST /v1/edit`: repaint the mask's area of a photo of the
            twin (re-dress), or,
            with `invert_mask`, everything outside a person mask (a background swap).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | GenerateResponse]
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
    body: EditRequest,
) -> ErrorBody | GenerateResponse | None:
    """Edit

     Repaint the mask's white area of a photo of the twin (re-dress it with garments and/or a
    prompt), or with `invert_mask` everything outside a person mask (a background swap). The
    source is an earlier generation of this tenant or an uploaded photo (`kind: source`); the
    pixels outside the repainted area are kept. The C2PA manifest names the source as an
    ingredient; the watermark is embedded afresh. The twin's consent is checked before any
    asset is read; the source must be this tenant's generation of the same twin (an uploaded
    photo only where an operator allows the tenant).

    Needs a key with the `generate` scope.

    Args:
        body (EditRequest): Body of `POST /v1/edit`: repaint the mask's area of a photo of the
            twin (re-dress), or,
            with `invert_mask`, everything outside a person mask (a background swap).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | GenerateResponse
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: EditRequest,
) -> Response[ErrorBody | GenerateResponse]:
    """Edit

     Repaint the mask's white area of a photo of the twin (re-dress it with garments and/or a
    prompt), or with `invert_mask` everything outside a person mask (a background swap). The
    source is an earlier generation of this tenant or an uploaded photo (`kind: source`); the
    pixels outside the repainted area are kept. The C2PA manifest names the source as an
    ingredient; the watermark is embedded afresh. The twin's consent is checked before any
    asset is read; the source must be this tenant's generation of the same twin (an uploaded
    photo only where an operator allows the tenant).

    Needs a key with the `generate` scope.

    Args:
        body (EditRequest): Body of `POST /v1/edit`: repaint the mask's area of a photo of the
            twin (re-dress), or,
            with `invert_mask`, everything outside a person mask (a background swap).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | GenerateResponse]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: EditRequest,
) -> ErrorBody | GenerateResponse | None:
    """Edit

     Repaint the mask's white area of a photo of the twin (re-dress it with garments and/or a
    prompt), or with `invert_mask` everything outside a person mask (a background swap). The
    source is an earlier generation of this tenant or an uploaded photo (`kind: source`); the
    pixels outside the repainted area are kept. The C2PA manifest names the source as an
    ingredient; the watermark is embedded afresh. The twin's consent is checked before any
    asset is read; the source must be this tenant's generation of the same twin (an uploaded
    photo only where an operator allows the tenant).

    Needs a key with the `generate` scope.

    Args:
        body (EditRequest): Body of `POST /v1/edit`: repaint the mask's area of a photo of the
            twin (re-dress), or,
            with `invert_mask`, everything outside a person mask (a background swap).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | GenerateResponse
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
