"""Browser sign-in: a form that sets the session cookie, and sign-out.

The pages are templates (service/pages.py), served with its security headers.

Browsers hold the same short-lived access token the phone app uses, in an HttpOnly,
SameSite=Strict cookie (``service.auth.session_cookie``); signing in makes a device row
named "web browser", so a coordinator sees and can revoke it like a lost phone, and signing
out revokes it. The token is renewed on page loads once half its life has passed, so a
member reading pages stays signed in; one idle for ACCESS_TOKEN_TTL_S signs in again.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response, Router, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Template
from litestar.security.jwt import Token

from inspections.accounts import limits
from inspections.accounts import queries as q
from inspections.accounts.routes import BAD_SIGN_IN, _verify, start_session
from inspections.audit.log import audit
from inspections.web.public import PAGES_TAG, public_form, public_page
from service.auth import (
    PUBLIC_PAGE,
    Principal,
    authenticate,
    expired_session_cookie,
    issue_access_token,
    same_origin,
    session_cookie,
)
from service.db import DB
from service.pages import page
from service.settings import Settings
from service.state import AppState, app_state

BROWSER_DEVICE = "web browser"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only, else ``/``.

    Refuses absolute and scheme-relative URLs (``//evil.example``), backslashes (which
    browsers read as slashes) and control characters or spaces (browsers drop tabs and
    newlines, so ``/\\t/evil.example`` would become ``//evil.example``).
    """
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if any(c == "\\" or ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def redirect(location: str, cookies: list[Cookie] | None = None) -> Response[None]:
    return Response(
        None,
        status_code=303,
        headers={"Location": location, "Cache-Control": "no-store"},
        cookies=cookies,
    )


def keep_session_alive(request: Request, token: Token, response: Response[Any]) -> None:
    """Renew a browser's cookie once half its life has passed (header callers renew their own)."""
    if request.headers.get("authorization"):
        return
    settings: Settings = app_state(request.app).settings
    age = dt.datetime.now(dt.UTC) - token.iat
    if age < dt.timedelta(seconds=settings.access_token_ttl_s / 2):
        return
    principal: Principal = request.scope["user"]
    fresh = issue_access_token(
        app_state(request.app).jwt_auth, principal.user_id, principal.device_id
    )
    response.set_cookie(session_cookie(request, fresh, settings.access_token_ttl_s))


class SignInForm(msgspec.Struct, kw_only=True):
    email: str = ""
    password: str = ""
    next: str = "/"


SignInBody = Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


def _form(next_path: str, email: str = "", error: str | None = None, status: int = 200) -> Template:
    return page(
        "accounts/signin.html",
        status=status,
        next=safe_next(next_path),
        email=email,
        error=error,
        errors=[{"field": "email", "message": error}] if error else [],
    )


@public_page("/signin", "Sign-in page for browsers (HTML form)")
async def signin_form(
    request: Request, next_: Annotated[str | None, QueryParameter(name="next")] = None
) -> Response[Any]:
    if await authenticate(request) is not None:
        return redirect(safe_next(next_))
    return _form(next_ or "/")


def _signin_refused() -> Template:
    # Another site's page posting here would sign the visitor in to an account of that
    # site's choosing (login CSRF); SameSite cannot help before there is a cookie.
    return page(
        "accounts/message.html",
        status=403,
        title="Sign-in refused",
        paragraphs=["This form was sent from another website."],
        links=[{"href": "/signin", "text": "Back to sign in"}],
    )


@public_form(
    "/signin",
    "Sign in from the browser form: sets the HttpOnly session cookie, 303 to next",
    _signin_refused,
    status_code=303,
    description="On success 303 to `next` (a local path) with the session cookie; on a wrong "
    "email or password the form again with 401. Rate limited like POST /v1/auth/token.",
)
async def signin_submit(
    data: SignInBody, request: Request, db: DB, state: AppState
) -> Response[Any]:
    email, password = data.email.strip(), data.password
    # No request transaction here (see routers): the attempt is counted whatever happens.
    try:
        await limits.check_signin(db, state.settings, email, limits.client_address(request))
    except limits.Exceeded as exc:
        return _too_many(exc)
    user = None
    if 0 < len(email) <= 320 and 0 < len(password) <= 256:
        user = await q.user_signing_in(db, email)
    ok = await _verify(state.hasher, user["password_hash"] if user else None, password[:256])
    if not ok or user is None:
        return _form(data.next, email[:320], BAD_SIGN_IN + " Please try again.", 401)
    if not user["active"]:
        return _form(
            data.next, email, "This account has been deactivated; ask your coordinator.", 403
        )
    settings: Settings = state.settings
    device_id, _refresh = await start_session(
        db, request, state, user, BROWSER_DEVICE, via="sign-in page"
    )
    token = issue_access_token(state.jwt_auth, user["id"], device_id)
    return redirect(
        safe_next(data.next), [session_cookie(request, token, settings.access_token_ttl_s)]
    )


@public_page("/signout", "Sign-out page: a button that posts the sign-out form")
async def signout_form(request: Request) -> Template:
    return page("accounts/signout.html", signed_in=await authenticate(request) is not None)


@post(
    "/signout",
    **PUBLIC_PAGE,
    tags=[PAGES_TAG],
    summary="Sign this browser out: revokes its device and clears the session cookie",
    status_code=303,
)
async def signout(request: Request, db: DB) -> Response[Any]:
    signed_in = await authenticate(request) if same_origin(request) else None
    if signed_in is not None:
        principal, _ = signed_in
        if await q.revoke_device(db, principal.device_id, "signed out"):
            await audit(db, request, "auth.logout", "device", principal.device_id)
    return redirect("/signin", [expired_session_cookie(request)])


def _too_many(exc: limits.Exceeded) -> Template:
    return page(
        "accounts/message.html",
        status=429,
        headers={"Retry-After": str(exc.retry_after)},
        title="Too many sign-in attempts",
        paragraphs=[f"Please wait {limits.wait_text(exc.retry_after)}, then try again."],
        links=[{"href": "/signin", "text": "Back to sign in"}],
    )


def routers(settings: Settings) -> list[Any]:
    return [
        # The same limits as POST /v1/auth/token, on the same counters in PostgreSQL (so the
        # form and the API together get SIGNIN_RATE_PER_MINUTE guesses, not twice that),
        # counted outside any transaction; the route opens its own for what it writes.
        Router("/", route_handlers=[signin_submit], opt={"db_transaction": False}),
        signin_form,
        signout_form,
        signout,
    ]
