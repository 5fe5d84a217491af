"""Create, cancel and close a visit: the operations behind POST /v1/visits (and its
cancel and close), callable without HTTP, so the pages and the JSON API share them.

Runs in the caller's transaction on ``conn``, checks the acting principal itself and raises
a service.errors.DomainError (a plain exception) for what it refuses.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import asyncpg
import msgspec

from inspections.audit.log import record
from inspections.services.queries import service_in_org
from inspections.visits import queries as q
from inspections.visits.schemas import Status, Visit, VisitCreate, VisitPage
from service.auth import Principal
from service.errors import FieldError, conflict, not_found, unprocessable
from service.schema import cursor_after, page_of


def require_coordinator(principal: Principal) -> None:
    """The routes' role guard, here too, so the pages (and any other surface) share it."""
    principal.require("coordinator")


def check_window(starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    """A visit's window: both ends with a time zone offset, and ending after it starts."""
    errors = []
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value.tzinfo is None:
            errors.append(FieldError(f"$.{name}", "needs a time zone offset (RFC 3339)"))
    if not errors and ends_at <= starts_at:
        errors.append(FieldError("$.ends_at", "must be after starts_at"))
    if errors:
        raise unprocessable("The visit window is not valid.", errors)


async def create_visit(
    conn: asyncpg.Connection,
    principal: Principal,
    body: VisitCreate,
    *,
    request_id: str | None = None,
) -> Visit:
    """Schedule a visit of one of the organisation's services, with its pinned checklist
    version (default: the latest) and a team that passes the team rules."""
    require_coordinator(principal)
    check_window(body.starts_at, body.ends_at)
    service = await service_in_org(conn, principal, body.service_id)
    checklist = await conn.fetchrow(
        """select latest_version, retired_at, service_kinds from checklists
            where id = $1 and organisation_id = $2""",
        body.checklist_id,
        principal.organisation_id,
    )
    if checklist is None:
        raise not_found("checklist")
    if checklist["retired_at"] is not None:
        raise unprocessable("This checklist is retired and cannot be used for new visits.")
    version = body.checklist_version or checklist["latest_version"]
    if version < 1 or version > checklist["latest_version"]:
        raise unprocessable(
            "That checklist version is not published.",
            [FieldError("$.checklist_version", "no such published version")],
        )
    if checklist["service_kinds"] and service.kind not in checklist["service_kinds"]:
        raise unprocessable(
            f"This checklist is for {', '.join(checklist['service_kinds'])}, not {service.kind}.",
            [FieldError("$.checklist_id", "does not apply to this kind of service")],
        )
    await q.check_team(conn, principal, service.id, body.team, body.starts_at, body.ends_at)
    visit_id = await conn.fetchval(
        """insert into visits (organisation_id, service_id, checklist_id, checklist_version,
                               starts_at, ends_at, announced, created_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8) returning id""",
        principal.organisation_id,
        service.id,
        body.checklist_id,
        version,
        body.starts_at,
        body.ends_at,
        body.announced,
        principal.user_id,
    )
    assert visit_id is not None  # insert ... returning: always a row
    await q.write_team(conn, principal, visit_id, body.team)
    await record(
        conn,
        principal.organisation_id,
        principal.user_id,
        "visit.create",
        "visit",
        visit_id,
        {
            "service_id": str(service.id),
            "checklist_version": version,
            "team": [str(m.user_id) for m in body.team],
        },
        request_id,
    )
    return await q.visit_in_org(conn, principal, visit_id)


async def _set_status(
    conn: asyncpg.Connection,
    principal: Principal,
    visit_id: UUID,
    to: str,
    allowed: tuple[str, ...],
    reason: str | None,
    request_id: str | None,
) -> Visit:
    visit = await q.locked_visit(conn, principal, visit_id)
    if visit.status not in allowed:
        raise conflict(f"A {visit.status} visit cannot become {to}.", "visit-state")
    await conn.execute(
        """update visits set status = $2, cancelled_reason = $3, updated_at = now()
            where id = $1""",
        visit_id,
        to,
        reason,
    )
    await record(
        conn,
        principal.organisation_id,
        principal.user_id,
        f"visit.{to}",
        "visit",
        visit_id,
        {"reason": reason} if reason else {},
        request_id,
    )
    return await q.visit_in_org(conn, principal, visit_id)


async def cancel_visit(
    conn: asyncpg.Connection,
    principal: Principal,
    visit_id: UUID,
    reason: str,
    *,
    request_id: str | None = None,
) -> Visit:
    """Cancel a planned or started visit (it then refuses submissions)."""
    require_coordinator(principal)
    return await _set_status(
        conn, principal, visit_id, "cancelled", ("planned", "in_progress"), reason, request_id
    )


async def close_visit(
    conn: asyncpg.Connection,
    principal: Principal,
    visit_id: UUID,
    *,
    request_id: str | None = None,
) -> Visit:
    """Close a visit as submitted, and close its door (queries.door_closed), even when every
    member was final already."""
    require_coordinator(principal)
    visit = await q.locked_visit(conn, principal, visit_id)
    if visit.status == "submitted" and visit.closed_at is None:
        await record(
            conn,
            principal.organisation_id,
            principal.user_id,
            "visit.submitted",
            "visit",
            visit_id,
            None,
            request_id,
        )
    else:
        await _set_status(
            conn, principal, visit_id, "submitted", ("planned", "in_progress"), None, request_id
        )
    await conn.execute(
        """update visits set closed_at = now(), closed_by = $2, updated_at = now()
            where id = $1 and closed_at is null""",
        visit_id,
        principal.user_id,
    )
    return await q.visit_in_org(conn, principal, visit_id)


async def visit_for(conn: asyncpg.Connection, principal: Principal, visit_id: UUID) -> Visit:
    """One visit, for its team and the organisation's coordinators (GET /v1/visits/{id})."""
    visit = await q.visit_in_org(conn, principal, visit_id)
    q.may_see_visit(principal, visit)
    return visit


async def list_visits(
    conn: asyncpg.Connection,
    principal: Principal,
    *,
    service_id: UUID | None = None,
    status: Status | None = None,
    starts_from: dt.datetime | None = None,
    starts_before: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    newest_first: bool = False,
) -> VisitPage:
    """The organisation's visits by start, soonest first (or latest first), a page at a
    time (coordinators)."""
    require_coordinator(principal)
    after = cursor_after(cursor, dt.datetime, UUID)
    order, beyond = ("desc", "<") if newest_first else ("", ">")
    rows = await conn.fetch(
        f"""select {q.VISIT_COLS} from visits v join services s on s.id = v.service_id
             where v.organisation_id = $1
               and ($2::uuid is null or v.service_id = $2)
               and ($3::text is null or v.status = $3)
               and ($4::timestamptz is null or v.starts_at >= $4)
               and ($5::timestamptz is null or v.starts_at < $5)
               and ($6::timestamptz is null or (v.starts_at, v.id) {beyond} ($6, $7))
             order by v.starts_at {order}, v.id {order} limit $8""",
        principal.organisation_id,
        service_id,
        status,
        starts_from,
        starts_before,
        *after,
        limit + 1,
    )
    page, nxt = page_of(rows, limit, "starts_at", "id")
    return VisitPage(items=[msgspec.convert(dict(r), Visit) for r in page], next_cursor=nxt)
