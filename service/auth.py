"""Bearer-token authentication (Litestar's JWTAuth) and role guards.

The access token only names the user and the device; who they are *now* (active, roles,
device not revoked) is loaded on every request, so deactivation and a revoked device
take effect at once rather than when the token expires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTAuth, Token

from service.invalidation import LruCache

ROLES = (
    "citizen_inspector",
    "professional_inspector",
    "coordinator",
    "scrutiny_member",
    "service_manager",
)


class Principal(msgspec.Struct, frozen=True):
    """The signed-in caller, as the database says they are at this request."""

    user_id: UUID
    organisation_id: UUID
    roles: frozenset[str]
    device_id: UUID

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


# Spread into a route decorator to make it public (and say so truthfully in OpenAPI).
PUBLIC: dict[str, Any] = {"opt": {"public": True}, "security": [{}]}


class CachedToken(Token):
    """Verifies a token's signature once, then remembers it (expiry is still checked)."""

    _verified: LruCache[tuple[str, str, str], CachedToken] = LruCache(8192, 3600)

    @classmethod
    def decode(  # type: ignore[override]
        cls, encoded_token: str, secret: str, algorithm: str, **kwargs: Any
    ) -> CachedToken:
        key = (encoded_token, secret, algorithm)
        token = cls._verified.get(key)
        if token is None:
            token = super().decode(encoded_token, secret, algorithm, **kwargs)
            cls._verified.put(key, token)
        elif token.exp <= dt.datetime.now(dt.UTC):
            cls._verified.pop(key)
            raise NotAuthorizedException("Invalid token")
        return token


# (connection, user id, device id) as the token carries them -> the caller, or None.
PrincipalLoader = Callable[[ASGIConnection, str, str], Awaitable[Principal | None]]


def make_jwt_auth(
    secret: str, ttl_s: int, load: PrincipalLoader, exclude: list[str]
) -> JWTAuth[Principal, Token]:
    async def retrieve(token: Token, connection: ASGIConnection) -> Principal | None:
        principal = await load(connection, token.sub, str(token.extras.get("dev")))
        if principal is None:
            raise NotAuthorizedException(
                "This sign-in is no longer valid (account deactivated or device signed out)."
            )
        return principal

    return JWTAuth[Principal, Token](
        token_cls=CachedToken,
        retrieve_user_handler=retrieve,
        token_secret=secret,
        default_token_expiration=dt.timedelta(seconds=ttl_s),
        exclude=exclude,
        exclude_opt_key="public",
        description="Access token from POST /v1/auth/token.",
    )


def issue_access_token(auth: JWTAuth, user_id: UUID, device_id: UUID) -> str:
    return auth.create_token(identifier=str(user_id), token_extras={"dev": str(device_id)})


def require_roles(*roles: str) -> Callable[[ASGIConnection, BaseRouteHandler], None]:
    """Guard: the caller holds at least one of ``roles``."""

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        user: Any = connection.scope.get("user")
        if not isinstance(user, Principal) or not user.has(*roles):
            raise PermissionDeniedException(f"This needs one of the roles: {', '.join(roles)}.")

    return guard
