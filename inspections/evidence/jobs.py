"""The photo processing queue: derivatives and the full-decode check after the 202.

An upload is acknowledged once its original is stored; its row is ``processing`` and a
row in ``evidence_jobs`` (migration 0015) says it still needs processing. A worker in every
app process (evidence_lifespan) claims due jobs with ``FOR UPDATE SKIP LOCKED``, and the claim
pushes ``run_at`` forward by the lease: a process that dies mid-job (kill -9, OOM) leaves
the row to be claimed again when the lease runs out, and a crash before any claim leaves it
due at once. The worker decodes in the image process pool, writes both derivatives, then
marks the evidence ``ready`` and deletes the job in one transaction. Failures that may pass
(the store down, a worker process killed) are retried with backoff; after
``photo_job_max_attempts`` the evidence is ``rejected``. A photo whose full decode fails
(damage the cheap checks before the 202 cannot see) is ``rejected`` at once with a reason
the phone reads when it polls; the phone still has its copy and sends it again.

Processing is idempotent (derivative keys are per evidence id, the final update only
touches a ``processing`` row), so a job run twice after a lease ran out is harmless.

Uploads first: a phone waits for its 202, nobody waits for a derivative. While this process
is receiving uploads, its workers claim no new job, for at most ``photo_defer_max_s`` each
time, so a team's phones syncing at once after a visit get the CPUs, and the queue still
moves under a steady stream of uploads (scripts/bench_photos measures both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from inspections.audit.log import record
from inspections.evidence import ingest
from inspections.evidence import queries as q
from inspections.evidence.upload import new_temp_file, upload_dir
from media.detect import ImageRejected

log = logging.getLogger("inspections.evidence.jobs")

CHANNEL = "coassess_evidence_jobs"  # NOTIFYed by the evidence_jobs trigger (migration 0015)
BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 600.0
GAVE_UP = (
    "We could not process this photo after several tries; please send it again "
    "(your phone still has it)."
)

CLAIM_SQL = """
update evidence_jobs j
   set run_at = now() + make_interval(secs => $1), attempts = j.attempts + 1, claimed_by = $2
 where j.evidence_id = (select evidence_id from evidence_jobs where run_at <= now()
                         order by run_at limit 1 for update skip locked)
returning j.evidence_id, j.attempts"""


def backoff_s(attempts: int) -> float:
    """5 s doubling per failed attempt, capped at 10 min, with equal jitter."""
    base = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(max(attempts, 1) - 1, 20))
    return base / 2 + random.random() * base / 2


class PhotoJobs:
    """This process's workers: ``image_workers`` claim loops feeding the image pool."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.settings = app.state.settings
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        # Photos this process received and acknowledged: processed from the local copy
        # when this process claims them (else fetched from the store).
        self.local: dict[UUID, Path] = {}
        self._wakes: list[asyncio.Event] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        # Uploads being received by this process; set while there are none.
        self._receiving = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.deferred = 0  # claims that waited for uploads (tests read it)

    # -- lifetime -----------------------------------------------------------------------

    def start(self) -> None:
        for i in range(max(1, self.settings.image_workers)):
            wake = asyncio.Event()
            self._wakes.append(wake)
            self._tasks.append(asyncio.create_task(self._loop(wake), name=f"photo-jobs-{i}"))

    async def stop(self) -> None:
        self._stop.set()
        for w in self._wakes:
            w.set()
        # A job cut off here is claimed again after its lease: nothing is lost.
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        for path in self.local.values():
            with contextlib.suppress(OSError):
                path.unlink()
        self.local.clear()

    def keep(self, evidence_id: UUID, path: Path) -> None:
        """Hand the received file to the worker (it removes it when done)."""
        self.local[evidence_id] = path

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Around receiving and storing an upload: claims wait meanwhile (uploads first)."""
        self._receiving += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._receiving -= 1
            if self._receiving == 0:
                self._idle.set()

    async def _uploads_first(self) -> None:
        if self._idle.is_set():
            return
        self.deferred += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.settings.photo_defer_max_s)

    def wake(self) -> None:
        for w in self._wakes:
            w.set()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            conn = await asyncpg.connect(self.settings.database_url, timeout=10)
            await conn.add_listener(CHANNEL, lambda *_: self.wake())
            conn.add_termination_listener(lambda _c: self.wake())
        except Exception:  # polling still finds every job, only later
            log.warning("photo job listener unavailable; polling until it reconnects")
            return
        self._listener = conn

    async def _loop(self, wake: asyncio.Event) -> None:
        interval = self.settings.photo_job_interval_s
        while not self._stop.is_set():
            await self._listen()
            wake.clear()  # before claiming: a NOTIFY during the pass wakes the next one
            try:
                while not self._stop.is_set() and await self.run_one():
                    pass
            except Exception:  # the database away: the next pass tries again
                log.exception("photo job pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)

    # -- one job ------------------------------------------------------------------------

    async def run_one(self) -> bool:
        """Claim and process one due job; False when none is due."""
        state, settings = self.app.state, self.settings
        await self._uploads_first()
        async with q.connection(state.pool) as db:
            job = await db.fetchrow(CLAIM_SQL, float(settings.photo_job_lease_s), self.me)
            if job is None:
                return False
            row = await q.evidence_by_id(db, job["evidence_id"])
        evidence_id = job["evidence_id"]
        if row is None or row["status"] != "processing" or row["deleted_at"] is not None:
            await self._finish(evidence_id, None)  # nothing left to do
            return True
        if job["attempts"] > settings.photo_job_max_attempts:
            await self._reject(row, "processing-failed", GAVE_UP)
            return True
        path, fetched = await self._source(row)
        try:
            processed = await state.images.process(str(path), settings.max_photo_pixels)
            object_keys = await ingest.store_derivatives(
                state.store, row["organisation_id"], evidence_id, processed
            )
        except ImageRejected as exc:
            await self._reject(row, exc.kind, exc.detail)
            self._drop(evidence_id, path)
            return True
        except Exception as exc:  # the store, a killed worker process: try again later
            await self._retry(evidence_id, job["attempts"], exc)
            if fetched:
                self._drop(evidence_id, path)
            return True
        w, h = processed.derivatives.source_size
        await self._finish(evidence_id, {**object_keys, "width": w, "height": h})
        self._drop(evidence_id, path)
        return True

    async def _source(self, row: Any) -> tuple[Path, bool]:
        """The photo's bytes in a local file: the received one, else from the store."""
        path = self.local.get(row["id"])
        if path is not None and path.exists():
            return path, False
        store = self.app.state.store

        def fetch() -> Path:
            # Like a received photo (the app's folder, evidence-<pid>-...), so that what a
            # crash leaves is removed at the next start or by the sweep.
            fd, tmp = new_temp_file(upload_dir(self.app.state.settings))
            try:
                with os.fdopen(fd, "wb") as out:
                    body = store.client.get_object(Bucket=store.bucket, Key=row["original_key"])
                    for chunk in body["Body"].iter_chunks(1 << 20):
                        out.write(chunk)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return tmp

        return await asyncio.to_thread(fetch), True

    def _drop(self, evidence_id: UUID, path: Path) -> None:
        self.local.pop(evidence_id, None)
        with contextlib.suppress(OSError):
            path.unlink()

    async def _finish(self, evidence_id: UUID, fields: dict[str, Any] | None) -> None:
        async with q.connection(self.app.state.pool) as db, db.transaction():
            if fields:
                sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(fields, start=2))
                await db.execute(
                    f"""update evidence set status = 'ready', {sets}, updated_at = now()
                         where id = $1 and status = 'processing'""",
                    evidence_id,
                    *fields.values(),
                )
            await db.execute("delete from evidence_jobs where evidence_id = $1", evidence_id)

    async def _retry(self, evidence_id: UUID, attempts: int, exc: BaseException) -> None:
        error = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:500]
        log.warning(
            "photo processing failed; will retry",
            extra={"evidence_id": str(evidence_id), "attempt": attempts, "error": error},
        )
        async with q.connection(self.app.state.pool) as db:
            await db.execute(
                """update evidence_jobs set run_at = now() + make_interval(secs => $2),
                          last_error = $3 where evidence_id = $1""",
                evidence_id,
                backoff_s(attempts),
                error,
            )

    async def _reject(self, row: Any, kind: str, detail: str) -> None:
        # The row stays, with the reason the phone reads when it polls; the original goes
        # unless other evidence has the same bytes.
        async with q.connection(self.app.state.pool) as db, db.transaction():
            done = await db.fetchval(
                """update evidence set status = 'rejected', rejected_kind = $2,
                          rejected_reason = $3, original_key = null, updated_at = now()
                    where id = $1 and status = 'processing' returning id""",
                row["id"],
                kind,
                detail,
            )
            await db.execute("delete from evidence_jobs where evidence_id = $1", row["id"])
            shared = await db.fetchval(
                "select exists (select 1 from evidence where original_key = $1)",
                row["original_key"],
            )
            if done is not None:
                await record(
                    db,
                    row["organisation_id"],
                    None,
                    "evidence.reject",
                    "evidence",
                    row["id"],
                    {"reason": detail, "after": "acknowledged"},
                )
        if not shared and row["original_key"]:
            # The same damaged bytes elsewhere would be rejected too, so nothing needs them.
            store = self.app.state.store
            with contextlib.suppress(Exception):  # else the sweeper removes it later
                await store.call("delete_object", Bucket=store.bucket, Key=row["original_key"])
