from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.login_token import LoginToken
from ...models.mfa_login import MfaLogin
from ...models.problem import Problem
from ...types import Response


def _get_kwargs(
    *,
    body: MfaLogin,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/api/v1/auth/login/mfa",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> LoginToken | Problem | None:
    if response.status_code == 200:
        response_200 = LoginToken.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[LoginToken | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: MfaLogin,
) -> Response[LoginToken | Problem]:
    """Finish a login with a code from your authenticator app or a recovery code

     Needs no token. The second step of a login that answered 403 `mfa_required`: send its `mfa_token`
    with a code from your authenticator app or a recovery code. A challenge works once, for
    MFA_CHALLENGE_MINUTES, and dies after 5 wrong codes; wrong codes also count against
    RATELIMIT_MFA_ACCOUNT.

    Args:
        body (MfaLogin):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[LoginToken | Problem]
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
    body: MfaLogin,
) -> LoginToken | Problem | None:
    """Finish a login with a code from your authenticator app or a recovery code

     Needs no token. The second step of a login that answered 403 `mfa_required`: send its `mfa_token`
    with a code from your authenticator app or a recovery code. A challenge works once, for
    MFA_CHALLENGE_MINUTES, and dies after 5 wrong codes; wrong codes also count against
    RATELIMIT_MFA_ACCOUNT.

    Args:
        body (MfaLogin):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        LoginToken | Problem
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: MfaLogin,
) -> Response[LoginToken | Problem]:
    """Finish a login with a code from your authenticator app or a recovery code

     Needs no token. The second step of a login that answered 403 `mfa_required`: send its `mfa_token`
    with a code from your authenticator app or a recovery code. A challenge works once, for
    MFA_CHALLENGE_MINUTES, and dies after 5 wrong codes; wrong codes also count against
    RATELIMIT_MFA_ACCOUNT.

    Args:
        body (MfaLogin):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[LoginToken | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: MfaLogin,
) -> LoginToken | Problem | None:
    """Finish a login with a code from your authenticator app or a recovery code

     Needs no token. The second step of a login that answered 403 `mfa_required`: send its `mfa_token`
    with a code from your authenticator app or a recovery code. A challenge works once, for
    MFA_CHALLENGE_MINUTES, and dies after 5 wrong codes; wrong codes also count against
    RATELIMIT_MFA_ACCOUNT.

    Args:
        body (MfaLogin):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        LoginToken | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
