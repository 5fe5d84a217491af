"""The phone's idempotent PUT of one inspector's answers, and reading them back."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Request, Response, get, params, put
from litestar.openapi.spec import Example
from litestar.params import FromPath, HeaderParameter

from inspections.accounts.clearance import clearance_reasons, from_rows
from inspections.audit.log import audit
from inspections.checklists.queries import version_in_org
from inspections.checklists.questions import needs_photo, questions
from inspections.submissions.schemas import (
    PUT_EXAMPLE,
    AnswerOut,
    QuestionRow,
    Submission,
    SubmissionPut,
    VisitSubmissions,
)
from inspections.submissions.validate import ScoredAnswer, check_answers
from inspections.visits.queries import may_see_visit, visit_in_org
from inspections.wording import plural
from service.auth import Principal, require_roles
from service.db import DB
from service.errors import (
    FieldError,
    Problem,
    conflict,
    forbidden,
    not_found,
    problem_responses,
    unprocessable,
)

AuthedRequest = Request[Principal, Any, Any]
_enc = msgspec.json.Encoder()

SUBMISSION_SQL = """
    select s.id, s.visit_id, s.user_id, u.display_name, s.perspective, s.state, s.body_hash,
           s.device, s.client_started_at started_at, s.client_updated_at updated_at,
           s.created_at, s.updated_at saved_at, s.finalised_at
      from submissions s join users u on u.id = s.user_id"""


def etag_of(body_hash: bytes) -> str:
    return '"' + body_hash.hex()[:32] + '"'


async def _answers(db: asyncpg.Connection, ids: list[UUID]) -> dict[UUID, list[AnswerOut]]:
    out: dict[UUID, list[AnswerOut]] = defaultdict(list)
    for r in await db.fetch(
        """select submission_id, question_key, value, na, comment, points, max_points
             from answers where submission_id = any($1::uuid[])
            order by submission_id, position""",
        ids,
    ):
        out[r["submission_id"]].append(AnswerOut(**{k: r[k] for k in AnswerOut.__struct_fields__}))
    return out


def _submission(row: Any, answers: list[AnswerOut]) -> Submission:
    fields = {k: row[k] for k in Submission.__struct_fields__ if k not in ("answers", "etag")}
    return Submission(**fields, answers=answers, etag=etag_of(row["body_hash"]))


async def _load(db: asyncpg.Connection, submission_id: UUID) -> Submission:
    row = await db.fetchrow(SUBMISSION_SQL + " where s.id = $1", submission_id)
    return _submission(row, (await _answers(db, [submission_id]))[submission_id])


async def _write_answers(
    db: asyncpg.Connection, submission_id: UUID, org: UUID, scored: list[ScoredAnswer]
) -> None:
    await db.execute("delete from answers where submission_id = $1", submission_id)
    if not scored:
        return
    # One round trip for all answers, whatever their number.
    await db.execute(
        """insert into answers (submission_id, organisation_id, position, question_key, domain,
                                value, na, comment, points, max_points, weight)
           select $1, $2, p, k, d, v::jsonb, n, c, pt, mx, w
             from unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::bool[],
                         $8::text[], $9::real[], $10::real[], $11::real[])
                  as t(p, k, d, v, n, c, pt, mx, w)""",
        submission_id,
        org,
        [s.position for s in scored],
        [s.question.key for s in scored],
        [s.question.domain for s in scored],
        [None if s.answer.value is None else _enc.encode(s.answer.value).decode() for s in scored],
        [s.answer.na for s in scored],
        [s.answer.comment for s in scored],
        [s.points for s in scored],
        [s.max_points for s in scored],
        [s.question.weight for s in scored],
    )


@put(
    "/v1/visits/{visit_id:uuid}/submissions/{submission_id:uuid}",
    tags=["phone"],
    summary="Save my answers (idempotent; the phone makes the id; final locks them)",
    description=(
        "Replaying the same body returns the same result and creates nothing. Overwriting a "
        "draft with different answers needs If-Match with the draft's ETag (412 when stale, "
        "428 when missing). A final submission is validated against the visit's pinned "
        "checklist version and then locked: the same final body again is 200, another 409."
    ),
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def put_submission(
    visit_id: FromPath[UUID],
    submission_id: FromPath[UUID],
    data: Annotated[
        SubmissionPut,
        params.Body(
            examples=[Example(summary="A draft: one answer of each type", value=PUT_EXAMPLE)]
        ),
    ],
    request: AuthedRequest,
    db: DB,
    if_match: Annotated[
        str | None,
        HeaderParameter(name="If-Match", description="ETag of the draft being overwritten"),
    ] = None,
) -> Response[Submission]:
    user = request.user
    visit = await visit_in_org(db, user, visit_id)
    member = next((m for m in visit.team if m.user_id == user.user_id), None)
    if member is None:
        raise forbidden("Only members of this visit's team can submit answers to it.")
    body_hash = hashlib.sha256(_enc.encode(data)).digest()

    # Twins of one PUT (a retry overlapping its slow first attempt, a second device) queue
    # here until the first commits, then find its row and answer as a replay would.
    await db.execute(
        "select pg_advisory_xact_lock(hashtext('submission'), hashtext($1::uuid::text))",
        submission_id,
    )
    existing = await db.fetchrow(
        "select visit_id, user_id, state, body_hash from submissions where id = $1 for update",
        submission_id,
    )
    if existing is not None:
        if existing["visit_id"] != visit_id or existing["user_id"] != user.user_id:
            raise conflict("This submission id is already in use.", "submission-id-taken")
        if existing["body_hash"] == body_hash:
            return Response(await _load(db, submission_id), headers={"ETag": etag_of(body_hash)})
        if existing["state"] == "final":
            raise conflict(
                "This submission is final and locked; it cannot be changed.", "submission-final"
            )

    if visit.status == "cancelled":
        raise conflict("This visit was cancelled; it takes no submissions.", "visit-cancelled")
    if visit.status == "submitted":
        raise conflict("This visit is closed; it takes no more submissions.", "visit-closed")
    if member.perspective == "citizen":
        reasons = clearance_reasons(
            user.roles,
            from_rows(
                await db.fetch(
                    "select kind, course, completed_on, expires_on from training_records "
                    "where user_id = $1",
                    user.user_id,
                )
            ),
            dt.date.today(),
        )
        if reasons:
            raise Problem(403, "not-cleared", "Not cleared to inspect", " ".join(reasons))

    version = await version_in_org(
        db, user.organisation_id, visit.checklist_id, visit.checklist_version
    )
    scored, errors = check_answers(version.content, data.answers, data.state == "final")
    if data.state == "final" and not errors:
        errors = await _missing_photos(db, visit_id, submission_id, scored)
    if errors:
        raise unprocessable(
            f"{plural(len(errors), 'problem')} with the answers: "
            + "; ".join(e.reason for e in errors[:10]),
            errors,
        )

    final = data.state == "final"
    if existing is None:
        inserted = await db.fetchval(
            """insert into submissions (id, organisation_id, visit_id, user_id, perspective,
                   state, body_hash, device, client_started_at, client_updated_at, finalised_at)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, case when $11 then now() end)
               on conflict do nothing returning id""",
            submission_id,
            user.organisation_id,
            visit_id,
            user.user_id,
            member.perspective,
            data.state,
            body_hash,
            data.device,
            data.started_at,
            data.updated_at,
            final,
        )
        if inserted is None:
            # Twins of this id wait on the lock above, so this is another submission of mine.
            other = await db.fetchval(
                "select id from submissions where visit_id = $1 and user_id = $2",
                visit_id,
                user.user_id,
            )
            raise conflict(
                f"You already have submission {other} for this visit.",
                "one-submission-per-inspector",
            )
        status = 201
    else:
        current = etag_of(existing["body_hash"])
        if if_match is None:
            raise Problem(
                428,
                "precondition-required",
                "If-Match required",
                "Overwriting a saved draft needs If-Match with its ETag, so two devices "
                "cannot silently overwrite each other.",
            )
        if current not in [t.strip() for t in if_match.split(",")] and if_match.strip() != "*":
            raise Problem(
                412,
                "stale-draft",
                "Draft changed elsewhere",
                "The draft was changed since you loaded it (another device?); fetch it, "
                "merge, and send again with its new ETag.",
            )
        await db.execute(
            """update submissions set state = $2, body_hash = $3, device = $4,
                      client_started_at = $5, client_updated_at = $6, updated_at = now(),
                      finalised_at = case when $7 then now() end
                where id = $1""",
            submission_id,
            data.state,
            body_hash,
            data.device,
            data.started_at,
            data.updated_at,
            final,
        )
        status = 200
    await _write_answers(db, submission_id, user.organisation_id, scored)
    if final:
        await _write_scores(db, submission_id, visit, user.user_id, member.perspective)
    await _advance_visit(db, visit_id)
    await audit(
        db,
        request,
        "submission." + ("finalise" if final else "save"),
        "submission",
        submission_id,
        {"visit_id": str(visit_id), "answers": len(scored)},
    )
    return Response(
        await _load(db, submission_id), status_code=status, headers={"ETag": etag_of(body_hash)}
    )


async def _write_scores(
    db: asyncpg.Connection, submission_id: UUID, visit: Any, user_id: UUID, perspective: str
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


async def _missing_photos(
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


async def _advance_visit(db: asyncpg.Connection, visit_id: UUID) -> None:
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


@get(
    "/v1/visits/{visit_id:uuid}/submissions/{submission_id:uuid}",
    tags=["phone"],
    summary="One submission (its inspector, or coordinators)",
    responses=problem_responses(401, 403, 404),
)
async def get_submission(
    visit_id: FromPath[UUID], submission_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Response[Submission]:
    await visit_in_org(db, request.user, visit_id)
    owner = await db.fetchval(
        "select user_id from submissions where id = $1 and visit_id = $2", submission_id, visit_id
    )
    if owner is None:
        raise not_found("submission")
    if owner != request.user.user_id and not request.user.has("coordinator"):
        raise forbidden("Only the inspector who made it and coordinators can read it.")
    sub = await _load(db, submission_id)
    return Response(sub, headers={"ETag": sub.etag})


@get(
    "/v1/visits/{visit_id:uuid}/submissions",
    guards=[require_roles("coordinator")],
    tags=["visits"],
    summary="Every submission of a visit, and each question's answers side by side",
    responses=problem_responses(401, 403, 404),
)
async def list_submissions(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> VisitSubmissions:
    visit = await visit_in_org(db, request.user, visit_id)
    may_see_visit(request.user, visit)
    rows = await db.fetch(
        SUBMISSION_SQL + " where s.visit_id = $1 order by s.perspective, u.display_name", visit_id
    )
    answers = await _answers(db, [r["id"] for r in rows])
    subs = [_submission(r, answers[r["id"]]) for r in rows]
    version = await version_in_org(
        db, request.user.organisation_id, visit.checklist_id, visit.checklist_version
    )
    side = []
    for q in questions(version.content):
        by_sub = {}
        for s in subs:
            a = next((a for a in s.answers if a.question_key == q.key), None)
            by_sub[str(s.id)] = None if a is None else a.value
        side.append(
            QuestionRow(question_key=q.key, prompt=q.prompt, domain=q.domain, answers=by_sub)
        )
    return VisitSubmissions(submissions=subs, side_by_side=side)


route_handlers = [put_submission, get_submission, list_submissions]
