from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.detect_image_files_body import DetectImageFilesBody
from ...models.detect_response import DetectResponse
from ...models.error_body import ErrorBody
from ...types import UNSET, File, Response, Unset


def _get_kwargs(
    *,
    body: File | DetectImageFilesBody | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/detect",
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
    if isinstance(body, DetectImageFilesBody):
        _kwargs["files"] = body.to_multipart()

        headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> DetectResponse | ErrorBody | None:
    if response.status_code == 200:
        response_200 = DetectResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = ErrorBody.from_dict(response.json())

        return response_400

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
) -> Response[DetectResponse | ErrorBody]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: File | DetectImageFilesBody | Unset = UNSET,
) -> Response[DetectResponse | ErrorBody]:
    """Detect

     Public, no key: whether the image carries Atelier's invisible watermark and a valid
    C2PA manifest signed by Atelier, and whether it is AI-generated, with the manifest's
    digital source type, training-mining assertion and licence assertion (opaque ids of what
    licensed it). Never a tenant, twin, person, generation or watermark id. Each address may check
    `ATELIER_DETECT_REQUESTS_PER_MINUTE`
    images a minute (429 before the body is read).

    Args:
        body (File):
        body (File):
        body (File):
        body (DetectImageFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DetectResponse | ErrorBody]
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
    client: AuthenticatedClient | Client,
    body: File | DetectImageFilesBody | Unset = UNSET,
) -> DetectResponse | ErrorBody | None:
    """Detect

     Public, no key: whether the image carries Atelier's invisible watermark and a valid
    C2PA manifest signed by Atelier, and whether it is AI-generated, with the manifest's
    digital source type, training-mining assertion and licence assertion (opaque ids of what
    licensed it). Never a tenant, twin, person, generation or watermark id. Each address may check
    `ATELIER_DETECT_REQUESTS_PER_MINUTE`
    images a minute (429 before the body is read).

    Args:
        body (File):
        body (File):
        body (File):
        body (DetectImageFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DetectResponse | ErrorBody
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: File | DetectImageFilesBody | Unset = UNSET,
) -> Response[DetectResponse | ErrorBody]:
    """Detect

     Public, no key: whether the image carries Atelier's invisible watermark and a valid
    C2PA manifest signed by Atelier, and whether it is AI-generated, with the manifest's
    digital source type, training-mining assertion and licence assertion (opaque ids of what
    licensed it). Never a tenant, twin, person, generation or watermark id. Each address may check
    `ATELIER_DETECT_REQUESTS_PER_MINUTE`
    images a minute (429 before the body is read).

    Args:
        body (File):
        body (File):
        body (File):
        body (DetectImageFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DetectResponse | ErrorBody]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: File | DetectImageFilesBody | Unset = UNSET,
) -> DetectResponse | ErrorBody | None:
    """Detect

     Public, no key: whether the image carries Atelier's invisible watermark and a valid
    C2PA manifest signed by Atelier, and whether it is AI-generated, with the manifest's
    digital source type, training-mining assertion and licence assertion (opaque ids of what
    licensed it). Never a tenant, twin, person, generation or watermark id. Each address may check
    `ATELIER_DETECT_REQUESTS_PER_MINUTE`
    images a minute (429 before the body is read).

    Args:
        body (File):
        body (File):
        body (File):
        body (DetectImageFilesBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DetectResponse | ErrorBody
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
