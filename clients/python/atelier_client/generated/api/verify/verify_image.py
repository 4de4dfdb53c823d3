from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.verify_image_files_body import VerifyImageFilesBody
from ...models.verify_response import VerifyResponse
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    *,
    body: File | VerifyImageFilesBody | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/verify",
    }

    if isinstance(body, File):
        _kwargs["content"] = body.payload
        headers["Content-Type"] = "image/png"
    if isinstance(body, File):
        _kwargs["content"] = body.payload
        headers["Content-Type"] = "image/jpeg"
    if isinstance(body, File):
        _kwargs["content"] = body.payload
        headers["Content-Type"] = "image/webp"
    if isinstance(body, VerifyImageFilesBody):
        _kwargs["files"] = body.to_multipart()

        headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | VerifyResponse | None:
    if response.status_code == 200:
        response_200 = VerifyResponse.from_dict(response.json())

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

    if response.status_code == 411:
        response_411 = ErrorBody.from_dict(response.json())

        return response_411

    if response.status_code == 413:
        response_413 = ErrorBody.from_dict(response.json())

        return response_413

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
) -> Response[ErrorBody | VerifyResponse]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: File | VerifyImageFilesBody | Unset = UNSET,
) -> Response[ErrorBody | VerifyResponse]:
    """Verify

     The image's watermark id and C2PA state; whether this service made it, and its generation
    id (found through the watermark index); the generation's tenant and twin only for that
    tenant's keys and admin keys.

    Needs a key with the `verify` scope.

    Args:
        body (File):
        body (File):
        body (File):
        body (VerifyImageFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | VerifyResponse]
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
    body: File | VerifyImageFilesBody | Unset = UNSET,
) -> ErrorBody | VerifyResponse | None:
    """Verify

     The image's watermark id and C2PA state; whether this service made it, and its generation
    id (found through the watermark index); the generation's tenant and twin only for that
    tenant's keys and admin keys.

    Needs a key with the `verify` scope.

    Args:
        body (File):
        body (File):
        body (File):
        body (VerifyImageFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | VerifyResponse
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: File | VerifyImageFilesBody | Unset = UNSET,
) -> Response[ErrorBody | VerifyResponse]:
    """Verify

     The image's watermark id and C2PA state; whether this service made it, and its generation
    id (found through the watermark index); the generation's tenant and twin only for that
    tenant's keys and admin keys.

    Needs a key with the `verify` scope.

    Args:
        body (File):
        body (File):
        body (File):
        body (VerifyImageFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | VerifyResponse]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: File | VerifyImageFilesBody | Unset = UNSET,
) -> ErrorBody | VerifyResponse | None:
    """Verify

     The image's watermark id and C2PA state; whether this service made it, and its generation
    id (found through the watermark index); the generation's tenant and twin only for that
    tenant's keys and admin keys.

    Needs a key with the `verify` scope.

    Args:
        body (File):
        body (File):
        body (File):
        body (VerifyImageFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | VerifyResponse
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
