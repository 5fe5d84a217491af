"""Access-token authentication (Litestar's JWTCookieAuth) and role guards.

The access token only names the user and the device; who they are *now* (active, roles,
device not revoked) is read from the database on every request, never from a per-process
cache, so deactivation, a revoked device or a role change takes effect at once in every
process rather than when the token expires (or when a cache hears about it). A route may
load its caller together with its own first query, in the same round trip (``LOAD_CALLER``).

Phones send the token as ``Authorization: Bearer``; browsers get the same kind of token in
an HttpOnly, SameSite=Strict cookie from the sign-in page (``/signin``). The header wins
when both are present. SameSite=Strict keeps other sites' pages from making a browser send
the cookie, and a write signed in by the cookie alone must also carry this site's Origin
(or none): together they protect cookie-authenticated writes from cross-site forgery.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, get_args
from urllib.parse import urlsplit
from uuid import UUID

import msgspec
from litestar import Request
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AuthenticationResult
from litestar.openapi.spec import Components, SecurityScheme
from litestar.security.jwt import JWTCookieAuth, JWTCookieAuthenticationMiddleware, Token

from service.errors import forbidden
from service.lru import LruCache
from service.state import app_state

# The roles a person may hold: the API's enum and the CLI's choices.
Role = Literal[
    "citizen_inspector",
    "professional_inspector",
    "coordinator",
    "scrutiny_member",
    "service_manager",
    "safeguarding_lead",
]
ROLES: tuple[Role, ...] = get_args(Role)


class Principal(msgspec.Struct, frozen=True):
    """The signed-in caller, as the database says they are at this request."""

    user_id: UUID
    organisation_id: UUID
    roles: frozenset[str]
    device_id: UUID

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def require(self, *roles: str) -> None:
        """A route's role guard said again inside an operation, so that every surface that
        calls it (pages, commands) is refused alike: 403 naming the roles."""
        if not self.has(*roles):
            raise forbidden(f"This needs one of the roles: {', '.join(roles)}.")


# The request of a route behind authentication: ``request.user`` is the caller.
AuthedRequest = Request[Principal, Any, Any]

# Spread into a route decorator to make it public (and say so truthfully in OpenAPI).
PUBLIC: dict[str, Any] = {"opt": {"public": True}, "security": [{}]}
# A public page for browsers: its errors are pages too (service/pages.py is_page).
PUBLIC_PAGE: dict[str, Any] = {"opt": {"public": True, "page": True}, "security": [{}]}


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

    @classmethod
    def forget(cls, predicate: Callable[[CachedToken], bool]) -> None:
        """Drop verified tokens (a signed-out person's need not stay in memory)."""
        cls._verified.evict_where(lambda _k, token: predicate(token))


# (connection, user id, device id) as the token carries them -> the caller, or None.
PrincipalLoader = Callable[[ASGIConnection, str, str], Awaitable[Principal | None]]

# Route opt key: a PrincipalLoader that also reads what the route needs first, in one query
# (the bundle's 304 path), leaving it in ``connection.state``; it must check what the
# app's loader checks.
LOAD_CALLER = "load_caller"


# The browser session cookie: the same access token as the header carries.
SESSION_COOKIE = "coassess_session"
COOKIE_SCHEME = "SessionCookie"


def same_origin(connection: ASGIConnection) -> bool:
    """Sent by a page of this site, or by something that is not a browser (no Origin header)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    hosts = {connection.headers.get("host", "").lower()}
    if forwarded := connection.headers.get("x-forwarded-host"):
        hosts.add(forwarded.split(",")[0].strip().lower())
    return urlsplit(origin).netloc.lower() in hosts


class CookieAuthMiddleware(JWTCookieAuthenticationMiddleware):
    """Besides SameSite=Strict: a write signed in by the cookie alone must come from our pages.

    (SameSite treats sibling subdomains as the same site; the Origin check does not.)
    """

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        if (
            not connection.headers.get(self.auth_header)
            and connection.scope.get("method") not in ("GET", "HEAD", "OPTIONS")
            and not same_origin(connection)
        ):
            raise NotAuthorizedException("A request signed in by cookie must come from this site.")
        return await super().authenticate_request(connection)


class TokenAuth(JWTCookieAuth[Principal, Token]):
    """JWTCookieAuth whose OpenAPI says the truth: a bearer header, or else the cookie."""

    @property
    def openapi_components(self) -> Components:
        return Components(
            security_schemes={
                self.openapi_security_scheme_name: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description=self.description,
                ),
                COOKIE_SCHEME: SecurityScheme(
                    type="apiKey",
                    name=self.key,
                    security_scheme_in="cookie",
                    description="Browsers: the same access token, set HttpOnly by POST /signin.",
                ),
            }
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config = super().on_app_init(app_config)
        if app_config.openapi_config and isinstance(app_config.openapi_config.security, list):
            # Alternatives (either one will do), not both at once.
            app_config.openapi_config.security.append({COOKIE_SCHEME: []})
        return app_config


def make_jwt_auth(secret: str, ttl_s: int, load: PrincipalLoader, exclude: list[str]) -> TokenAuth:
    async def retrieve(token: Token, connection: ASGIConnection) -> Principal | None:
        handler = connection.scope.get("route_handler")
        loader: PrincipalLoader = handler.opt.get(LOAD_CALLER, load) if handler else load
        principal = await loader(connection, token.sub, str(token.extras.get("dev")))
        if principal is None:
            raise NotAuthorizedException(
                "This sign-in is no longer valid (account deactivated or device signed out)."
            )
        return principal

    return TokenAuth(
        token_cls=CachedToken,
        retrieve_user_handler=retrieve,
        token_secret=secret,
        default_token_expiration=dt.timedelta(seconds=ttl_s),
        exclude=exclude,
        exclude_opt_key="public",
        description="Access token from POST /v1/auth/token.",
        # The cookie (set by the sign-in page, not by Litestar's login()): never readable by
        # scripts, never sent on cross-site requests. Secure is decided per request (see
        # session_cookie): a cookie marked Secure would not be kept over plain-HTTP local dev.
        key=SESSION_COOKIE,
        path="/",
        samesite="strict",
        secure=False,
        authentication_middleware_class=CookieAuthMiddleware,
    )


def issue_access_token(auth: JWTCookieAuth, user_id: UUID, device_id: UUID) -> str:
    return auth.create_token(identifier=str(user_id), token_extras={"dev": str(device_id)})


def is_https(connection: ASGIConnection) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a TLS-ending proxy).

    X-Forwarded-Proto is trusted only to decide the Secure flag of the caller's own cookie:
    a client that lies about it can only make its own cookie stricter (real HTTPS always
    gets Secure). Behind a proxy, have it set the header.
    """
    forwarded = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return connection.url.scheme == "https" or forwarded == "https"


def session_cookie(connection: ASGIConnection, token: str, max_age: int) -> Cookie:
    """The browser session cookie carrying ``token``: HttpOnly, SameSite=Strict, Secure on HTTPS."""
    auth = app_state(connection.app).jwt_auth
    return Cookie(
        key=auth.key,
        value=token,
        path=auth.path,
        max_age=max_age,
        httponly=True,
        samesite=auth.samesite,
        secure=is_https(connection),
    )


def expired_session_cookie(connection: ASGIConnection) -> Cookie:
    return session_cookie(connection, "", 0)


async def authenticate(connection: ASGIConnection) -> tuple[Principal, Token] | None:
    """On a public route: the caller and their token, if the header or cookie holds a valid one.

    Reads the token where the auth middleware does (header first, then the cookie) and checks
    it the same way (signature, expiry, account active, device not revoked). Pages use it to
    send a signed-out browser to the sign-in page instead of answering 401.
    """
    auth = app_state(connection.app).jwt_auth
    encoded = connection.headers.get(auth.auth_header, "").partition(" ")[-1] or (
        connection.cookies.get(auth.key, "")
    )
    if not encoded:
        return None
    try:
        token = auth.token_cls.decode(
            encoded_token=encoded, secret=auth.token_secret, algorithm=auth.algorithm
        )
        principal = await _load(auth, token, connection)
    except NotAuthorizedException:
        return None
    if not isinstance(principal, Principal):
        return None
    connection.scope["user"] = principal
    connection.scope["auth"] = token
    return principal, token


async def _load(auth: TokenAuth, token: Token, connection: ASGIConnection) -> Any:
    # Litestar types the handler as sync or async; ours (make_jwt_auth's) is async.
    loaded = auth.retrieve_user_handler(token, connection)
    return await loaded if inspect.isawaitable(loaded) else loaded


def require_roles(*roles: str) -> Callable[[ASGIConnection, BaseRouteHandler], None]:
    """Guard: the caller holds at least one of ``roles``."""

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        user: Any = connection.scope.get("user")
        if not isinstance(user, Principal) or not user.has(*roles):
            raise PermissionDeniedException(f"This needs one of the roles: {', '.join(roles)}.")

    return guard


# The guard of every coordinator-only route, JSON or page alike.
coordinator_only = [require_roles("coordinator")]
