"""Pages for people who join or forgot their password, in a browser (templates/accounts/).

- ``/invites/{code}``: who invited you, where, as what; set your name and password. It
  accepts through ``invites.accept``, the function behind ``POST /v1/invites/{code}/accept``.
- ``/password/forgot``: ask for a reset link (the same answer whatever the address).
- ``/password/reset/{token}``: choose a new password; every device is signed out.

Forms post to themselves; a post from another site's page is refused (like the sign-in
form). Mistakes come back as the form with an error summary linked to each field, in words.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.params import Body as FormBody
from litestar.params import FromPath
from litestar.response import Template

from inspections.accounts import invites, passwords
from inspections.accounts.mail import when
from inspections.web.public import public_form, public_page
from service.db import DB
from service.errors import FieldError, Problem
from service.pages import page
from service.schema import Form
from service.state import AppState, app_state


class AcceptInviteForm(Form, kw_only=True):
    display_name: str = ""
    password: str = ""


class ForgotForm(Form, kw_only=True):
    email: str = ""


class ResetForm(Form, kw_only=True):
    password: str = ""


_URL_ENCODED = FormBody(media_type=RequestEncodingType.URL_ENCODED)
InviteBody = Annotated[AcceptInviteForm, _URL_ENCODED]
ForgotBody = Annotated[ForgotForm, _URL_ENCODED]
ResetBody = Annotated[ResetForm, _URL_ENCODED]


def _errors(errors: list[FieldError]) -> list[dict[str, str]]:
    return [{"field": e.field, "message": e.reason} for e in errors]


def message(
    status: int, title: str, *paragraphs: str, links: list[tuple[str, str]] | None = None
) -> Template:
    return page(
        "accounts/message.html",
        status=status,
        title=title,
        paragraphs=list(paragraphs),
        links=[{"href": h, "text": t} for h, t in links or []],
    )


def _cross_site() -> Template:
    # Another site's page posting here: refused, as the sign-in form does.
    return message(403, "Form refused", "This form was sent from another website.")


# What both forms that set a password say about its length.
PASSWORD_LIMITS: dict[str, Any] = {
    "password_min": passwords.PASSWORD_MIN,
    "password_max": passwords.PASSWORD_MAX,
}
NEW_INVITE = "Ask your coordinator to send you a new invite."
SIGN_IN = ("/signin", "Sign in")
FORGOT = ("/password/forgot", "Forgotten your password?")


def invite_closed(problem: Problem) -> Template:
    """The page for a code that cannot be used, saying what to do instead."""
    kind = problem.kind
    if kind == "invite-used":
        return message(
            410,
            "This invite has already been used",
            "An account was made with this invite. Sign in with its email address and "
            "password. If that was not you, " + NEW_INVITE[0].lower() + NEW_INVITE[1:],
            links=[SIGN_IN, FORGOT],
        )
    if kind == "invite-expired":
        return message(
            410,
            "This invite has expired",
            "Invites work for a limited time, and this one has run out. " + NEW_INVITE,
        )
    if kind == "email-taken":
        return message(
            409,
            "You already have an account",
            "An account already uses this invite's email address. Sign in with it, or reset "
            "its password if you have forgotten it.",
            links=[SIGN_IN, FORGOT],
        )
    return message(
        404,
        "This invite link does not work",
        "It may have been copied only in part, or replaced by a newer invite email: use the "
        "link in the latest email. " + NEW_INVITE,
    )


async def _open_invite(db: DB, code: str) -> invites.InviteFacts | Template:
    """The invite while it can be used, else the page saying what to do instead."""
    facts = await invites.facts_by_code(db, code)
    if facts is None or facts.status != "open":
        return invite_closed(invites.closed_problem(facts))
    return facts


async def _invite_form(
    request: Request,
    facts: invites.InviteFacts,
    *,
    errors: list[FieldError] | None = None,
    display_name: str = "",
    status: int = 200,
) -> Template:
    return page(
        "accounts/invite.html",
        status=status,
        invite=facts,
        expires=when(app_state(request.app).settings, facts.expires_at),
        notice_version=app_state(request.app).settings.privacy_notice_version,
        action=request.url.path,
        errors=_errors(errors or []),
        display_name=display_name,
        name_max=passwords.NAME_MAX,
        **PASSWORD_LIMITS,
    )


@public_page(
    "/invites/{code:str}",
    "Invite page: which organisation and roles; a form to set name and password",
)
async def invite_page(code: FromPath[str], request: Request, db: DB) -> Template:
    facts = await _open_invite(db, code)
    return facts if isinstance(facts, Template) else await _invite_form(request, facts)


@public_form(
    "/invites/{code:str}",
    "Accept an invite from its page (same as POST /v1/invites/{code}/accept)",
    _cross_site,
)
async def invite_submit(
    code: FromPath[str],
    data: InviteBody,
    request: Request,
    db: DB,
    state: AppState,
) -> Template:
    facts = await _open_invite(db, code)
    if isinstance(facts, Template):
        return facts
    name = " ".join(data.display_name.split())
    errors = passwords.name_errors(name) + passwords.password_errors(data.password)
    if errors:
        return await _invite_form(
            request, facts, errors=errors, display_name=data.display_name[:200], status=422
        )
    try:
        user = await invites.accept(db, state.hasher, request, code, name, data.password)
    except Problem as problem:
        return invite_closed(problem)
    return page(
        "accounts/invite_done.html",
        name=user["display_name"],
        email=user["email"],
        organisation=facts.organisation,
        roles_in_words=facts.roles_in_words,
        inspector=facts.inspector,
    )


def _forgot_form(
    settings: Any, email: str = "", errors: list[FieldError] | None = None, status: int = 200
) -> Template:
    return page(
        "accounts/password_forgot.html",
        status=status,
        email=email,
        errors=_errors(errors or []),
        ttl_min=settings.password_reset_ttl_min,
    )


@public_page(
    "/password/forgot",
    "Forgotten password page: ask for a reset link by email",
)
async def forgot_page(state: AppState) -> Template:
    return _forgot_form(state.settings)


@public_form(
    "/password/forgot",
    "Ask for a reset link from the page (same answer whether or not the address "
    "has an account; rate limited)",
    _cross_site,
)
async def forgot_submit(
    data: ForgotBody,
    request: Request,
    db: DB,
    state: AppState,
) -> Template:
    email = data.email.strip()
    if not (3 <= len(email) <= 254 and "@" in email.strip("@") and " " not in email):
        error = FieldError("email", "Enter your email address, like name@example.org.")
        return _forgot_form(state.settings, email[:254], [error], status=422)
    try:
        await passwords.request_reset(db, state.settings, request, email)
    except Problem as problem:
        if problem.status != 429:
            raise
        return page(
            "accounts/message.html",
            status=429,
            headers=problem.headers,
            title="Too many requests",
            paragraphs=[
                "We have had too many requests for a new password for this email address, or "
                "from your connection, in the last hour.",
                problem.detail.split("; ", 1)[-1].capitalize(),
                "If you asked before, the email may already be waiting: check your spam "
                "folder too.",
            ],
            links=[{"href": "/signin", "text": "Back to sign in"}],
        )
    return message(
        200,
        "Check your email",
        passwords.SAME_ANSWER,
        links=[SIGN_IN],
    )


def _reset_closed(problem: Problem) -> Template:
    again = "/password/forgot", "Ask for a new link"
    if problem.kind == "reset-expired":
        return message(
            410,
            "This link has expired",
            "Links to choose a new password work for a short time only, and this one has "
            "run out. Your password has not changed.",
            links=[again, SIGN_IN],
        )
    if problem.kind == "reset-used":
        return message(
            410,
            "This link has already been used",
            "Each link works once, and only the latest one you asked for. If you have just "
            "chosen a new password, sign in with it.",
            links=[SIGN_IN, again],
        )
    return message(
        404,
        "This link does not work",
        "It may have been copied only in part. Open the link from the email again, or ask "
        "for a new one.",
        links=[again],
    )


async def _closed_reset(
    db: asyncpg.Connection | PoolConnectionProxy, token: str
) -> Template | None:
    """None while the link can be used, else the page saying what to do instead."""
    reset = await passwords.reset_state(db, token)
    return None if reset == "open" else _reset_closed(passwords.closed_problem(reset))


def _reset_form(request: Request, errors: list[FieldError] | None = None) -> Template:
    return page(
        "accounts/password_reset.html",
        status=422 if errors else 200,
        action=request.url.path,
        errors=_errors(errors or []),
        **PASSWORD_LIMITS,
    )


@public_page(
    "/password/reset/{token:str}",
    "Page to choose a new password, from the emailed link",
)
async def reset_page(token: FromPath[str], request: Request, db: DB) -> Template:
    return await _closed_reset(db, token) or _reset_form(request)


@public_form(
    "/password/reset/{token:str}",
    "Set the new password from the page; signs the person out on every device",
    _cross_site,
)
async def reset_submit(
    token: FromPath[str],
    data: ResetBody,
    request: Request,
    state: AppState,
) -> Template:
    errors = passwords.password_errors(data.password)
    if errors:
        async with state.pool.acquire() as db:
            closed = await _closed_reset(db, token)
        return closed or _reset_form(request, errors)
    try:
        ended = await passwords.reset_password(state.pool, state, request, token, data.password)
    except Problem as problem:
        return _reset_closed(problem)
    return message(
        200,
        "Your password has been changed",
        "You have been signed out on every device"
        + (f" ({ended} in all)" if ended > 1 else "")
        + ". Sign in again with your new password, on this computer and in the app on your "
        "phone.",
        links=[SIGN_IN],
    )


route_handlers: list[Any] = [
    invite_page,
    invite_submit,
    forgot_page,
    forgot_submit,
    reset_page,
    reset_submit,
]
