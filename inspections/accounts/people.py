"""Coordinators' management of people: list, change, train, devices, invites.

One function per operation, called by the JSON routes (routes.py) and by the People pages
(people_pages.py) alike, so the checks and the audit are written once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import asyncpg
from msgspec import UNSET, UnsetType

from inspections.accounts import queries as q
from inspections.accounts.clearance import clearance_reasons, from_rows
from inspections.accounts.schemas import Device, InviteSummary, TrainingRecord, User, UserDetail
from inspections.audit.log import audit
from service.auth import Principal
from service.db import from_row
from service.errors import FieldError, Problem, conflict, not_found, unprocessable
from service.schema import page_of

InviteFilter = Literal["open", "accepted", "expired", "all"]


async def list_users(
    db: asyncpg.Connection,
    caller: Principal,
    *,
    role: str | None = None,
    active: bool | None = None,
    search: str | None = None,
    ids: list[UUID] | None = None,
    after: tuple[Any, ...] = (None, None),
    limit: int = 50,
) -> tuple[list[User], str | None]:
    """People of the caller's organisation (of ``ids`` when given), oldest account first,
    and the next cursor."""
    rows = await db.fetch(
        f"""select {q.USER_COLS} from users
             where organisation_id = $1
               and ($2::text is null or $2 = any(roles))
               and ($3::bool is null or active = $3)
               and ($4::text is null or email ilike '%' || $4 || '%'
                    or display_name ilike '%' || $4 || '%')
               and ($5::timestamptz is null or (created_at, id) > ($5, $6))
               and ($8::uuid[] is null or id = any($8))
             order by created_at, id
             limit $7""",
        caller.organisation_id,
        role,
        active,
        search,
        after[0],
        after[1],
        limit + 1,
        ids,
    )
    page, nxt = page_of(rows, limit, "created_at", "id")
    return [q.to_user(r) for r in page], nxt


async def update_user(
    db: asyncpg.Connection,
    request: Any,
    caller: Principal,
    user_id: UUID,
    *,
    display_name: str | UnsetType = UNSET,
    roles: Sequence[str] | UnsetType = UNSET,
    active: bool | UnsetType = UNSET,
) -> UserDetail:
    """Change a person's name or roles, or (de)activate them; deactivating signs out every
    device. A coordinator cannot lock themself out."""
    await q.user_in_org(db, caller, user_id)
    if user_id == caller.user_id and (
        active is False or (roles is not UNSET and "coordinator" not in roles)
    ):
        raise conflict(
            "You cannot deactivate yourself or remove your own coordinator role; "
            "ask another coordinator.",
            "self-lockout",
        )
    if active is True and await db.fetchval(
        "select erased_at is not null from users where id = $1", user_id
    ):
        # Erased by anonymisation (inspections/privacy): nothing of the person is left to revive.
        raise conflict("This person was erased; invite them again instead.", "erased")
    changes: dict[str, Any] = {
        k: v
        for k, v in (("display_name", display_name), ("roles", roles), ("active", active))
        if v is not UNSET
    }
    if "roles" in changes:
        changes["roles"] = list(dict.fromkeys(changes["roles"]))
    row = await db.fetchrow(
        f"""update users set display_name = coalesce($2, display_name),
                             roles = coalesce($3, roles),
                             active = coalesce($4, active),
                             updated_at = now()
             where id = $1 returning {q.USER_COLS}""",
        user_id,
        changes.get("display_name"),
        changes.get("roles"),
        changes.get("active"),
    )
    assert row is not None  # user_in_org found it, and it is locked by the update
    if changes.get("active") is False:
        # Every device is signed out, so reactivating the person does not bring a lost
        # phone's tokens back to life: they sign in afresh.
        changes["devices_signed_out"] = await q.revoke_devices_of(
            db, user_id, "account deactivated"
        )
    if changes:
        # The log names people by id only: a new name is said to have changed, not what.
        if "display_name" in changes:
            changes["display_name_changed"] = True
            del changes["display_name"]
        await audit(db, request, "user.update", "user", user_id, changes)
    return await q.user_detail(db, row)


async def record_training(
    db: asyncpg.Connection,
    request: Any,
    caller: Principal,
    user_id: UUID,
    *,
    kind: str,
    course: str,
    completed_on: dt.date,
    expires_on: dt.date | None,
) -> TrainingRecord:
    """Record a completed training course or safeguarding check for a person."""
    await q.user_in_org(db, caller, user_id)
    if expires_on is not None and expires_on < completed_on:
        raise unprocessable(
            "The expiry date is before the date it was completed.",
            [FieldError(field="$.expires_on", reason="must not be before the date completed")],
        )
    row = await db.fetchrow(
        """insert into training_records
               (organisation_id, user_id, kind, course, completed_on, expires_on, recorded_by)
           values ($1, $2, $3, $4, $5, $6, $7)
           returning id, kind, course, completed_on, expires_on, created_at""",
        caller.organisation_id,
        user_id,
        kind,
        course,
        completed_on,
        expires_on,
        caller.user_id,
    )
    assert row is not None  # insert ... returning: always a row
    await audit(
        db,
        request,
        "training.record",
        "user",
        user_id,
        {
            "kind": kind,
            "course": course,
            "expires_on": expires_on.isoformat() if expires_on else None,
        },
    )
    return TrainingRecord(**dict(row))


async def devices_of(db: asyncpg.Connection, caller: Principal, user_id: UUID) -> list[Device]:
    """A person's signed-in (and signed-out) devices: coordinators, or the person."""
    q.self_or_coordinator(caller, user_id)
    await q.user_in_org(db, caller, user_id)
    rows = await db.fetch(
        """select id, name, created_at, last_seen_at, revoked_at, revoked_reason
             from devices where user_id = $1 order by created_at desc""",
        user_id,
    )
    return [Device(**dict(r)) for r in rows]


async def revoke_device_of(
    db: asyncpg.Connection, request: Any, caller: Principal, user_id: UUID, device_id: UUID
) -> None:
    """Sign one of a person's devices out (a lost phone): coordinators, or the person."""
    q.self_or_coordinator(caller, user_id)
    await q.user_in_org(db, caller, user_id)
    if not await db.fetchval(
        "select 1 from devices where id = $1 and user_id = $2", device_id, user_id
    ):
        raise Problem(404, "not-found", "Not found", "No such device.")
    await q.revoke_device(
        db,
        device_id,
        "revoked by coordinator" if caller.user_id != user_id else "revoked by owner",
    )
    await audit(db, request, "device.revoke", "device", device_id, {"user_id": str(user_id)})


_INVITES_SQL = """
    select id, email, roles, status, created_at, expires_at, invited_by, sent_count,
           last_sent_at, accepted_at, accepted_user_id
      from (select *, created_by as invited_by,
                   case when accepted_at is not null then 'accepted'
                        when expires_at <= now() then 'expired' else 'open' end as status
              from invites where organisation_id = $1) i"""


async def list_invites(
    db: asyncpg.Connection,
    caller: Principal,
    status: InviteFilter = "open",
    after: tuple[Any, ...] = (None, None),
    limit: int = 50,
) -> tuple[list[InviteSummary], str | None]:
    """Invites of the caller's organisation, newest first, and the next cursor."""
    rows = await db.fetch(
        _INVITES_SQL
        + """ where ($2 = 'all' or status = $2)
                and ($3::timestamptz is null or (created_at, id) < ($3, $4))
              order by created_at desc, id desc
              limit $5""",
        caller.organisation_id,
        status,
        after[0],
        after[1],
        limit + 1,
    )
    page, nxt = page_of(rows, limit, "created_at", "id")
    return [from_row(InviteSummary, r) for r in page], nxt


async def invite_summary(
    db: asyncpg.Connection, caller: Principal, invite_id: UUID
) -> InviteSummary:
    """One invite of the caller's organisation (never its code); 404 otherwise."""
    row = await db.fetchrow(_INVITES_SQL + " where id = $2", caller.organisation_id, invite_id)
    if row is None:
        raise not_found("invite")
    return from_row(InviteSummary, row)


async def clearance_due(
    db: asyncpg.Connection, caller: Principal, today: dt.date, days: int = 30
) -> dict[UUID, list[str]]:
    """Active citizen inspectors cleared today whose training or safeguarding check runs
    out within ``days``: each with the reasons they will not be cleared then."""
    people = await db.fetch(
        """select id, roles from users
            where organisation_id = $1 and active and 'citizen_inspector' = any(roles)""",
        caller.organisation_id,
    )
    records: dict[UUID, list[Any]] = {p["id"]: [] for p in people}
    for r in await db.fetch(
        """select user_id, kind, course, completed_on, expires_on from training_records
            where organisation_id = $1 and user_id = any($2::uuid[])""",
        caller.organisation_id,
        list(records),
    ):
        records[r["user_id"]].append(r)
    through = today + dt.timedelta(days=days)
    due = {}
    for p in people:
        facts = from_rows(records[p["id"]])
        if clearance_reasons(p["roles"], facts, today):
            continue  # not cleared now: a different problem than "expiring"
        later = clearance_reasons(p["roles"], facts, today, through)
        if later:
            due[p["id"]] = later
    return due
