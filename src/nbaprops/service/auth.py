"""API keys: ``X-API-Key``, compared in constant time, no other way in.

Every write route declares :func:`require_key`; read routes declare :func:`read_access`, which asks for a key
only when ``read_auth`` is set. With no key configured the service is open, and :mod:`nbaprops.service.server`
then refuses to listen anywhere but loopback. Refused, always: an ``Authorization`` header in place of the key
(a Bearer token is not a key), a key in the query string (it would end up in logs), a key not configured.
Keys are never logged.
"""

from __future__ import annotations

import hmac

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from nbaprops.config import Settings
from nbaprops.service.errors import ApiError

API_KEY_HEADER = "X-API-Key"
_QUERY_KEY_NAMES = {"api_key", "apikey", "api-key", "x-api-key", "x_api_key", "key", "token", "access_token"}
_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="One of the keys of the api_keys setting (NBAPROPS_API_KEYS).",
)


def key_matches(given: str, keys: tuple[str, ...]) -> bool:
    """Whether ``given`` is one of ``keys``; every key is compared, each in constant time."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.encode(), key.encode())
    return matched


def check(request: Request, given: str | None, settings: Settings) -> None:
    """Refuse the request unless it carries a configured key the one accepted way.

    Raises:
        ApiError: 401 without a key (or with a Bearer header, or a key in the query), 403 with a wrong one.
    """
    if not settings.api_keys:
        return
    if _QUERY_KEY_NAMES & {name.lower() for name in request.query_params}:
        raise ApiError(
            401, f"API keys are not accepted in the query string; send the key in the {API_KEY_HEADER} header"
        )
    if not given:
        hint = (
            " (an Authorization header is not accepted: a Bearer token is not an API key)"
            if "authorization" in request.headers
            else ""
        )
        raise ApiError(
            401,
            f"this endpoint needs an API key in the {API_KEY_HEADER} header{hint}",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    if not key_matches(given, settings.api_keys):
        raise ApiError(403, "the API key is not valid")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


async def require_key(request: Request, given: str | None = Security(_scheme)) -> None:
    """Dependency of every write route."""
    check(request, given, _settings(request))


async def read_access(request: Request) -> None:
    """Dependency of every read route: a key only when ``read_auth`` is set.

    Not a declared security scheme: whether reads need a key is the server's setting, so the OpenAPI document
    (which describes every server) lists 401/403 among their responses instead.
    """
    settings = _settings(request)
    if settings.read_auth:
        check(request, request.headers.get(API_KEY_HEADER), settings)


__all__ = ["API_KEY_HEADER", "check", "key_matches", "read_access", "require_key"]
