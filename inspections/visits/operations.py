"""Create a visit: the operation behind POST /v1/visits, callable without HTTP.

Runs in the caller's transaction on ``conn``, checks the acting principal itself and raises
a service.errors.DomainError (a plain exception) for what it refuses.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

from inspections.audit.log import record
from inspections.services.queries import service_in_org
from inspections.visits import queries as q
from inspections.visits.schemas import Visit, VisitCreate
from service.auth import Principal
from service.errors import FieldError, forbidden, not_found, unprocessable


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
    if not principal.has("coordinator"):
        raise forbidden("This needs one of the roles: coordinator.")
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
