"""The coordinator's "what needs doing now" panel on the home page (inspections/web/home.py;
people_pages.py registers it).

Each line is a count with a link to the screen that deals with it. The counts use the
owning slices' own rules: reports to review as the Reports list has them
(findings/queries.report_visits), findings through their visibility rule (findings/queries.VISIBLE,
so a coordinator who manages a service is not told about its safeguarding concerns), invites
through the People functions, clearance through accounts/clearance.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from inspections.accounts import people
from inspections.findings.queries import VISIBLE, report_visits, today, visibility
from inspections.wording import noun
from service.auth import AuthedRequest, Principal
from service.db import DB
from service.state import app_state

DUE_DAYS = 30


async def _counts(db: asyncpg.Connection, user: Principal, tz: str) -> asyncpg.Record:
    row = await db.fetchrow(
        f"""select
            (select count(*) from visit_reports
              where organisation_id = $1 and status = 'factual_check')::int factual_check,
            (select count(*) from findings f where {VISIBLE}
                and f.status = 'open' and f.due_on < $8)::int overdue,
            (select count(*) from findings f where {VISIBLE} and f.severity = 'safeguarding'
                and f.status in ('raised', 'acknowledged', 'referred'))::int concerns,
            (select count(*) from outbox
              where organisation_id = $1 and failed_at is not null)::int failed""",
        *visibility(user),
        today(tz),
    )
    assert row is not None  # counts: always a row
    return row


async def coordinator_panel(
    db: DB, user: Principal, request: AuthedRequest
) -> tuple[str, dict[str, Any]]:
    """What needs doing now, for a coordinator: each a count and where to deal with it."""
    tz = app_state(request.app).settings.site_timezone
    c = await _counts(db, user, tz)
    to_review = await report_visits(db, user.organisation_id, tz, to_review=True, limit=None)
    open_invites, _ = await people.list_invites(db, user, "open", limit=200)
    expired, _ = await people.list_invites(db, user, "expired", limit=200)
    due = await people.clearance_due(db, user, dt.date.today(), DUE_DAYS)
    lead = user.has("safeguarding_lead")
    items = [
        (len(to_review), "report to review", "reports to review", "/reports"),
        (
            c["factual_check"],
            "report with a service for its factual check",
            "reports with services for their factual check",
            "/reports",
        ),
        (c["overdue"], "recommendation overdue", "recommendations overdue", "/reports"),
        (
            c["concerns"],
            "safeguarding concern open",
            "safeguarding concerns open",
            "/concerns" if lead else None,  # a count only, unless they handle concerns
        ),
        (c["failed"], "notification that failed", "notifications that failed", "/notifications"),
        (
            len(open_invites),
            "invite not accepted yet",
            "invites not accepted yet",
            "/people/invites",
        ),
        (
            len(expired),
            "invite expired without being accepted",
            "invites expired without being accepted",
            "/people/invites?status=expired",
        ),
        (
            len(due),
            f"citizen inspector whose training or check runs out within {DUE_DAYS} days",
            f"citizen inspectors whose training or checks run out within {DUE_DAYS} days",
            "/people?clearance=expiring",
        ),
    ]
    todo = [
        {"n": n, "words": noun(n, one, many), "href": href} for n, one, many, href in items if n
    ]
    return "accounts/home_panel.html", {"todo": todo}
