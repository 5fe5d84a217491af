"""Sign-in, tokens, invites, the caller's profile, and coordinators' user management."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Literal
from uuid import UUID

import asyncpg
from argon2 import PasswordHasher
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from msgspec.structs import asdict

from inspections.accounts import invites, limits, pages, passwords, people
from inspections.accounts import queries as q
from inspections.accounts.schemas import (
    Device,
    Invite,
    InviteAccept,
    InviteCreate,
    InvitePage,
    InviteSummary,
    Me,
    RefreshRequest,
    SignIn,
    TokenPair,
    TrainingCreate,
    TrainingRecord,
    User,
    UserDetail,
    UserPage,
    UserPatch,
)
from inspections.audit.log import audit
from service.auth import PUBLIC, AuthedRequest, coordinator_only, issue_access_token
from service.db import DB, from_row
from service.errors import Problem, problem_response, problem_responses
from service.schema import Paging, Search
from service.settings import Settings
from service.state import AppState

BAD_SIGN_IN = "Wrong email or password."
_dummy_hash: dict[int, str] = {}


async def _verify(hasher: PasswordHasher, stored: str | None, password: str) -> bool:
    # An unknown email still costs one argon2 verification, so timing does not reveal accounts.
    if stored is None:
        stored = _dummy_hash.get(id(hasher))
        if stored is None:
            stored = _dummy_hash[id(hasher)] = await asyncio.to_thread(hasher.hash, "x" * 16)
        await asyncio.to_thread(q.password_matches, hasher, stored, password)
        return False
    return await asyncio.to_thread(q.password_matches, hasher, stored, password)


async def start_session(
    db: DB, request: Request, state: AppState, user: asyncpg.Record, device: str, **detail: str
) -> tuple[UUID, str]:
    """A new device (and its refresh token) for a user who proved who they are, audited as
    their sign-in: the API's and the sign-in page's one way in."""
    async with db.transaction():
        device_id, refresh = await q.create_device(
            db, user, device, state.settings.refresh_token_ttl_days
        )
        await audit(
            db,
            request,
            "auth.sign_in",
            "device",
            device_id,
            {"device": device, **detail},
            organisation_id=user["organisation_id"],
            actor_id=user["id"],
        )
    return device_id, refresh


def _tokens(
    state: AppState, user_id: FromPath[UUID], device_id: FromPath[UUID], refresh: str
) -> TokenPair:
    settings: Settings = state.settings
    return TokenPair(
        access_token=issue_access_token(state.jwt_auth, user_id, device_id),
        token_type="bearer",
        expires_in=settings.access_token_ttl_s,
        refresh_token=refresh,
        device_id=device_id,
    )


@post(
    "/token",
    **PUBLIC,
    status_code=HTTP_200_OK,
    summary="Sign in with email and password on a named device",
    responses=problem_responses(400, 401, 403, 429),
)
async def sign_in(data: JSONBody[SignIn], request: Request, db: DB, state: AppState) -> TokenPair:
    # No request transaction here (see routers): the attempt is counted whatever happens.
    try:
        await limits.check_signin(db, state.settings, data.email, limits.client_address(request))
    except limits.Exceeded as exc:
        raise limits.too_many(exc, "sign-in attempts") from None
    user = await q.user_signing_in(db, data.email)
    ok = await _verify(state.hasher, user["password_hash"] if user else None, data.password)
    if not ok or user is None:
        raise NotAuthorizedException(BAD_SIGN_IN)
    if not user["active"]:
        raise Problem(
            403,
            "account-deactivated",
            "Account deactivated",
            "This account has been deactivated; ask your coordinator.",
        )
    device_id, refresh = await start_session(db, request, state, user, data.device)
    return _tokens(state, user["id"], device_id, refresh)


@post(
    "/refresh",
    **PUBLIC,
    status_code=HTTP_200_OK,
    summary="Rotate a refresh token (reusing an old one signs that device out)",
    description="Presenting the same token again within REFRESH_REUSE_GRACE_S of its use (a "
    "retry after a lost answer, or two requests racing) returns the same new refresh token, "
    "as long as that one has not been used yet; any later reuse signs the device out.",
    responses=problem_responses(400, 401),
)
async def refresh(
    data: JSONBody[RefreshRequest], request: Request, db: DB, state: AppState
) -> Response[TokenPair]:
    settings: Settings = state.settings
    # The row lock makes concurrent refreshes of one token take turns: the second sees the
    # first one's used_at (and successor) once it commits.
    row = await db.fetchrow(
        """select rt.device_id, rt.used_at is not null as used,
                  rt.used_at > clock_timestamp() - make_interval(secs => $2) as in_grace,
                  rt.expires_at < now() as expired,
                  d.revoked_at, d.user_id, d.organisation_id, u.active
             from refresh_tokens rt
             join devices d on d.id = rt.device_id
             join users u on u.id = d.user_id
            where rt.token_hash = $1
            for update of rt, d""",
        q.digest(data.refresh_token),
        settings.refresh_reuse_grace_s,
    )
    if row is None or row["expired"] or row["revoked_at"] or not row["active"]:
        raise NotAuthorizedException("This refresh token is not valid; sign in again.")
    assert settings.jwt_secret is not None  # create_app refuses to start without it
    successor = q.successor_of(settings.jwt_secret, data.refresh_token)
    if row["used"]:
        # A retry within the grace window gets the successor it was (or its twin was)
        # given, unless the chain has moved on since: then, as after the window, a used
        # token coming back means it was copied, and that device's whole chain ends.
        if row["in_grace"] and await db.fetchval(
            """select 1 from refresh_tokens
                where token_hash = $1 and device_id = $2 and used_at is null""",
            q.digest(successor),
            row["device_id"],
        ):
            return Response(_tokens(state, row["user_id"], row["device_id"], successor))
        # Answer without raising so the revocation commits.
        await q.revoke_device(db, row["device_id"], "refresh token reused")
        await audit(
            db,
            request,
            "auth.refresh_reuse",
            "device",
            row["device_id"],
            {},
            organisation_id=row["organisation_id"],
            actor_id=row["user_id"],
        )
        return problem_response(  # type: ignore[return-value]
            request,
            Problem(
                401,
                "refresh-token-reused",
                "Refresh token reused",
                "This refresh token was already used; the device has been signed out.",
                headers={"WWW-Authenticate": "Bearer"},
            ),
        )
    await db.execute(
        "update refresh_tokens set used_at = clock_timestamp() where token_hash = $1",
        q.digest(data.refresh_token),
    )
    await db.execute("update devices set last_seen_at = now() where id = $1", row["device_id"])
    token = await q.issue_refresh_token(
        db, row["device_id"], settings.refresh_token_ttl_days, successor
    )
    return Response(_tokens(state, row["user_id"], row["device_id"], token))


@post(
    "/logout",
    status_code=HTTP_204_NO_CONTENT,
    summary="Sign this device out (its refresh and access tokens stop working)",
    responses=problem_responses(404),
)
async def logout(data: JSONBody[RefreshRequest], request: AuthedRequest, db: DB) -> None:
    device_id = await db.fetchval(
        """select d.id from refresh_tokens rt join devices d on d.id = rt.device_id
            where rt.token_hash = $1 and d.user_id = $2""",
        q.digest(data.refresh_token),
        request.user.user_id,
    )
    if device_id is None:
        raise Problem(404, "not-found", "Not found", "No such refresh token for this account.")
    await q.revoke_device(db, device_id, "signed out")
    await audit(db, request, "auth.logout", "device", device_id)


@post(
    "/",
    guards=coordinator_only,
    summary="Invite a person: emails them a single-use link (expires); the code is shown once",
    description="The email links to `{PUBLIC_BASE_URL}/invites/{code}` (unset: the address "
    "serve listens on, `http://HOST:PORT`), where the person sets their name and password; "
    "the phone app can use `POST /v1/invites/{code}/accept` instead. `link` is what was sent.",
    responses=problem_responses(409),
)
async def create_invite(
    data: JSONBody[InviteCreate], request: AuthedRequest, db: DB, state: AppState
) -> Invite:
    settings: Settings = state.settings
    row, code = await invites.create(db, settings, request, request.user, data.email, data.roles)
    return Invite(code=code, link=invites.invite_link(settings, code), **dict(row))


@get(
    "/",
    guards=coordinator_only,
    summary="Invites of my organisation, newest first (open ones unless status says otherwise)",
)
async def list_invites(
    request: AuthedRequest,
    db: DB,
    *,
    status: FromQuery[Literal["open", "accepted", "expired", "all"]] = "open",
    paging: Paging,
) -> InvitePage:
    items, nxt = await people.list_invites(
        db, request.user, status, paging.after(dt.datetime, UUID), paging.limit
    )
    return InvitePage(items=items, next_cursor=nxt)


@post(
    "/{invite_id:uuid}/resend",
    guards=coordinator_only,
    status_code=HTTP_200_OK,
    summary="Email an open invite again, with a new link (the earlier link stops working)",
    responses=problem_responses(409, 410),
)
async def resend_invite(
    invite_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> InviteSummary:
    await invites.resend(db, state.settings, request, request.user, invite_id)
    return await people.invite_summary(db, request.user, invite_id)


@post(
    "/{code:str}/accept",
    **PUBLIC,
    summary="Accept an invite: set a display name and password, creating the account",
    description="Accepting is accepting the privacy notice at /privacy in its current version "
    "(PRIVACY_NOTICE_VERSION); the account returned records that version and when "
    "(privacy_notice_version, privacy_accepted_at).",
    responses=problem_responses(409, 410),
)
async def accept_invite(
    code: FromPath[str], data: JSONBody[InviteAccept], request: Request, db: DB, state: AppState
) -> User:
    user = await invites.accept(db, state.hasher, request, code, data.display_name, data.password)
    return q.to_user(user)


@get(
    "/",
    summary="My profile, roles and whether I am cleared to inspect",
)
async def me(request: AuthedRequest, db: DB) -> Me:
    row = await db.fetchrow(f"select {q.USER_COLS} from users where id = $1", request.user.user_id)
    assert row is not None  # the caller, read for this request
    # Cleared or not, and why, exactly as GET /v1/users/{id} says it (queries.user_detail).
    return from_row(Me, asdict(await q.user_detail(db, row)))


@get(
    "/",
    guards=coordinator_only,
    summary="People in my organisation",
)
async def list_users(
    request: AuthedRequest,
    db: DB,
    *,
    role: FromQuery[str | None] = None,
    active: FromQuery[bool | None] = None,
    q_: Search = None,
    paging: Paging,
) -> UserPage:
    items, nxt = await people.list_users(
        db,
        request.user,
        role=role,
        active=active,
        search=q_,
        after=paging.after(dt.datetime, UUID),
        limit=paging.limit,
    )
    return UserPage(items=items, next_cursor=nxt)


@get(
    "/{user_id:uuid}",
    summary="One person, with training and clearance (coordinators, or yourself)",
    responses=problem_responses(403),
)
async def get_user(user_id: FromPath[UUID], request: AuthedRequest, db: DB) -> UserDetail:
    q.self_or_coordinator(request.user, user_id)
    return await q.user_detail(db, await q.user_in_org(db, request.user, user_id))


@patch(
    "/{user_id:uuid}",
    guards=coordinator_only,
    summary="Change a person's name or roles, or deactivate them",
    responses=problem_responses(409),
)
async def patch_user(
    user_id: FromPath[UUID], data: JSONBody[UserPatch], request: AuthedRequest, db: DB
) -> UserDetail:
    # The body's fields are the operation's keyword arguments (unsent ones stay UNSET).
    return await people.update_user(db, request, request.user, user_id, **asdict(data))


@post(
    "/{user_id:uuid}/training",
    guards=coordinator_only,
    summary="Record a completed training course or safeguarding check",
)
async def add_training(
    user_id: FromPath[UUID], data: JSONBody[TrainingCreate], request: AuthedRequest, db: DB
) -> TrainingRecord:
    return await people.record_training(db, request, request.user, user_id, **asdict(data))


@get(
    "/{user_id:uuid}/devices",
    summary="Signed-in devices of a person (coordinators, or yourself)",
    responses=problem_responses(403),
)
async def list_devices(user_id: FromPath[UUID], request: AuthedRequest, db: DB) -> list[Device]:
    return await people.devices_of(db, request.user, user_id)


@delete(
    "/{user_id:uuid}/devices/{device_id:uuid}",
    summary="Sign a device out, e.g. a lost phone (coordinators, or yourself)",
    responses=problem_responses(403),
)
async def revoke_device(
    user_id: FromPath[UUID], device_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> None:
    await people.revoke_device_of(db, request, request.user, user_id, device_id)


def routers(settings: Settings) -> list[Any]:
    limits.trusted_networks(settings.trusted_proxies)  # a mistyped TRUSTED_PROXIES stops the start
    return [
        # Sign-in counts its attempts in PostgreSQL (inspections/accounts/limits.py) outside
        # any transaction, and opens its own for what it writes.
        Router("/v1/auth", route_handlers=[sign_in], opt={"db_transaction": False}, tags=["auth"]),
        Router("/v1/auth", route_handlers=[refresh, logout], tags=["auth"]),
        Router(
            "/v1/invites",
            tags=["invites"],
            route_handlers=[create_invite, list_invites, resend_invite, accept_invite],
        ),
        *passwords.routers(),
        *pages.route_handlers,
        Router("/v1/me", tags=["me"], route_handlers=[me]),
        Router(
            "/v1/users",
            tags=["users"],
            route_handlers=[
                list_users,
                get_user,
                patch_user,
                add_training,
                list_devices,
                revoke_device,
            ],
        ),
    ]
