from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.licence_list import LicenceList
from ...models.list_all_licences_status_type_0 import ListAllLicencesStatusType0
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    tenant_id: None | str | Unset = UNSET,
    twin_id: None | str | Unset = UNSET,
    status: ListAllLicencesStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 200,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_tenant_id: None | str | Unset
    if isinstance(tenant_id, Unset):
        json_tenant_id = UNSET
    else:
        json_tenant_id = tenant_id
    params["tenant_id"] = json_tenant_id

    json_twin_id: None | str | Unset
    if isinstance(twin_id, Unset):
        json_twin_id = UNSET
    else:
        json_twin_id = twin_id
    params["twin_id"] = json_twin_id

    json_status: None | str | Unset
    if isinstance(status, Unset):
        json_status = UNSET
    elif isinstance(status, ListAllLicencesStatusType0):
        json_status = status.value
    else:
        json_status = status
    params["status"] = json_status

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/admin/licences",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | LicenceList | None:
    if response.status_code == 200:
        response_200 = LicenceList.from_dict(response.json())

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
) -> Response[ErrorBody | LicenceList]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    tenant_id: None | str | Unset = UNSET,
    twin_id: None | str | Unset = UNSET,
    status: ListAllLicencesStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 200,
) -> Response[ErrorBody | LicenceList]:
    """All Licences

     Every brand's licences, newest first, for operators: which brand may use which twin,
    on what terms, and in which state (requested, accepted, declined or revoked).

    Needs a key with the `admin` scope.

    Args:
        tenant_id (None | str | Unset): One brand's.
        twin_id (None | str | Unset): One twin's.
        status (ListAllLicencesStatusType0 | None | Unset):
        limit (int | Unset):  Default: 200.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | LicenceList]
    """

    kwargs = _get_kwargs(
        tenant_id=tenant_id,
        twin_id=twin_id,
        status=status,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    tenant_id: None | str | Unset = UNSET,
    twin_id: None | str | Unset = UNSET,
    status: ListAllLicencesStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 200,
) -> ErrorBody | LicenceList | None:
    """All Licences

     Every brand's licences, newest first, for operators: which brand may use which twin,
    on what terms, and in which state (requested, accepted, declined or revoked).

    Needs a key with the `admin` scope.

    Args:
        tenant_id (None | str | Unset): One brand's.
        twin_id (None | str | Unset): One twin's.
        status (ListAllLicencesStatusType0 | None | Unset):
        limit (int | Unset):  Default: 200.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | LicenceList
    """

    return sync_detailed(
        client=client,
        tenant_id=tenant_id,
        twin_id=twin_id,
        status=status,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    tenant_id: None | str | Unset = UNSET,
    twin_id: None | str | Unset = UNSET,
    status: ListAllLicencesStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 200,
) -> Response[ErrorBody | LicenceList]:
    """All Licences

     Every brand's licences, newest first, for operators: which brand may use which twin,
    on what terms, and in which state (requested, accepted, declined or revoked).

    Needs a key with the `admin` scope.

    Args:
        tenant_id (None | str | Unset): One brand's.
        twin_id (None | str | Unset): One twin's.
        status (ListAllLicencesStatusType0 | None | Unset):
        limit (int | Unset):  Default: 200.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | LicenceList]
    """

    kwargs = _get_kwargs(
        tenant_id=tenant_id,
        twin_id=twin_id,
        status=status,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    tenant_id: None | str | Unset = UNSET,
    twin_id: None | str | Unset = UNSET,
    status: ListAllLicencesStatusType0 | None | Unset = UNSET,
    limit: int | Unset = 200,
) -> ErrorBody | LicenceList | None:
    """All Licences

     Every brand's licences, newest first, for operators: which brand may use which twin,
    on what terms, and in which state (requested, accepted, declined or revoked).

    Needs a key with the `admin` scope.

    Args:
        tenant_id (None | str | Unset): One brand's.
        twin_id (None | str | Unset): One twin's.
        status (ListAllLicencesStatusType0 | None | Unset):
        limit (int | Unset):  Default: 200.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | LicenceList
    """

    return (
        await asyncio_detailed(
            client=client,
            tenant_id=tenant_id,
            twin_id=twin_id,
            status=status,
            limit=limit,
        )
    ).parsed
