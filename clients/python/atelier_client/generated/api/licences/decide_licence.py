from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.licence_decision_body import LicenceDecisionBody
from ...models.licence_out import LicenceOut
from ...types import Response


def _get_kwargs(
    *,
    body: LicenceDecisionBody,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/talent/licences/decide",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ErrorBody | LicenceOut | None:
    if response.status_code == 200:
        response_200 = LicenceOut.from_dict(response.json())

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

    if response.status_code == 409:
        response_409 = ErrorBody.from_dict(response.json())

        return response_409

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
) -> Response[ErrorBody | LicenceOut]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: LicenceDecisionBody,
) -> Response[ErrorBody | LicenceOut]:
    """Decide

     Accept or decline a requested licence with a signature by the key registered for this
    key's role. Accepted once the person (or their representative) accepts and, for a minor,
    the guardian too; declined by any decline.

    Needs a key with the `talent` scope.

    Args:
        body (LicenceDecisionBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | LicenceOut]
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
    body: LicenceDecisionBody,
) -> ErrorBody | LicenceOut | None:
    """Decide

     Accept or decline a requested licence with a signature by the key registered for this
    key's role. Accepted once the person (or their representative) accepts and, for a minor,
    the guardian too; declined by any decline.

    Needs a key with the `talent` scope.

    Args:
        body (LicenceDecisionBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | LicenceOut
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: LicenceDecisionBody,
) -> Response[ErrorBody | LicenceOut]:
    """Decide

     Accept or decline a requested licence with a signature by the key registered for this
    key's role. Accepted once the person (or their representative) accepts and, for a minor,
    the guardian too; declined by any decline.

    Needs a key with the `talent` scope.

    Args:
        body (LicenceDecisionBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | LicenceOut]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: LicenceDecisionBody,
) -> ErrorBody | LicenceOut | None:
    """Decide

     Accept or decline a requested licence with a signature by the key registered for this
    key's role. Accepted once the person (or their representative) accepts and, for a minor,
    the guardian too; declined by any decline.

    Needs a key with the `talent` scope.

    Args:
        body (LicenceDecisionBody):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | LicenceOut
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
