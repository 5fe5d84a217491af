"""Forgotten passwords: a reset link by email, a new password, every device signed out;
and changing one's own password (``POST /v1/me/password``), other devices signed out.

- Asking gives the same answer whether or not the address has an account (and an email
  only when it has an active one), so the form cannot be used to find out who is here.
- Asking is rate limited per email address and per client address, with counters in
  PostgreSQL shared by every process (``rate_limits``, one-hour windows; limits.py).
- The link is single use and short lived (PASSWORD_RESET_TTL_MIN); only the token's
  SHA-256 is stored, and a newer request replaces older links.
- Setting the new password revokes every device of the person: their refresh and access
  tokens stop working at once.

The JSON API takes the token in the body (``POST /v1/auth/password-reset/confirm``): a
path reaches access logs. The page's link cannot avoid the path; the request log masks it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Literal, cast, get_args

import asyncpg
from argon2 import PasswordHasher
from asyncpg.pool import PoolConnectionProxy
from litestar import Request, Router, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from inspections.accounts import limits, password_rule
from inspections.accounts import queries as q
from inspections.accounts.mail import RESET_REQUESTED, enqueue_email, link_base, when
from inspections.accounts.schemas import (
    DisplayName,
    Message,
    PasswordChange,
    PasswordChanged,
    PasswordResetConfirm,
    PasswordResetRequest,
)
from inspections.audit.log import audit
from service.auth import PUBLIC, AuthedRequest, Principal
from service.db import DB
from service.errors import FieldError, Problem, problem_responses, unprocessable
from service.settings import Settings
from service.state import AppState

WINDOW_S = 3600
SAME_ANSWER = (
    "If an account uses this email address, we have sent it a link to choose a new "
    "password. The link works once, for a short time. Nothing arrived? Check your spam "
    "folder, or ask your coordinator."
)
# Bounds of the API's own types, so the pages say the same rules in words.
NAME_MAX = get_args(DisplayName)[1].max_length
# The one password rule (password_rule.py), by the names the pages use.
PASSWORD_MIN = password_rule.PASSWORD_MIN
PASSWORD_MAX = password_rule.PASSWORD_MAX
password_errors = password_rule.password_errors
require_good_password = password_rule.require_good_password

ResetState = Literal["open", "used", "expired"]


# Rules in words, for the pages (the API's msgspec types check the same bounds; passwords
# have their own rule, password_rule.py).


def name_errors(name: str, field: str = "display_name") -> list[FieldError]:
    if not name.strip():
        return [FieldError(field, "Enter your name, as others will see it.")]
    if len(name) > NAME_MAX:
        return [FieldError(field, f"Your name must be {NAME_MAX} characters or fewer.")]
    return []


# Rate limits.


async def check_rate(db: asyncpg.Connection, settings: Settings, email: str, client: str) -> None:
    """Raise 429 when this email or this client address has asked too often this hour."""
    try:
        await limits.hit(
            db,
            [
                limits.Limit(
                    limits.bucket("password-reset:email", email),
                    settings.password_reset_per_email_per_hour,
                    WINDOW_S,
                ),
                limits.Limit(
                    limits.bucket("password-reset:address", client),
                    settings.password_reset_per_address_per_hour,
                    WINDOW_S,
                ),
            ],
        )
    except limits.Exceeded as exc:
        raise limits.too_many(
            exc, "password reset requests from here or for this email address"
        ) from None


client_address = limits.client_address


# Asking for a link.


def reset_email(settings: Settings, user: asyncpg.Record, token: str, expires: dt.datetime) -> str:
    return (
        f"Hello {user['display_name'] or ''},\n\n".replace(" ,", ",")
        + "Someone, hopefully you, asked to reset the password of your Co-assessment account "
        f"with {user['organisation']}.\n\n"
        "To choose a new password, open this link:\n\n"
        f"{link_base(settings)}/password/reset/{token}\n\n"
        f"The link works once, for {settings.password_reset_ttl_min} minutes "
        f"(until {when(settings, expires)}).\n"
        "Setting a new password signs you out on every device, the app on your phone "
        "included: sign in again with the new password.\n\n"
        "If you did not ask for this, ignore this email: your password stays as it is.\n"
    )


async def request_reset(
    db: asyncpg.Connection, settings: Settings, request: Request, email: str
) -> None:
    """Email a reset link if an active account uses ``email``; nothing tells which."""
    await check_rate(db, settings, email, client_address(request))
    user = await db.fetchrow(
        """select u.id, u.organisation_id, u.email, u.display_name, o.name as organisation
             from users u join organisations o on o.id = u.organisation_id
            where lower(u.email) = lower($1) and u.active""",
        email.strip(),
    )
    if user is None:
        return
    # A newer link replaces older ones: only the latest email works.
    await db.execute(
        "update password_resets set used_at = now() where user_id = $1 and used_at is null",
        user["id"],
    )
    token, token_hash = q.new_secret()
    reset = await db.fetchrow(
        """insert into password_resets (organisation_id, user_id, token_hash, expires_at)
           values ($1, $2, $3, now() + make_interval(mins => $4))
           returning id, expires_at""",
        user["organisation_id"],
        user["id"],
        token_hash,
        settings.password_reset_ttl_min,
    )
    assert reset is not None  # insert ... returning: always a row
    await enqueue_email(
        db,
        user["organisation_id"],
        RESET_REQUESTED,
        f"{RESET_REQUESTED}:{reset['id']}",
        user["email"],
        "Reset your Co-assessment password",
        reset_email(settings, user, token, reset["expires_at"]),
        {"user_id": str(user["id"])},
    )
    await audit(
        db,
        request,
        "password.reset_requested",
        "user",
        user["id"],
        {"reset_id": str(reset["id"])},
        organisation_id=user["organisation_id"],
    )


# Using the link.


async def reset_state(
    db: asyncpg.Connection | PoolConnectionProxy, token: str
) -> ResetState | None:
    """open, used, expired, or None for a token we never issued."""
    row = await db.fetchrow(
        """select r.used_at is not null as used, r.expires_at <= now() as expired, u.active
             from password_resets r join users u on u.id = r.user_id
            where r.token_hash = $1""",
        q.digest(token),
    )
    if row is None:
        return None
    if row["used"] or not row["active"]:
        return "used"
    return "expired" if row["expired"] else "open"


def closed_problem(state: ResetState | None) -> Problem:
    if state is None:
        return Problem(
            404, "reset-not-found", "Reset link not found", "This reset link is not one we sent."
        )
    if state == "expired":
        return Problem(
            410,
            "reset-expired",
            "Reset link expired",
            "This reset link has expired; ask for a new one.",
        )
    return Problem(
        410,
        "reset-used",
        "Reset link already used",
        "This reset link was already used or replaced by a newer one; ask for a new one.",
    )


async def reset_password(
    pool: asyncpg.Pool, state: AppState, request: Request, token: str, password: str
) -> int:
    """Set the new password and sign the person out everywhere; how many devices it ended.

    Its own transaction (not the request's), committed before the answer says it is done.
    Who a caller is is read from the database with every request (inspections/caching.py),
    so the revoked devices' access tokens stop working at once, in every process.
    """
    hasher: PasswordHasher = state.hasher
    async with pool.acquire() as conn, conn.transaction():
        db = cast(asyncpg.Connection, conn)  # the pool's proxy stands for its connection
        claimed = await db.fetchrow(
            """update password_resets r set used_at = now()
                 from users u
                where r.token_hash = $1 and r.used_at is null and r.expires_at > now()
                  and u.id = r.user_id and u.active
            returning r.id, r.user_id, r.organisation_id""",
            q.digest(token),
        )
        if claimed is None:
            raise closed_problem(await reset_state(db, token))
        require_good_password(password, "$.password")  # rolls the claim back: the link stays
        password_hash = await asyncio.to_thread(hasher.hash, password)
        await db.execute(
            "update users set password_hash = $2, updated_at = now() where id = $1",
            claimed["user_id"],
            password_hash,
        )
        ended = await db.fetchval(
            """with ended as (
                   update devices set revoked_at = now(), revoked_reason = 'password reset'
                    where user_id = $1 and revoked_at is null returning 1)
               select count(*)::int from ended""",
            claimed["user_id"],
        )
        assert ended is not None  # count(*): always a row
        # Any other link still open for this person is spent too.
        await db.execute(
            "update password_resets set used_at = now() where user_id = $1 and used_at is null",
            claimed["user_id"],
        )
        await audit(
            db,
            request,
            "password.reset",
            "user",
            claimed["user_id"],
            {"reset_id": str(claimed["id"]), "devices_signed_out": ended},
            organisation_id=claimed["organisation_id"],
            actor_id=claimed["user_id"],
        )
    return ended


# Changing one's own password.


async def change_password(
    pool: asyncpg.Pool,
    state: AppState,
    request: Request,
    caller: Principal,
    current: str,
    new: str,
) -> int:
    """Set a new password for the caller, who proves the current one; every OTHER device of
    theirs is signed out (this one stays signed in). How many devices it ended.

    A wrong current password counts as a sign-in attempt (the same limits, in PostgreSQL,
    kept outside the transaction): a stolen access token must not become a way to guess it.
    """
    settings: Settings = state.settings
    async with pool.acquire() as conn:
        db = cast(asyncpg.Connection, conn)  # the pool's proxy stands for its connection
        user = await db.fetchrow(
            "select email, password_hash from users where id = $1", caller.user_id
        )
        assert user is not None  # the caller, read for this request
        try:
            await limits.check_signin(db, settings, user["email"], client_address(request))
        except limits.Exceeded as exc:
            raise limits.too_many(exc, "password attempts") from None
        matches = q.password_matches
        if not await asyncio.to_thread(matches, state.hasher, user["password_hash"], current):
            raise unprocessable(
                "Your current password is not right.",
                [FieldError("$.current_password", "Your current password is not right.")],
            )
        require_good_password(new, "$.new_password")
        password_hash = await asyncio.to_thread(state.hasher.hash, new)
        async with db.transaction():
            await db.execute(
                "update users set password_hash = $2, updated_at = now() where id = $1",
                caller.user_id,
                password_hash,
            )
            ended = await q.revoke_devices_of(
                db, caller.user_id, "password changed", keep=caller.device_id
            )
            # A reset link asked for earlier would undo this: it is spent.
            await db.execute(
                "update password_resets set used_at = now() where user_id = $1 and used_at is null",
                caller.user_id,
            )
            await audit(
                db,
                request,
                "password.change",
                "user",
                caller.user_id,
                {"devices_signed_out": ended},
                organisation_id=caller.organisation_id,
                actor_id=caller.user_id,
            )
    return ended


# The JSON API.


@post(
    "/password",
    status_code=HTTP_200_OK,
    summary="Change my password (the current one, then the new one); signs out my other devices",
    description="A wrong `current_password` is a 422 naming it, and counts against the "
    "sign-in limits (429 above them). The new password follows the same rule as everywhere: "
    "at least 15 characters, not a common password.",
    responses=problem_responses(429),
)
async def change_my_password(
    data: JSONBody[PasswordChange], request: AuthedRequest, state: AppState
) -> PasswordChanged:
    ended = await change_password(
        state.pool, state, request, request.user, data.current_password, data.new_password
    )
    return PasswordChanged(
        detail="Password changed. Your other devices were signed out: sign in there again "
        "with the new password.",
        devices_signed_out=ended,
    )


@post(
    "/password-reset",
    **PUBLIC,
    status_code=HTTP_202_ACCEPTED,
    summary="Forgotten password: email a reset link (same answer whether or not the "
    "address has an account)",
    description="Rate limited per email address and per client address "
    "(PASSWORD_RESET_PER_EMAIL_PER_HOUR, PASSWORD_RESET_PER_ADDRESS_PER_HOUR): 429 above.",
    responses=problem_responses(400, 429),
)
async def ask_for_reset(
    data: JSONBody[PasswordResetRequest], request: Request, db: DB, state: AppState
) -> Message:
    await request_reset(db, state.settings, request, data.email)
    return Message(detail=SAME_ANSWER)


@post(
    "/password-reset/confirm",
    **PUBLIC,
    status_code=HTTP_200_OK,
    summary="Set a new password with the emailed token; signs out every device",
    responses=problem_responses(400, 404, 410),
)
async def confirm_reset(
    data: JSONBody[PasswordResetConfirm], request: Request, state: AppState
) -> PasswordChanged:
    ended = await reset_password(state.pool, state, request, data.token, data.password)
    return PasswordChanged(
        detail="Password changed; every device was signed out. Sign in with the new password.",
        devices_signed_out=ended,
    )


def routers() -> list[Any]:
    return [
        Router("/v1/auth", route_handlers=[ask_for_reset, confirm_reset], tags=["auth"]),
        # Its own transactions: a wrong current password is counted, not rolled back.
        Router(
            "/v1/me",
            route_handlers=[change_my_password],
            opt={"db_transaction": False},
            tags=["me"],
        ),
    ]
