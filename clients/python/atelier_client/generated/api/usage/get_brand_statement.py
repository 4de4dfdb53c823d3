import datetime
from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.get_brand_statement_format import GetBrandStatementFormat
from ...models.talent_statement import TalentStatement
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    from_: datetime.date,
    to: datetime.date,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    format_: GetBrandStatementFormat | Unset = GetBrandStatementFormat.JSON,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_from_ = from_.isoformat()
    params["from"] = json_from_

    json_to = to.isoformat()
    params["to"] = json_to

    json_twin: None | str | Unset
    if isinstance(twin, Unset):
        json_twin = UNSET
    else:
        json_twin = twin
    params["twin"] = json_twin

    json_tenant: None | str | Unset
    if isinstance(tenant, Unset):
        json_tenant = UNSET
    else:
        json_tenant = tenant
    params["tenant"] = json_tenant

    json_format_: str | Unset = UNSET
    if not isinstance(format_, Unset):
        json_format_ = format_.value

    params["format"] = json_format_

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/usage/statement",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | TalentStatement | None:
    if response.status_code == 200:
        response_200 = TalentStatement.from_dict(response.json())

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
) -> Response[ErrorBody | TalentStatement]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    from_: datetime.date,
    to: datetime.date,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    format_: GetBrandStatementFormat | Unset = GetBrandStatementFormat.JSON,
) -> Response[ErrorBody | TalentStatement]:
    """Brand Statement

     What a brand owes the persons whose twins it used in a period: images per twin, use and
    licence (or paper consent version), at each signed licence's accepted rate, the amounts
    per currency and the due date (the period's last day + 45 days). The persons' own
    statements, seen from the brand: the same records, the same numbers.

    Needs a key with the `admin` or `usage` scope.

    Args:
        from_ (datetime.date): First day (UTC), YYYY-MM-DD.
        to (datetime.date): Last day (UTC), inclusive, YYYY-MM-DD.
        twin (None | str | Unset):
        tenant (None | str | Unset): The brand (an `admin` key: required). A `usage` key reads its
            own tenant's only.
        format_ (GetBrandStatementFormat | Unset):  Default: GetBrandStatementFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | TalentStatement]
    """

    kwargs = _get_kwargs(
        from_=from_,
        to=to,
        twin=twin,
        tenant=tenant,
        format_=format_,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    from_: datetime.date,
    to: datetime.date,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    format_: GetBrandStatementFormat | Unset = GetBrandStatementFormat.JSON,
) -> ErrorBody | TalentStatement | None:
    """Brand Statement

     What a brand owes the persons whose twins it used in a period: images per twin, use and
    licence (or paper consent version), at each signed licence's accepted rate, the amounts
    per currency and the due date (the period's last day + 45 days). The persons' own
    statements, seen from the brand: the same records, the same numbers.

    Needs a key with the `admin` or `usage` scope.

    Args:
        from_ (datetime.date): First day (UTC), YYYY-MM-DD.
        to (datetime.date): Last day (UTC), inclusive, YYYY-MM-DD.
        twin (None | str | Unset):
        tenant (None | str | Unset): The brand (an `admin` key: required). A `usage` key reads its
            own tenant's only.
        format_ (GetBrandStatementFormat | Unset):  Default: GetBrandStatementFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | TalentStatement
    """

    return sync_detailed(
        client=client,
        from_=from_,
        to=to,
        twin=twin,
        tenant=tenant,
        format_=format_,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    from_: datetime.date,
    to: datetime.date,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    format_: GetBrandStatementFormat | Unset = GetBrandStatementFormat.JSON,
) -> Response[ErrorBody | TalentStatement]:
    """Brand Statement

     What a brand owes the persons whose twins it used in a period: images per twin, use and
    licence (or paper consent version), at each signed licence's accepted rate, the amounts
    per currency and the due date (the period's last day + 45 days). The persons' own
    statements, seen from the brand: the same records, the same numbers.

    Needs a key with the `admin` or `usage` scope.

    Args:
        from_ (datetime.date): First day (UTC), YYYY-MM-DD.
        to (datetime.date): Last day (UTC), inclusive, YYYY-MM-DD.
        twin (None | str | Unset):
        tenant (None | str | Unset): The brand (an `admin` key: required). A `usage` key reads its
            own tenant's only.
        format_ (GetBrandStatementFormat | Unset):  Default: GetBrandStatementFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | TalentStatement]
    """

    kwargs = _get_kwargs(
        from_=from_,
        to=to,
        twin=twin,
        tenant=tenant,
        format_=format_,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    from_: datetime.date,
    to: datetime.date,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    format_: GetBrandStatementFormat | Unset = GetBrandStatementFormat.JSON,
) -> ErrorBody | TalentStatement | None:
    """Brand Statement

     What a brand owes the persons whose twins it used in a period: images per twin, use and
    licence (or paper consent version), at each signed licence's accepted rate, the amounts
    per currency and the due date (the period's last day + 45 days). The persons' own
    statements, seen from the brand: the same records, the same numbers.

    Needs a key with the `admin` or `usage` scope.

    Args:
        from_ (datetime.date): First day (UTC), YYYY-MM-DD.
        to (datetime.date): Last day (UTC), inclusive, YYYY-MM-DD.
        twin (None | str | Unset):
        tenant (None | str | Unset): The brand (an `admin` key: required). A `usage` key reads its
            own tenant's only.
        format_ (GetBrandStatementFormat | Unset):  Default: GetBrandStatementFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | TalentStatement
    """

    return (
        await asyncio_detailed(
            client=client,
            from_=from_,
            to=to,
            twin=twin,
            tenant=tenant,
            format_=format_,
        )
    ).parsed
