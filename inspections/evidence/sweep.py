"""Remove what an interrupted upload left behind: objects with no row, stuck rows, and
(in the app) temp files of dead processes or stalled uploads.

Run by ``python -m service sweep-orphans`` and periodically inside the app; an advisory
lock keeps two processes from sweeping at once. Anything younger than the grace period is
left alone, since it may belong to an upload still in flight.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import asyncpg
import msgspec

from inspections.evidence.upload import remove_leftovers, upload_dir
from service.jobs import repeat
from service.storage import ObjectStore

log = logging.getLogger("inspections.evidence.sweep")
SWEEP_LOCK = 7_341_202_612


class SweepReport(msgspec.Struct):
    rows_removed: int = 0
    objects_removed: int = 0
    objects_seen: int = 0
    skipped_locked: bool = False


async def sweep(
    pool: asyncpg.Pool, store: ObjectStore, grace: dt.timedelta, prefix: str = "orgs/"
) -> SweepReport:
    """One pass; ``prefix`` narrows the objects considered (e.g. one organisation)."""
    report = SweepReport()
    async with pool.acquire() as conn:
        if not await conn.fetchval("select pg_try_advisory_lock($1)", SWEEP_LOCK):
            report.skipped_locked = True
            return report
        try:
            # 1. Rows stuck before 'ready' (phone never sent the bytes, or a crash).
            stale = await conn.fetch(
                """delete from evidence
                    where status in ('uploading', 'processing')
                      and greatest(updated_at, coalesce(upload_expires_at, updated_at))
                          < now() - $1::interval
                      -- a queued photo is stored, not stuck (media/jobs.py)
                      and not exists (select 1 from evidence_jobs j
                                       where j.evidence_id = evidence.id)
                returning id, organisation_id, upload_key""",
                grace,
            )
            report.rows_removed = len(stale)
            for r in stale:
                log.info("removed stuck upload", extra={"evidence_id": str(r["id"])})
            # 2. Objects no row refers to.
            cutoff = dt.datetime.now(dt.UTC) - grace
            paginator = store.client.get_paginator("list_objects_v2")
            pages = await asyncio.to_thread(
                lambda: list(paginator.paginate(Bucket=store.bucket, Prefix=prefix))
            )
            candidates = [
                o["Key"]
                for page in pages
                for o in page.get("Contents", [])
                if o["LastModified"] < cutoff
            ]
            report.objects_seen = sum(len(p.get("Contents", [])) for p in pages)
            if candidates:
                referenced = {
                    r["k"]
                    for r in await conn.fetch(
                        """select k from unnest($1::text[]) k
                            where exists (select 1 from evidence e
                                           where e.original_key = k or e.display_key = k
                                              or e.thumb_key = k
                                              or (e.upload_key = k and e.status = 'uploading'))""",
                        candidates,
                    )
                }
                orphans = [k for k in candidates if k not in referenced]
                for i in range(0, len(orphans), 1000):
                    batch = orphans[i : i + 1000]
                    await store.call(
                        "delete_objects",
                        Bucket=store.bucket,
                        Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                    )
                report.objects_removed = len(orphans)
            # Stray keys are logged so an operator can see what was cleaned.
            if report.objects_removed or report.rows_removed:
                log.info("sweep", extra=msgspec.to_builtins(report))
        finally:
            await conn.execute("select pg_advisory_unlock($1)", SWEEP_LOCK)
    return report


async def _sweep_all(app: Any) -> None:
    settings = app.state.settings
    try:
        # Temp files are per machine (no lock): those of dead processes, and uploads
        # not written to for the grace period.
        removed = await asyncio.to_thread(
            remove_leftovers, upload_dir(settings), settings.sweep_grace_s
        )
        if removed:
            log.info("removed stale upload files", extra={"files": removed})
    except OSError:
        log.exception("sweeping the upload folder failed")
    await sweep(app.state.pool, app.state.store, dt.timedelta(seconds=settings.sweep_grace_s))


async def sweep_forever(app: Any) -> None:
    """Sweep every SWEEP_INTERVAL_S, the first time one interval after start-up."""
    await repeat(
        app.state.settings.sweep_interval_s,
        lambda: _sweep_all(app),
        log,
        "sweep failed",
        wait_first=True,
    )
