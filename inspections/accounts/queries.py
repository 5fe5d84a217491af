"""SQL of the accounts slice, with the object checks beside the queries that load objects."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from uuid import UUID

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection

from inspections.accounts.clearance import clearance_reasons
from inspections.accounts.schemas import TrainingRecord, User, UserDetail
from service.auth import Principal
from service.db import from_row
from service.errors import forbidden, not_found
from service.state import app_state

USER_COLS = (
    "id, organisation_id, email, display_name, roles, active, created_at,"
    " privacy_notice_version, privacy_accepted_at"
)


def password_matches(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """argon2 verification that answers False for a wrong password or an unreadable hash."""
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> tuple[str, bytes]:
    """A random bearer secret and the hash we store (never the secret itself)."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# Who a (user, device) is now: one primary-key join, read with every request.
PRINCIPAL_SQL = """select u.organisation_id, u.roles
                     from users u join devices d on d.user_id = u.id
                    where u.id = $1 and d.id = $2 and u.active and d.revoked_at is null"""


def principal_ids(sub: str, dev: str) -> tuple[UUID, UUID] | None:
    """The token's user and device ids, or None when they are not ids."""
    try:
        return UUID(sub), UUID(dev)
    except ValueError:
        return None


async def load_principal(connection: ASGIConnection, sub: str, dev: str) -> Principal | None:
    """Who the caller is now, from the database (never cached: see inspections/caching.py)."""
    ids = principal_ids(sub, dev)
    if ids is None:
        return None
    row = await app_state(connection.app).pool.fetchrow(PRINCIPAL_SQL, *ids)
    if row is None:
        return None
    return Principal(ids[0], row["organisation_id"], frozenset(row["roles"]), ids[1])


async def user_in_org(db: asyncpg.Connection, caller: Principal, user_id: UUID) -> asyncpg.Record:
    """The user, if they are in the caller's organisation (else 404: never confirm others exist)."""
    row = await db.fetchrow(
        f"select {USER_COLS} from users where id = $1 and organisation_id = $2",
        user_id,
        caller.organisation_id,
    )
    if row is None:
        raise not_found("user")
    return row


def self_or_coordinator(caller: Principal, user_id: UUID) -> None:
    if caller.user_id != user_id and not caller.has("coordinator"):
        raise forbidden("Only coordinators may see other people's accounts.")


async def training_of(db: asyncpg.Connection, user_id: UUID) -> list[TrainingRecord]:
    rows = await db.fetch(
        """select id, kind, course, completed_on, expires_on, created_at
             from training_records where user_id = $1 order by completed_on desc, created_at""",
        user_id,
    )
    return [TrainingRecord(**dict(r)) for r in rows]


async def user_detail(db: asyncpg.Connection, row: asyncpg.Record) -> UserDetail:
    training = await training_of(db, row["id"])
    reasons = clearance_reasons(row["roles"], training, dt.date.today())
    return UserDetail(
        **dict(row), cleared_to_inspect=not reasons, clearance_reasons=reasons, training=training
    )


def to_user(row: asyncpg.Record) -> User:
    return from_row(User, row)  # a query without the consent columns leaves them None


async def user_signing_in(db: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    """The account an email signs in to (any case), with its password hash."""
    return await db.fetchrow(
        f"select {USER_COLS}, password_hash from users where lower(email) = lower($1)", email
    )


async def create_device(
    db: asyncpg.Connection, user: asyncpg.Record, name: str, ttl_days: int
) -> tuple[UUID, str]:
    device_id = await db.fetchval(
        "insert into devices (organisation_id, user_id, name) values ($1, $2, $3) returning id",
        user["organisation_id"],
        user["id"],
        name,
    )
    assert device_id is not None  # insert ... returning: always a row
    return device_id, await issue_refresh_token(db, device_id, ttl_days)


def successor_of(secret: str, token: str) -> str:
    """The refresh token that replaces ``token``: HMAC-SHA256 under the server secret.

    Deterministic, so a retried refresh recomputes the same successor without our storing
    it in clear (only its SHA-256 is kept, like every refresh token); unguessable without
    the secret, and 256 bits like ``new_secret``'s.
    """
    mac = hmac.new(secret.encode(), b"refresh-successor\0" + token.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


async def issue_refresh_token(
    db: asyncpg.Connection, device_id: UUID, ttl_days: int, token: str | None = None
) -> str:
    """Store a refresh token for the device (a new random one unless ``token`` is given)."""
    token, token_hash = (token, digest(token)) if token is not None else new_secret()
    await db.execute(
        """insert into refresh_tokens (token_hash, device_id, expires_at)
           values ($1, $2, now() + make_interval(days => $3))""",
        token_hash,
        device_id,
        ttl_days,
    )
    return token


async def revoke_devices_of(
    db: asyncpg.Connection, user_id: UUID, reason: str, keep: UUID | None = None
) -> int:
    """Sign out every device of a person (but ``keep``); how many were signed in."""
    ended = await db.fetchval(
        """with ended as (
               update devices set revoked_at = now(), revoked_reason = $2
                where user_id = $1 and revoked_at is null and id is distinct from $3
               returning 1)
           select count(*)::int from ended""",
        user_id,
        reason,
        keep,
    )
    assert ended is not None  # count(*): always a row
    return ended


async def revoke_device(db: asyncpg.Connection, device_id: UUID, reason: str) -> bool:
    status = await db.execute(
        """update devices set revoked_at = now(), revoked_reason = $2
            where id = $1 and revoked_at is null""",
        device_id,
        reason,
    )
    return status != "UPDATE 0"
