"""The evidence slice's SQL, and the checks that sit beside the queries loading the objects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NamedTuple, cast
from uuid import UUID

import asyncpg

from inspections.audit.log import Entry, insert_from
from inspections.checklists.queries import version_in_org
from inspections.checklists.questions import questions
from inspections.evidence.schemas import EvidenceMeta
from inspections.visits.queries import VISIT_COLS, door_closed, visit_of
from inspections.visits.schemas import Visit
from service.auth import Principal
from service.db import row_or_404
from service.errors import FieldError, conflict, forbidden, not_found, unprocessable


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, typed as one (the pool's proxy forwards every method)."""
    async with pool.acquire() as conn:
        yield cast(asyncpg.Connection, conn)


async def evidence_by_id(db: asyncpg.Connection, evidence_id: UUID) -> Any:
    """The one query for a row by id, whoever's it is (None if there is none)."""
    return await db.fetchrow("select * from evidence where id = $1", evidence_id)


async def evidence_in_org(db: asyncpg.Connection, user: Principal, evidence_id: UUID) -> Any:
    """The caller's organisation's evidence, not withdrawn; 404 otherwise."""
    row = await evidence_by_id(db, evidence_id)
    if row is None or row["organisation_id"] != user.organisation_id or row["deleted_at"]:
        raise not_found("evidence")
    return row


def check_mine(row: Any, user: Principal) -> None:
    """An evidence id is the phone's: someone else's (or another organisation's) is taken."""
    if row["organisation_id"] != user.organisation_id or row["uploaded_by"] != user.user_id:
        raise conflict("This evidence id is already in use.", "evidence-id-taken")


async def visit_for_upload(db: asyncpg.Connection, user: Principal, meta: EvidenceMeta) -> Visit:
    """Only team members add evidence, only while the visit's door is open (DOOR_RULE)."""
    return (await upload_target(db, user, meta))[0]


class Site(NamedTuple):
    """What ingesting a photo needs to know of its visit's service, and of the visit."""

    service: Any  # lat, lon, geofence_m of the visit's service
    duplicate: UUID | None  # live evidence of the same visit with the same bytes


def _duplicate(sha: str) -> str:
    """SQL: live evidence of visit ``v`` with the bytes whose SHA-256 is parameter ``sha``
    (none when it is null)."""
    return f"""(select e.id from evidence e
                 where e.visit_id = v.id and e.sha256 = {sha}
                   and e.status <> 'rejected' and e.deleted_at is null
                 limit 1)"""


async def upload_target(
    db: asyncpg.Connection, user: Principal, meta: EvidenceMeta, sha: bytes | None = None
) -> tuple[Visit, Site]:
    """The visit a photo is for, checked as ``visit_for_upload`` says, and its Site (the
    duplicate only when ``sha`` is given): the visit, its door and its service's place in
    one round trip, as a photo's answer waits on it."""
    row = await row_or_404(
        db,
        "visit",
        f"""select {VISIT_COLS},
                   (select r.status from visit_reports r where r.visit_id = v.id) report_status,
                   s.lat, s.lon, s.geofence_m, {_duplicate("$3")} duplicate
              from visits v join services s on s.id = v.service_id
             where v.id = $1 and v.organisation_id = $2""",
        meta.visit_id,
        user.organisation_id,
        sha,
    )
    visit = visit_of(row)
    if visit.member(user.user_id) is None:
        raise forbidden("Only members of this visit's team can add evidence to it.")
    closed = door_closed(visit, row["report_status"])
    if closed is not None:
        raise conflict(closed, "visit-closed")
    errors = []
    if meta.submission_id is not None:
        owner = await db.fetchval(
            "select user_id from submissions where id = $1 and visit_id = $2",
            meta.submission_id,
            visit.id,
        )
        if owner is not None and owner != user.user_id:
            errors.append(FieldError("$.submission_id", "not your submission"))
    if meta.question_key is not None:
        version = await version_in_org(
            db, user.organisation_id, visit.checklist_id, visit.checklist_version
        )
        if meta.question_key not in {q.key for q in questions(version.content)}:
            errors.append(FieldError("$.question_key", "no such question in this checklist"))
    if errors:
        raise unprocessable("The evidence metadata does not fit this visit.", errors)
    return visit, Site(row, row["duplicate"])


async def site_for_ingest(db: asyncpg.Connection, visit: Visit, sha: bytes) -> Site:
    """The service's place and any duplicate of these bytes in the visit: one round trip."""
    row = await db.fetchrow(
        f"""select s.lat, s.lon, s.geofence_m, {_duplicate("$2")} duplicate
              from visits v join services s on s.id = v.service_id where v.id = $1""",
        visit.id,
        sha,
    )
    assert row is not None  # the visit was loaded in this request
    return Site(row, row["duplicate"])


def safeguarded(caller: str, privileged: str) -> str:
    """SQL: evidence row ``e`` is hidden from the caller (parameter ``caller``; ``privileged``
    true for coordinators and safeguarding leads). A photo linked to a safeguarding concern
    is as private as the concern: only coordinators, safeguarding leads, whoever uploaded
    it and whoever raised the concern see it."""
    return f"""(exists (select 1 from findings f
                         where f.severity = 'safeguarding' and e.id = any(f.evidence_ids)
                           and f.raised_by <> {caller})
                and e.uploaded_by <> {caller} and not {privileged})"""


async def may_read_evidence(db: asyncpg.Connection, user: Principal, row: Any) -> None:
    """Coordinators and scrutiny members of the organisation, and the visit's team; a
    safeguarding concern's photos only as the concern itself (see safeguarded)."""
    lead = user.has("coordinator", "safeguarding_lead")
    guard: Any = await db.fetchrow(
        f"""select {safeguarded("$2", "$3")} hidden,
                   exists (select 1 from findings f where f.severity = 'safeguarding'
                              and e.id = any(f.evidence_ids)) concern
              from evidence e where e.id = $1""",
        row["id"],
        user.user_id,
        lead,
    )
    if guard["hidden"]:
        raise not_found("evidence")
    if lead and guard["concern"]:
        return  # a safeguarding lead reads the concern's photos, though not on the team
    if user.has("coordinator", "scrutiny_member"):
        return
    member = await db.fetchval(
        "select 1 from visit_members where visit_id = $1 and user_id = $2",
        row["visit_id"],
        user.user_id,
    )
    if not member:
        raise forbidden("Only the visit's team, coordinators and scrutiny members see evidence.")


async def visit_evidence(db: asyncpg.Connection, user: Principal, visit_id: UUID) -> list[Any]:
    """A visit's evidence as this caller may see it (safeguarded photos left out)."""
    return await db.fetch(
        f"""select * from evidence e where e.visit_id = $1 and e.deleted_at is null
              and not {safeguarded("$2", "$3")}
            order by e.created_at, e.id""",
        visit_id,
        user.user_id,
        user.has("coordinator", "safeguarding_lead"),
    )


def _insert_sql(cols: list[str], tail: str = "") -> str:
    return f"""insert into evidence ({", ".join(cols)})
               values ({", ".join(f"${i}" for i in range(1, len(cols) + 1))}) {tail}"""


async def insert_uploading(db: asyncpg.Connection, row: dict[str, Any]) -> None:
    """A presigned upload started: the row waits for its bytes (status 'uploading')."""
    await db.execute(_insert_sql(list(row)), *row.values())


async def insert_queued(db: asyncpg.Connection, row: dict[str, Any], entry: Entry) -> Any:
    """Insert the row, its job and its audit line in one statement (atomic without a
    transaction); the new row, or None when a racing twin (same id or same bytes) won."""
    n = len(row)
    return await db.fetchrow(
        f"""with e as ({_insert_sql(list(row), "on conflict do nothing returning *")}),
                 j as (insert into evidence_jobs (evidence_id) select id from e),
                 a as ({insert_from("e", n + 1)})
            select * from e""",
        *row.values(),
        *entry,
    )


async def update_queued(
    db: asyncpg.Connection, evidence_id: UUID, fields: dict[str, Any], entry: Entry
) -> Any:
    """A presigned upload, completed: now stored, queued and audited, in one statement; the
    row, or None when it was no longer waiting for its bytes (a racing complete got there
    first)."""
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(fields, start=2))
    return await db.fetchrow(
        f"""with e as (update evidence set {sets}, upload_key = null, updated_at = now()
                        where id = $1 and status = 'uploading' returning *),
                 j as (insert into evidence_jobs (evidence_id) select id from e
                       on conflict do nothing),
                 a as ({insert_from("e", len(fields) + 2)})
            select * from e""",
        evidence_id,
        *fields.values(),
        *entry,
    )


async def reject_upload(db: asyncpg.Connection, evidence_id: UUID, kind: str, detail: str) -> bool:
    """A presigned upload whose bytes were refused; False if it was no longer waiting."""
    done = await db.fetchval(
        """update evidence set status = 'rejected', rejected_kind = $2, rejected_reason = $3,
                  upload_key = null, updated_at = now()
            where id = $1 and status = 'uploading' returning id""",
        evidence_id,
        kind,
        detail,
    )
    return done is not None


async def withdraw(db: asyncpg.Connection, evidence_id: UUID, by: UUID, reason: str) -> None:
    await db.execute(
        """update evidence set deleted_at = now(), deleted_by = $2, delete_reason = $3,
                  updated_at = now() where id = $1""",
        evidence_id,
        by,
        reason,
    )


async def queue_full(db: asyncpg.Connection, limit: int) -> int | None:
    """How many photos wait when there are at least ``limit``, else None (bounded count)."""
    n: Any = await db.fetchval(
        "select count(*) from (select 1 from evidence_jobs limit $1) j", max(limit, 1)
    )
    return n if n >= limit else None
