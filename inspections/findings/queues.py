"""The work lists of the people who answer findings: the safeguarding lead's concerns, a
service manager's recommendations and the reports waiting for their factual check.

Each list is the findings' own visibility rule (queries.VISIBLE, what the JSON API shows
the caller) narrowed to the person's queue; one finding or report is read with the API's
own ``finding_for`` / ``report_row``, so a page cannot show what the API would refuse.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from inspections.findings import rules
from inspections.findings.queries import (
    VISIBLE,
    build_report,
    finding_for,
    load_findings,
    report_row,
    today,
    visibility,
    visible_findings,
)
from inspections.findings.schemas import Finding, Report
from service.auth import Principal
from service.errors import forbidden, not_found

OPEN_CONCERN = ("raised", "acknowledged", "referred")
# A manager's recommendations still to answer or act on; the rest are finished or with
# the citizen inspectors (done_by_service).
TO_DO = ("open", *rules.WORKING)


def _lead(user: Principal) -> None:
    # The lead's screens: coordinators may handle a concern through the API, but the
    # queue (and its counts) is the safeguarding lead's alone.
    if not user.has("safeguarding_lead"):
        raise forbidden("Safeguarding concerns are handled by the safeguarding leads.")


def _manager(user: Principal) -> None:
    if not user.has("service_manager"):
        raise forbidden("These are the recommendations for the services a manager manages.")


async def concern_queue(db: asyncpg.Connection, user: Principal, tz: str) -> list[Finding]:
    """Every concern the lead may see: open ones first, oldest first; then closed, newest."""
    _lead(user)
    rows = await visible_findings(db, user, tz, severity="safeguarding", limit=500)
    rows = sorted(
        rows,
        key=lambda r: (
            (1, -r["updated_at"].timestamp(), r["id"])
            if r["status"] == "closed"
            else (0, r["created_at"].timestamp(), r["id"])
        ),
    )
    return await load_findings(db, rows, tz)


async def concern_for(
    db: asyncpg.Connection, user: Principal, finding_id: UUID, tz: str
) -> Finding:
    """One concern: the API's 404 for whoever may not see it, then the lead's screen."""
    finding = await finding_for(db, user, finding_id, tz)
    if finding.severity != "safeguarding":
        raise not_found("concern")
    _lead(user)
    return finding


async def open_concerns(db: asyncpg.Connection, user: Principal) -> int:
    """How many concerns wait for the lead (for the lead's home page only)."""
    _lead(user)
    n = await db.fetchval(
        f"select count(*) from findings f where {VISIBLE} and f.severity = 'safeguarding' "
        "and f.status = any($8::text[])",
        *visibility(user),
        list(OPEN_CONCERN),
    )
    return int(n or 0)


async def my_recommendations(
    db: asyncpg.Connection, user: Principal, tz: str
) -> tuple[list[Finding], list[Finding]]:
    """The recommendations to the services this manager manages, as the API shows them:
    (to answer or act on, finished), each overdue first, then by due date."""
    _manager(user)
    rows = await visible_findings(db, user, tz, recommendations=True, managed=True, limit=500)
    now = today(tz)
    rows = sorted(
        rows,
        key=lambda r: (
            not rules.is_overdue(r["status"], r["due_on"], now),
            r["due_on"] is None,
            r["due_on"] or now,
            r["created_at"],
            r["id"],
        ),
    )
    found = await load_findings(db, rows, tz)
    return [f for f in found if f.status in TO_DO], [f for f in found if f.status not in TO_DO]


async def my_finding(db: asyncpg.Connection, user: Principal, finding_id: UUID, tz: str) -> Finding:
    """One recommendation on the manager's screen: the API's 404 first, then the role."""
    finding = await finding_for(db, user, finding_id, tz)
    _manager(user)
    return finding


async def reports_to_check(db: asyncpg.Connection, user: Principal, tz: str) -> list[Report]:
    """Reports sent to this manager's services for a factual check, oldest first."""
    _manager(user)
    ids = await db.fetch(
        """select r.id from visit_reports r
             join service_managers sm on sm.service_id = r.service_id and sm.user_id = $2
            where r.organisation_id = $1 and r.status = 'factual_check'
            order by r.sent_at, r.id""",
        user.organisation_id,
        user.user_id,
    )
    return [await report_for(db, user, r["id"], tz) for r in ids]


async def report_for(db: asyncpg.Connection, user: Principal, report_id: UUID, tz: str) -> Report:
    """A report as the API shows this caller (its 404 when they may not read it)."""
    return await build_report(db, user, await report_row(db, user, "r.id", report_id), tz)
