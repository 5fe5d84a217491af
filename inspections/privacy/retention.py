"""The retention job: for each organisation, delete or anonymise what is older than its
schedule (RetentionSettings), then delete the photos no row refers to any more from the
store. One audit row per organisation, kind and run, with the count (zero included), so
a data protection officer can see the job ran.

Run by ``python -m service retention`` and every RETENTION_INTERVAL_S inside the app; an
advisory lock keeps two processes from running it at once. ``now`` is a parameter so
tests (and an operator's dry thinking) set the clock instead of waiting.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, cast
from uuid import UUID

import asyncpg
import msgspec
from litestar import Litestar

from inspections.audit.log import record
from inspections.privacy import store as objects
from inspections.privacy.schemas import (
    KindCount,
    OrgRetention,
    RetentionReport,
    RetentionSettings,
)
from service.jobs import periodic
from service.storage import ObjectStore

log = logging.getLogger("coassess.retention")
RETENTION_LOCK = 7_341_202_623
CLOSED_FINDINGS = ["verified", "declined", "noted", "closed"]

_ORIGINALS_SQL = f"""
    with old as (
        select id, original_key from evidence
         where organisation_id = $1 and original_key is not null and created_at < $2
           and status in ('ready', 'rejected')
           and not exists (select 1 from evidence_jobs j where j.evidence_id = evidence.id)
         for update)
    update evidence e set {objects.STRIP_ORIGINAL}
      from old where e.id = old.id
    returning old.original_key"""

# Derivatives past their period, and every object of a photo withdrawn before the
# originals' cutoff (a withdrawn photo is evidence of nothing).
_DERIVATIVES_SQL = f"""
    with old as (
        select id, original_key, display_key, thumb_key from evidence
         where organisation_id = $1
           and (display_key is not null or thumb_key is not null or original_key is not null)
           and (created_at < $2 or deleted_at < $3)
           and status in ('ready', 'rejected')
         for update)
    update evidence e set {objects.STRIP_ORIGINAL}, display_key = null, thumb_key = null,
           caption = null, deleted_at = coalesce(e.deleted_at, now()),
           delete_reason = coalesce(e.delete_reason, 'retention')
      from old where e.id = old.id
    returning old.original_key, old.display_key, old.thumb_key"""

_SUBMISSIONS_SQL = """
    with old as (
        select s.id from submissions s
         where s.organisation_id = $1 and s.created_at < $2
           and (s.device is not null
                or exists (select 1 from answers a
                            where a.submission_id = s.id and a.comment is not null))),
    a as (update answers set comment = null
           where submission_id in (select id from old) and comment is not null)
    update submissions set device = null where id in (select id from old) returning id"""

_FINDINGS_SQL = """
    with old as (
        select id from findings
         where organisation_id = $1 and status = any($3::text[]) and updated_at < $2),
    u as (update finding_updates set note = ''
           where finding_id in (select id from old) and note <> '' returning finding_id),
    a as (update finding_actions set owner = ''
           where finding_id in (select id from old) and owner <> '' returning finding_id),
    -- A closed safeguarding concern was never public; what it said about a resident goes.
    d as (update findings set description = ''
           where id in (select id from old) and severity = 'safeguarding'
             and description <> '' returning id)
    select count(distinct f) from (select finding_id f from u
                                   union all select finding_id from a
                                   union all select id from d) t"""

_DEVICES_SQL = """
    with old as (select id from devices where organisation_id = $1 and revoked_at < $2),
    t as (delete from refresh_tokens where device_id in (select id from old))
    delete from devices where id in (select id from old) returning id"""


def _count(status: str) -> int:
    """Rows an asyncpg status line ('UPDATE 3', 'DELETE 0') says were touched."""
    return int(status.rsplit(" ", 1)[-1])


async def _org_pass(
    conn: asyncpg.Connection, org: UUID, s: RetentionSettings, now: dt.datetime
) -> tuple[list[KindCount], list[str]]:
    """One organisation's deletions, in the caller's transaction; the keys they freed."""

    def before(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    counts: list[KindCount] = []
    keys: list[Any] = []

    rows = await conn.fetch(_ORIGINALS_SQL, org, before(s.photo_originals_days))
    keys += [r["original_key"] for r in rows]
    counts.append(KindCount(kind="photo_originals", days=s.photo_originals_days, count=len(rows)))

    rows = await conn.fetch(
        _DERIVATIVES_SQL,
        org,
        before(s.photo_derivatives_days),
        before(s.photo_originals_days),
    )
    keys += [k for r in rows for k in r.values()]
    counts.append(
        KindCount(kind="photo_derivatives", days=s.photo_derivatives_days, count=len(rows))
    )

    n = len(await conn.fetch(_SUBMISSIONS_SQL, org, before(s.submissions_days)))
    counts.append(KindCount(kind="submissions", days=s.submissions_days, count=n))

    n = await conn.fetchval(_FINDINGS_SQL, org, before(s.findings_days), CLOSED_FINDINGS)
    assert n is not None  # a count always answers
    counts.append(KindCount(kind="findings", days=s.findings_days, count=n))

    n = _count(
        await conn.execute(
            """update outbox set body = ''
                where organisation_id = $1 and channel = 'email' and body <> ''
                  and coalesce(delivered_at, failed_at) < $2""",
            org,
            before(s.outbox_email_body_days),
        )
    )
    counts.append(KindCount(kind="outbox_email_bodies", days=s.outbox_email_body_days, count=n))
    n = _count(
        await conn.execute(
            """delete from outbox where organisation_id = $1
                  and coalesce(delivered_at, failed_at) < $2""",
            org,
            before(s.outbox_days),
        )
    )
    counts.append(KindCount(kind="outbox", days=s.outbox_days, count=n))

    n = len(await conn.fetch(_DEVICES_SQL, org, before(s.revoked_devices_days)))
    counts.append(KindCount(kind="revoked_devices", days=s.revoked_devices_days, count=n))

    n = _count(
        await conn.execute(
            """delete from password_resets where organisation_id = $1
                  and (used_at < $2 or expires_at < $2)""",
            org,
            before(s.signin_attempts_days),
        )
    )
    counts.append(KindCount(kind="password_resets", days=s.signin_attempts_days, count=n))

    n = _count(
        await conn.execute(
            """delete from invites where organisation_id = $1
                  and accepted_at is null and expires_at < $2""",
            org,
            before(s.expired_invites_days),
        )
    )
    counts.append(KindCount(kind="expired_invites", days=s.expired_invites_days, count=n))

    # The one delete the append-only trigger lets through (migration 0023).
    await conn.execute("set local coassess.retention = 'on'")
    n = _count(
        await conn.execute(
            "delete from audit_log where organisation_id = $1 and at < $2",
            org,
            before(s.audit_days),
        )
    )
    await conn.execute("set local coassess.retention = 'off'")
    counts.append(KindCount(kind="audit", days=s.audit_days, count=n))

    for c in counts:
        await record(
            conn,
            org,
            None,
            f"retention.{c.kind}",
            "organisation",
            org,
            {"count": c.count, "days": c.days, "before": before(c.days).isoformat()},
        )
    return counts, keys


async def run_retention(
    pool: asyncpg.Pool, store: ObjectStore, now: dt.datetime | None = None
) -> RetentionReport:
    """One pass over every organisation; ``now`` moves the clock (tests, never sleep)."""
    now = now or dt.datetime.now(dt.UTC)
    report = RetentionReport()
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)  # the pool's proxy stands for its connection
        if not await conn.fetchval("select pg_try_advisory_lock($1)", RETENTION_LOCK):
            report.skipped_locked = True
            return report
        try:
            orgs = await conn.fetch(
                "select id, settings -> 'retention' r from organisations order by id"
            )
            for o in orgs:
                schedule = msgspec.convert(o["r"] or {}, RetentionSettings)
                async with conn.transaction():
                    counts, keys = await _org_pass(conn, o["id"], schedule, now)
                # After the commit: the rows no longer name these objects. If the store
                # fails, the other organisations still run, and the orphan sweep removes
                # what is left (no row names these keys any more).
                deleted = 0
                try:
                    deleted = await objects.delete_keys(
                        store, await objects.unreferenced(conn, keys)
                    )
                except Exception:
                    log.exception("retention: deleting objects failed", extra={"org": str(o["id"])})
                report.organisations.append(
                    OrgRetention(
                        organisation_id=str(o["id"]), kinds=counts, objects_deleted=deleted
                    )
                )
            # Sign-in counters are per hashed email and address, not per organisation: kept
            # the default period after their window ends.
            report.signin_attempts_deleted = _count(
                await conn.execute(
                    """delete from rate_limits
                        where window_start + make_interval(secs => window_s) < $1""",
                    now - dt.timedelta(days=RetentionSettings().signin_attempts_days),
                )
            )
        finally:
            await conn.execute("select pg_advisory_unlock($1)", RETENTION_LOCK)
    return report


async def _retain(app: Litestar) -> None:
    report = await run_retention(app.state.pool, app.state.store)
    log.info(
        "retention",
        extra={
            "organisations": len(report.organisations),
            "objects_deleted": sum(o.objects_deleted for o in report.organisations),
        },
    )


retention_lifespan = periodic(
    lambda s: s.retention_interval_s, _retain, log, "retention run failed"
)
