"""SQL of the submissions slice: reading submissions back, writing answers and scores."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from inspections.accounts.clearance import Training, from_rows
from inspections.checklists.questions import needs_photo
from inspections.idempotent import etag_of
from inspections.submissions.schemas import AnswerOut, Submission, SubmissionPut
from inspections.submissions.validate import ScoredAnswer
from inspections.visits.schemas import Visit
from service.errors import FieldError

SUBMISSION_SQL = """
    select s.id, s.visit_id, s.user_id, u.display_name, s.perspective, s.state, s.body_hash,
           s.device, s.client_started_at started_at, s.client_updated_at updated_at,
           s.created_at, s.updated_at saved_at, s.finalised_at
      from submissions s join users u on u.id = s.user_id"""


async def answers_of(db: asyncpg.Connection, ids: list[UUID]) -> dict[UUID, list[AnswerOut]]:
    out: dict[UUID, list[AnswerOut]] = defaultdict(list)
    # Each submission's answers as one JSON array, converted by msgspec in one call: building
    # a Struct per row in Python was a tenth of a final PUT's server CPU (100 answers).
    for r in await db.fetch(
        """select submission_id,
                  json_agg(json_build_object(
                      'question_key', question_key, 'value', value, 'na', na,
                      'comment', comment, 'points', points, 'max_points', max_points)
                      order by position) answers
             from answers where submission_id = any($1::uuid[])
            group by submission_id""",
        ids,
    ):
        out[r["submission_id"]] = msgspec.convert(r["answers"], list[AnswerOut])
    return out


def submission_from(row: Any, answers: list[AnswerOut]) -> Submission:
    fields = {k: row[k] for k in Submission.__struct_fields__ if k not in ("answers", "etag")}
    return Submission(**fields, answers=answers, etag=etag_of(row["body_hash"]))


async def load_submission(db: asyncpg.Connection, submission_id: UUID) -> Submission:
    row = await db.fetchrow(SUBMISSION_SQL + " where s.id = $1", submission_id)
    return submission_from(row, (await answers_of(db, [submission_id]))[submission_id])


async def stored_for_update(db: asyncpg.Connection, submission_id: UUID) -> Any:
    """The stored submission under this id, locked (None when the id is new)."""
    return await db.fetchrow(
        "select visit_id, user_id, state, body_hash from submissions where id = $1 for update",
        submission_id,
    )


async def training_of(db: asyncpg.Connection, user_id: UUID) -> list[Training]:
    return from_rows(
        await db.fetch(
            "select kind, course, completed_on, expires_on from training_records "
            "where user_id = $1",
            user_id,
        )
    )


def _columns(data: SubmissionPut, body_hash: bytes) -> list[Any]:
    """state, body_hash, device, client_started_at, client_updated_at, and whether final."""
    return [
        data.state,
        body_hash,
        data.device,
        data.started_at,
        data.updated_at,
        data.state == "final",
    ]


async def insert_submission(
    db: asyncpg.Connection,
    submission_id: UUID,
    organisation_id: UUID,
    visit_id: UUID,
    user_id: UUID,
    perspective: str,
    body_hash: bytes,
    data: SubmissionPut,
) -> bool:
    """False when the inspector already has another submission for this visit."""
    inserted = await db.fetchval(
        """insert into submissions (id, organisation_id, visit_id, user_id, perspective,
               state, body_hash, device, client_started_at, client_updated_at, finalised_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, case when $11 then now() end)
           on conflict do nothing returning id""",
        submission_id,
        organisation_id,
        visit_id,
        user_id,
        perspective,
        *_columns(data, body_hash),
    )
    return inserted is not None


async def other_submission(db: asyncpg.Connection, visit_id: UUID, user_id: UUID) -> UUID | None:
    return await db.fetchval(
        "select id from submissions where visit_id = $1 and user_id = $2", visit_id, user_id
    )


async def update_submission(
    db: asyncpg.Connection, submission_id: UUID, body_hash: bytes, data: SubmissionPut
) -> None:
    await db.execute(
        """update submissions set state = $2, body_hash = $3, device = $4,
                  client_started_at = $5, client_updated_at = $6, updated_at = now(),
                  finalised_at = case when $7 then now() end
            where id = $1""",
        submission_id,
        *_columns(data, body_hash),
    )


async def write_answers(
    db: asyncpg.Connection,
    submission_id: UUID,
    org: UUID,
    scored: list[ScoredAnswer],
    *,
    replace: bool = True,
) -> None:
    """Store the answers (``replace``: instead of those stored; a new submission has none)."""
    if replace:
        await db.execute("delete from answers where submission_id = $1", submission_id)
    if not scored:
        return
    # One round trip and one JSON parameter (encoded by msgspec) for all answers, whatever
    # their number: asyncpg encodes each of 11 array parameters item by item in Python (an
    # ABC isinstance check per item), which cost a final PUT of 100 answers ~1 ms of CPU.
    await db.execute(
        """insert into answers (submission_id, organisation_id, position, question_key, domain,
                                value, na, comment, points, max_points, weight)
           select $1, $2, a.p, a.k, a.d, a.v, a.n, a.c, a.pt, a.mx, a.w
             from json_to_recordset($3::json)
                  as a(p int, k text, d text, v jsonb, n bool, c text, pt real, mx real,
                       w real)""",
        submission_id,
        org,
        [
            {
                "p": s.position,
                "k": s.question.key,
                "d": s.question.domain,
                "v": s.answer.value,
                "n": s.answer.na,
                "c": s.answer.comment,
                "pt": s.points,
                "mx": s.max_points,
                "w": s.question.weight,
            }
            for s in scored
        ],
    )


async def write_scores(
    db: asyncpg.Connection, submission_id: UUID, visit: Visit, user_id: UUID, perspective: str
) -> None:
    """The submission's per-domain weighted sums, for scorecards (migration 0005)."""
    await db.execute(
        """insert into submission_scores (submission_id, domain, organisation_id, service_id,
               visit_id, user_id, perspective, visit_starts_at, wp, wm, answers)
           select $1, a.domain, a.organisation_id, $2, $3, $4, $5, $6,
                  sum(a.weight * a.points), sum(a.weight * a.max_points), count(*)
             from answers a
            where a.submission_id = $1 and a.points is not null and a.max_points > 0
            group by a.domain, a.organisation_id""",
        submission_id,
        visit.service_id,
        visit.id,
        user_id,
        perspective,
        visit.starts_at,
    )


async def missing_photos(
    db: asyncpg.Connection, visit_id: UUID, submission_id: UUID, scored: list[ScoredAnswer]
) -> list[FieldError]:
    """Evidence rules: a photo, uploaded for this submission and question, must be stored:
    'processing' counts (its original is kept; only derivatives are still being made)."""
    needed = [s for s in scored if needs_photo(s.question, s.answer.value, s.answer.na)]
    if not needed:
        return []
    have = {
        r["question_key"]
        for r in await db.fetch(
            """select question_key from evidence
                where visit_id = $1 and submission_id = $2
                  and status in ('processing', 'ready')
                  and deleted_at is null and question_key = any($3::text[])""",
            visit_id,
            submission_id,
            [s.question.key for s in needed],
        )
    }
    return [
        FieldError(
            f"$.answers[{s.position}]",
            f"question '{s.question.key}' needs a photo: upload one with this submission id "
            "and question key before finalising",
        )
        for s in needed
        if s.question.key not in have
    ]


async def advance_visit(db: asyncpg.Connection, visit_id: UUID) -> None:
    """planned -> in_progress at the first submission; -> submitted when every member is final."""
    await db.execute(
        """with target as (
               select case when exists (
                          select 1 from visit_members m
                           where m.visit_id = $1 and not exists (
                               select 1 from submissions s
                                where s.visit_id = $1 and s.user_id = m.user_id
                                  and s.state = 'final'))
                      then 'in_progress' else 'submitted' end as status)
           update visits v set status = target.status, updated_at = now()
             from target
            where v.id = $1 and v.status in ('planned', 'in_progress')
              and v.status <> target.status""",
        visit_id,
    )
