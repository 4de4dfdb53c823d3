import datetime
from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_body import ErrorBody
from ...models.get_usage_format import GetUsageFormat
from ...models.get_usage_period import GetUsagePeriod
from ...models.usage_report import UsageReport
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    from_: datetime.date | None | Unset = UNSET,
    to: datetime.date | None | Unset = UNSET,
    format_: GetUsageFormat | Unset = GetUsageFormat.JSON,
    period: GetUsagePeriod | Unset = GetUsagePeriod.DAY,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

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

    json_from_: None | str | Unset
    if isinstance(from_, Unset):
        json_from_ = UNSET
    elif isinstance(from_, datetime.date):
        json_from_ = from_.isoformat()
    else:
        json_from_ = from_
    params["from"] = json_from_

    json_to: None | str | Unset
    if isinstance(to, Unset):
        json_to = UNSET
    elif isinstance(to, datetime.date):
        json_to = to.isoformat()
    else:
        json_to = to
    params["to"] = json_to

    json_format_: str | Unset = UNSET
    if not isinstance(format_, Unset):
        json_format_ = format_.value

    params["format"] = json_format_

    json_period: str | Unset = UNSET
    if not isinstance(period, Unset):
        json_period = period.value

    params["period"] = json_period

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/usage",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorBody | UsageReport | None:
    if response.status_code == 200:
        response_200 = UsageReport.from_dict(response.json())

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
) -> Response[ErrorBody | UsageReport]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    from_: datetime.date | None | Unset = UNSET,
    to: datetime.date | None | Unset = UNSET,
    format_: GetUsageFormat | Unset = GetUsageFormat.JSON,
    period: GetUsagePeriod | Unset = GetUsagePeriod.DAY,
) -> Response[ErrorBody | UsageReport]:
    """Usage

     Images per day (or month), tenant, twin and use: generated, delivered to a job's target,
    and rejected by the reviewer, each counted separately (`counted` says what each is). An
    `admin` key reads every tenant (the basis of the twins' compensation); a brand's `usage`
    key reads its own tenant's rows only, never another's.

    Needs a key with the `admin` or `usage` scope.

    Args:
        twin (None | str | Unset):
        tenant (None | str | Unset): One tenant's rows (an `admin` key). A `usage` key reads its
            own tenant only: naming another is refused (403 `insufficient_scope`).
        from_ (datetime.date | None | Unset): First day, YYYY-MM-DD.
        to (datetime.date | None | Unset): Last day, YYYY-MM-DD.
        format_ (GetUsageFormat | Unset):  Default: GetUsageFormat.JSON.
        period (GetUsagePeriod | Unset): Rows per day, or per month (YYYY-MM). Default:
            GetUsagePeriod.DAY.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | UsageReport]
    """

    kwargs = _get_kwargs(
        twin=twin,
        tenant=tenant,
        from_=from_,
        to=to,
        format_=format_,
        period=period,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    from_: datetime.date | None | Unset = UNSET,
    to: datetime.date | None | Unset = UNSET,
    format_: GetUsageFormat | Unset = GetUsageFormat.JSON,
    period: GetUsagePeriod | Unset = GetUsagePeriod.DAY,
) -> ErrorBody | UsageReport | None:
    """Usage

     Images per day (or month), tenant, twin and use: generated, delivered to a job's target,
    and rejected by the reviewer, each counted separately (`counted` says what each is). An
    `admin` key reads every tenant (the basis of the twins' compensation); a brand's `usage`
    key reads its own tenant's rows only, never another's.

    Needs a key with the `admin` or `usage` scope.

    Args:
        twin (None | str | Unset):
        tenant (None | str | Unset): One tenant's rows (an `admin` key). A `usage` key reads its
            own tenant only: naming another is refused (403 `insufficient_scope`).
        from_ (datetime.date | None | Unset): First day, YYYY-MM-DD.
        to (datetime.date | None | Unset): Last day, YYYY-MM-DD.
        format_ (GetUsageFormat | Unset):  Default: GetUsageFormat.JSON.
        period (GetUsagePeriod | Unset): Rows per day, or per month (YYYY-MM). Default:
            GetUsagePeriod.DAY.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | UsageReport
    """

    return sync_detailed(
        client=client,
        twin=twin,
        tenant=tenant,
        from_=from_,
        to=to,
        format_=format_,
        period=period,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    from_: datetime.date | None | Unset = UNSET,
    to: datetime.date | None | Unset = UNSET,
    format_: GetUsageFormat | Unset = GetUsageFormat.JSON,
    period: GetUsagePeriod | Unset = GetUsagePeriod.DAY,
) -> Response[ErrorBody | UsageReport]:
    """Usage

     Images per day (or month), tenant, twin and use: generated, delivered to a job's target,
    and rejected by the reviewer, each counted separately (`counted` says what each is). An
    `admin` key reads every tenant (the basis of the twins' compensation); a brand's `usage`
    key reads its own tenant's rows only, never another's.

    Needs a key with the `admin` or `usage` scope.

    Args:
        twin (None | str | Unset):
        tenant (None | str | Unset): One tenant's rows (an `admin` key). A `usage` key reads its
            own tenant only: naming another is refused (403 `insufficient_scope`).
        from_ (datetime.date | None | Unset): First day, YYYY-MM-DD.
        to (datetime.date | None | Unset): Last day, YYYY-MM-DD.
        format_ (GetUsageFormat | Unset):  Default: GetUsageFormat.JSON.
        period (GetUsagePeriod | Unset): Rows per day, or per month (YYYY-MM). Default:
            GetUsagePeriod.DAY.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorBody | UsageReport]
    """

    kwargs = _get_kwargs(
        twin=twin,
        tenant=tenant,
        from_=from_,
        to=to,
        format_=format_,
        period=period,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    twin: None | str | Unset = UNSET,
    tenant: None | str | Unset = UNSET,
    from_: datetime.date | None | Unset = UNSET,
    to: datetime.date | None | Unset = UNSET,
    format_: GetUsageFormat | Unset = GetUsageFormat.JSON,
    period: GetUsagePeriod | Unset = GetUsagePeriod.DAY,
) -> ErrorBody | UsageReport | None:
    """Usage

     Images per day (or month), tenant, twin and use: generated, delivered to a job's target,
    and rejected by the reviewer, each counted separately (`counted` says what each is). An
    `admin` key reads every tenant (the basis of the twins' compensation); a brand's `usage`
    key reads its own tenant's rows only, never another's.

    Needs a key with the `admin` or `usage` scope.

    Args:
        twin (None | str | Unset):
        tenant (None | str | Unset): One tenant's rows (an `admin` key). A `usage` key reads its
            own tenant only: naming another is refused (403 `insufficient_scope`).
        from_ (datetime.date | None | Unset): First day, YYYY-MM-DD.
        to (datetime.date | None | Unset): Last day, YYYY-MM-DD.
        format_ (GetUsageFormat | Unset):  Default: GetUsageFormat.JSON.
        period (GetUsagePeriod | Unset): Rows per day, or per month (YYYY-MM). Default:
            GetUsagePeriod.DAY.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorBody | UsageReport
    """

    return (
        await asyncio_detailed(
            client=client,
            twin=twin,
            tenant=tenant,
            from_=from_,
            to=to,
            format_=format_,
            period=period,
        )
    ).parsed
