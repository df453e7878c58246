from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.role import Role
from ...models.sort_order import SortOrder
from ...models.user_page import UserPage
from ...models.user_sort import UserSort
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    email: str | Unset = UNSET,
    name: str | Unset = UNSET,
    role: Role | Unset = UNSET,
    is_active: bool | Unset = UNSET,
    sort: UserSort | Unset = UNSET,
    order: SortOrder | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["cursor"] = cursor

    params["email"] = email

    params["name"] = name

    json_role: str | Unset = UNSET
    if not isinstance(role, Unset):
        json_role = role

    params["role"] = json_role

    params["is_active"] = is_active

    json_sort: str | Unset = UNSET
    if not isinstance(sort, Unset):
        json_sort = sort

    params["sort"] = json_sort

    json_order: str | Unset = UNSET
    if not isinstance(order, Unset):
        json_order = order

    params["order"] = json_order

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/api/v1/users",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | UserPage | None:
    if response.status_code == 200:
        response_200 = UserPage.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = Problem.from_dict(response.json())

        return response_500

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | UserPage]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    email: str | Unset = UNSET,
    name: str | Unset = UNSET,
    role: Role | Unset = UNSET,
    is_active: bool | Unset = UNSET,
    sort: UserSort | Unset = UNSET,
    order: SortOrder | Unset = UNSET,
) -> Response[Problem | UserPage]:
    """List users (admin): filter, sort and page with a cursor

     Needs an access token of an admin. Answers 200 (A page of users; a Link header points to the next).
    Pass next_cursor as cursor for the next page; the Link header holds its URL.

    Args:
        limit (int | Unset):  Default: 20.
        cursor (str | Unset):
        email (str | Unset):
        name (str | Unset):
        role (Role | Unset):
        is_active (bool | Unset):
        sort (UserSort | Unset):
        order (SortOrder | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | UserPage]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        email=email,
        name=name,
        role=role,
        is_active=is_active,
        sort=sort,
        order=order,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    email: str | Unset = UNSET,
    name: str | Unset = UNSET,
    role: Role | Unset = UNSET,
    is_active: bool | Unset = UNSET,
    sort: UserSort | Unset = UNSET,
    order: SortOrder | Unset = UNSET,
) -> Problem | UserPage | None:
    """List users (admin): filter, sort and page with a cursor

     Needs an access token of an admin. Answers 200 (A page of users; a Link header points to the next).
    Pass next_cursor as cursor for the next page; the Link header holds its URL.

    Args:
        limit (int | Unset):  Default: 20.
        cursor (str | Unset):
        email (str | Unset):
        name (str | Unset):
        role (Role | Unset):
        is_active (bool | Unset):
        sort (UserSort | Unset):
        order (SortOrder | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | UserPage
    """

    return sync_detailed(
        client=client,
        limit=limit,
        cursor=cursor,
        email=email,
        name=name,
        role=role,
        is_active=is_active,
        sort=sort,
        order=order,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    email: str | Unset = UNSET,
    name: str | Unset = UNSET,
    role: Role | Unset = UNSET,
    is_active: bool | Unset = UNSET,
    sort: UserSort | Unset = UNSET,
    order: SortOrder | Unset = UNSET,
) -> Response[Problem | UserPage]:
    """List users (admin): filter, sort and page with a cursor

     Needs an access token of an admin. Answers 200 (A page of users; a Link header points to the next).
    Pass next_cursor as cursor for the next page; the Link header holds its URL.

    Args:
        limit (int | Unset):  Default: 20.
        cursor (str | Unset):
        email (str | Unset):
        name (str | Unset):
        role (Role | Unset):
        is_active (bool | Unset):
        sort (UserSort | Unset):
        order (SortOrder | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | UserPage]
    """

    kwargs = _get_kwargs(
        limit=limit,
        cursor=cursor,
        email=email,
        name=name,
        role=role,
        is_active=is_active,
        sort=sort,
        order=order,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    email: str | Unset = UNSET,
    name: str | Unset = UNSET,
    role: Role | Unset = UNSET,
    is_active: bool | Unset = UNSET,
    sort: UserSort | Unset = UNSET,
    order: SortOrder | Unset = UNSET,
) -> Problem | UserPage | None:
    """List users (admin): filter, sort and page with a cursor

     Needs an access token of an admin. Answers 200 (A page of users; a Link header points to the next).
    Pass next_cursor as cursor for the next page; the Link header holds its URL.

    Args:
        limit (int | Unset):  Default: 20.
        cursor (str | Unset):
        email (str | Unset):
        name (str | Unset):
        role (Role | Unset):
        is_active (bool | Unset):
        sort (UserSort | Unset):
        order (SortOrder | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | UserPage
    """

    return (
        await asyncio_detailed(
            client=client,
            limit=limit,
            cursor=cursor,
            email=email,
            name=name,
            role=role,
            is_active=is_active,
            sort=sort,
            order=order,
        )
    ).parsed
