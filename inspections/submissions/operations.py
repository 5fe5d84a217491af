"""Save a submission: the one operation behind the phone's PUT and any other surface.

Runs in the caller's transaction on ``conn``; raises a service.errors.DomainError (a
plain exception) for anything it refuses, so a page or another protocol gets the same answers
and the same permission checks as the JSON API.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import asyncpg
import msgspec

from inspections import idempotent
from inspections.accounts.clearance import clearance_reasons
from inspections.audit.log import record
from inspections.checklists.queries import version_in_org
from inspections.checklists.schemas import ChecklistVersion
from inspections.submissions import queries as q
from inspections.submissions.schemas import Submission, SubmissionPut
from inspections.submissions.validate import check_answers
from inspections.visits.queries import visit_in_org
from inspections.wording import plural
from service.auth import Principal
from service.errors import Refused, conflict, forbidden, unprocessable
from service.lru import LruCache

WORDS = idempotent.Words(
    noun="submission",
    locked_kind="submission-final",
    locked_detail="This submission is final and locked; it cannot be changed.",
    required_detail="Overwriting a saved draft needs If-Match with its ETag, so two devices "
    "cannot silently overwrite each other.",
    stale_kind="stale-draft",
    stale_title="Draft changed elsewhere",
    stale_detail="The draft was changed since you loaded it (another device?); fetch it, "
    "merge, and send again with its new ETag.",
)


# Parsed checklist versions, by (organisation, checklist, version). A version never changes
# once published (migration 0002's trigger refuses updates), so an entry cannot go stale;
# parsing the pinned version's content was about a tenth of a final PUT's server CPU.
_versions: LruCache[tuple[UUID, UUID, int], ChecklistVersion] = LruCache(256, 3600)


async def pinned_version(
    conn: asyncpg.Connection, organisation_id: UUID, checklist_id: UUID, version: int
) -> ChecklistVersion:
    """The visit's pinned checklist version (404 when it is not the organisation's)."""
    key = (organisation_id, checklist_id, version)
    found = _versions.get(key)
    if found is None:
        found = await version_in_org(conn, organisation_id, checklist_id, version)
        _versions.put(key, found)
    return found


class SaveResult(msgspec.Struct, frozen=True):
    submission: Submission  # as stored; its etag is the response's ETag
    created: bool  # 201 rather than 200


async def save_submission(
    conn: asyncpg.Connection,
    principal: Principal,
    visit_id: UUID,
    submission_id: UUID,
    body: SubmissionPut,
    if_match: str | None,
    *,
    request_id: str | None = None,
) -> SaveResult:
    """Create, replay or overwrite one inspector's answers to a visit (final locks them)."""
    visit = await visit_in_org(conn, principal, visit_id)
    member = visit.member(principal.user_id)
    if member is None:
        raise forbidden("Only members of this visit's team can submit answers to it.")
    body_hash = idempotent.body_hash(body)
    await idempotent.serialise(conn, "submission", submission_id)
    row = await q.stored_for_update(conn, submission_id)
    stored = (
        None
        if row is None
        else idempotent.Stored(
            body_hash=row["body_hash"],
            mine=row["visit_id"] == visit_id and row["user_id"] == principal.user_id,
            locked=row["state"] == "final",
        )
    )
    decision = idempotent.decide(idempotent.Put(body_hash, if_match, stored))
    if decision == "replay":
        return SaveResult(await q.load_submission(conn, submission_id), created=False)
    if decision in idempotent.REFUSALS:
        raise idempotent.refusal(decision, WORDS)

    if visit.status == "cancelled":
        raise conflict("This visit was cancelled; it takes no submissions.", "visit-cancelled")
    if visit.status == "submitted":
        raise conflict("This visit is closed; it takes no more submissions.", "visit-closed")
    if member.perspective == "citizen":
        reasons = clearance_reasons(
            principal.roles, await q.training_of(conn, principal.user_id), dt.date.today()
        )
        if reasons:
            raise Refused(403, "not-cleared", " ".join(reasons), title="Not cleared to inspect")

    version = await pinned_version(
        conn, principal.organisation_id, visit.checklist_id, visit.checklist_version
    )
    final = body.state == "final"
    scored, errors = check_answers(version.content, body.answers, final)
    if final and not errors:
        errors = await q.missing_photos(conn, visit_id, submission_id, scored)
    if errors:
        raise unprocessable(
            f"{plural(len(errors), 'problem')} with the answers: "
            + "; ".join(e.reason for e in errors[:10]),
            errors,
        )

    if decision == "create":
        if not await q.insert_submission(
            conn,
            submission_id,
            principal.organisation_id,
            visit_id,
            principal.user_id,
            member.perspective,
            body_hash,
            body,
        ):
            # Twins of this id wait in serialise, so this is another submission of mine.
            other = await q.other_submission(conn, visit_id, principal.user_id)
            raise conflict(
                f"You already have submission {other} for this visit.",
                "one-submission-per-inspector",
            )
    else:
        await q.update_submission(conn, submission_id, body_hash, body)
    await q.write_answers(
        conn, submission_id, principal.organisation_id, scored, replace=decision != "create"
    )
    if final:
        await q.write_scores(conn, submission_id, visit, principal.user_id, member.perspective)
    await q.advance_visit(conn, visit_id)
    await record(
        conn,
        principal.organisation_id,
        principal.user_id,
        "submission." + ("finalise" if final else "save"),
        "submission",
        submission_id,
        {"visit_id": str(visit_id), "answers": len(scored)},
        request_id,
    )
    return SaveResult(await q.load_submission(conn, submission_id), created=decision == "create")
