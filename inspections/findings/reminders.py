"""Reminders that a response is due soon, or overdue, written to the outbox.

The overdue *flag* needs no job (it is derived when read); telling people does. A scan
every REMINDER_INTERVAL_S enqueues each reminder once (the outbox key holds the finding
and its due date), so running it often, or in several processes at once, sends nothing
twice.
"""

from __future__ import annotations

import datetime as dt
import logging

import asyncpg
import msgspec
from litestar import Litestar

from inspections.findings import notices, workdays
from inspections.findings.queries import today
from inspections.findings.schemas import FindingSettings
from service.jobs import periodic
from service.settings import Settings

log = logging.getLogger("coassess.reminders")
# Due dates further than this are not "soon" under any setting (30 working days at most).
HORIZON = dt.timedelta(days=60)


async def scan(conn: asyncpg.Connection, settings: Settings, now: dt.date | None = None) -> int:
    """Enqueue the reminders due on ``now``; returns how many outbox rows were new."""
    now = now or today(settings.site_timezone)
    added = 0
    async with conn.transaction():
        rows = await conn.fetch(
            """select f.id, f.organisation_id, f.service_id, f.title, f.due_on,
                      s.name service_name,
                      (o.settings -> 'findings')::text findings_settings
                 from findings f join services s on s.id = f.service_id
                 join organisations o on o.id = f.organisation_id
                where f.status = 'open' and f.due_on <= $1""",
            now + HORIZON,
        )
        for r in rows:
            fs = msgspec.json.decode(r["findings_settings"] or "{}", type=FindingSettings)
            if now > r["due_on"]:
                event = "response.overdue"
            else:
                try:
                    left = workdays.working_days_between(now, r["due_on"], fs.jurisdiction)
                except ValueError:
                    continue  # beyond the shipped calendar: no reminder rather than a wrong one
                if left > fs.reminder_working_days:
                    continue
                event = "response.due_soon"
            added += await notices.reminder(conn, settings, r, event)
    return added


async def _remind(app: Litestar) -> None:
    async with app.state.pool.acquire() as conn:
        added = await scan(conn, app.state.settings)
    if added:
        log.info("reminders enqueued", extra={"added": added})


reminders_lifespan = periodic(lambda s: s.reminder_interval_s, _remind, log, "reminder scan failed")
