"""What people do with findings and reports, callable without HTTP: raise or edit a finding,
respond to a recommendation (and progress, verify, handle a concern), write, send and
publish a visit's report, comment on its accuracy.

Each runs in the caller's transaction on ``conn``, checks the acting principal itself
(role, organisation, visit team, services managed) and raises a service.errors.DomainError (a
plain exception) for what it refuses, so no second surface can forget a check. The rules
they apply are pure, in rules.py; the SQL is in queries.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from inspections import idempotent
from inspections.audit.log import record
from inspections.checklists.queries import version_in_org
from inspections.checklists.questions import questions
from inspections.findings import notices, rules, workdays
from inspections.findings import queries as q
from inspections.findings.schemas import (
    Accept,
    Comment,
    CommentPut,
    Decline,
    Finding,
    FindingPut,
    Publish,
    Report,
    ReportPut,
    Update,
)
from inspections.visits.operations import visit_for
from inspections.visits.queries import door_closed, visit_in_org
from inspections.visits.schemas import Visit
from inspections.wording import long_date, plural
from service.auth import Principal
from service.errors import FieldError, Refused, conflict, forbidden, unprocessable
from service.settings import Settings

FINDING_WORDS = idempotent.Words(
    noun="finding",
    locked_kind="finding-locked",
    locked_detail="This finding's report has gone to the service; it can no longer change.",
)
# An update is history: once recorded under its id it never changes (nor takes If-Match).
UPDATE_WORDS = idempotent.Words(
    noun="update", locked_kind="update-id-taken", locked_detail="This update id is already in use."
)


class FindingSaved(msgspec.Struct, frozen=True):
    finding: Finding  # as the caller sees it; its etag is the response's ETag
    created: bool  # 201 rather than 200


class ReportSaved(msgspec.Struct, frozen=True):
    report: Report
    created: bool


class CommentSaved(msgspec.Struct, frozen=True):
    comment: Comment
    created: bool


def role_words(caller: Principal, *, manager: bool = False, perspective: str | None = None) -> str:
    """The caller in role terms, as the public history names them."""
    if manager:
        return "service manager"
    if perspective:
        return f"{perspective} inspector"
    for role in ("coordinator", "safeguarding_lead", "citizen_inspector", "professional_inspector"):
        if caller.has(role):
            return role.replace("_", " ")
    return "organisation"


async def _finding_problems(
    conn: asyncpg.Connection, principal: Principal, visit: Visit, data: FindingPut
) -> list[FieldError]:
    version = await version_in_org(
        conn, principal.organisation_id, visit.checklist_id, visit.checklist_version
    )
    keys = {qu.key for qu in questions(version.content)}
    errors = [
        FieldError(field=f"$.question_keys[{i}]", reason=f"No question {k!r} in this checklist.")
        for i, k in enumerate(data.question_keys)
        if k not in keys
    ]
    errors += await q.check_evidence(
        conn, principal.organisation_id, visit.service_id, data.evidence_ids, "evidence_ids"
    )
    return errors


async def save_finding(
    conn: asyncpg.Connection,
    principal: Principal,
    settings: Settings,
    visit_id: UUID,
    finding_id: UUID,
    body: FindingPut,
    if_match: str | None,
    *,
    request_id: str | None = None,
) -> FindingSaved:
    """Raise a finding under the phone's id, replay it, or change it (If-Match)."""
    visit = await visit_for(conn, principal, visit_id)
    member = visit.member(principal.user_id)
    coordinator = principal.has("coordinator")
    safeguarding = body.severity == "safeguarding"
    body_hash = idempotent.body_hash(body)
    await idempotent.serialise(conn, "finding", finding_id)
    row = await q.stored_finding(conn, finding_id)
    report_status = row["report_status"] if row else await q.report_status(conn, visit_id)
    stored = (
        None
        if row is None
        else idempotent.Stored(
            body_hash=row["body_hash"],
            mine=row["visit_id"] == visit_id
            and (row["raised_by"] == principal.user_id or coordinator),
            locked=not rules.editable(
                row["severity"],
                row["status"],
                report_status,
                coordinator,
                door_closed(visit, report_status) is None,
            ),
        )
    )
    decision = idempotent.decide(idempotent.Put(body_hash, if_match, stored))
    if decision == "replay":
        found = await q.finding_for(conn, principal, finding_id, settings.site_timezone)
        return FindingSaved(found, created=False)
    if decision in idempotent.REFUSALS:
        raise idempotent.refusal(decision, FINDING_WORDS)

    if row is not None:
        if row["severity"] == "safeguarding" and not safeguarding:
            raise conflict(
                "A safeguarding concern stays one; its leads record how it ends.",
                "safeguarding-stays",
            )
    elif not safeguarding:  # safeguarding concerns are always taken
        if report_status == "published":
            raise conflict(
                "This visit's report is published; raise new findings at a new visit "
                "(safeguarding concerns are always taken).",
                "report-published",
            )
        if visit.status == "cancelled":
            raise conflict("This visit was cancelled.", "visit-cancelled")
        if not coordinator:
            closed = door_closed(visit, report_status)
            if closed is not None:
                raise conflict(closed, "visit-closed")
    errors = await _finding_problems(conn, principal, visit, body)
    if errors:
        raise unprocessable(
            f"{plural(len(errors), 'problem')} with the finding: "
            + "; ".join(e.reason for e in errors[:10]),
            errors,
        )

    if row is None:
        status = "raised" if safeguarding else "draft"
        perspective = member.perspective if member else None
        await q.insert_finding(
            conn,
            finding_id,
            principal,
            visit_id,
            visit.service_id,
            perspective or "coordinator",
            status,
            body,
            body_hash,
        )
        await q.history(
            conn,
            principal.organisation_id,
            finding_id,
            "raised",
            None,
            status,
            principal.user_id,
            role_words(principal, perspective=perspective),
        )
        became_safeguarding = safeguarding
    else:
        await q.update_finding(conn, finding_id, body, body_hash)
        became_safeguarding = safeguarding and row["severity"] != "safeguarding"
    if became_safeguarding:
        service = await conn.fetchrow(
            "select id, name from services where id = $1", visit.service_id
        )
        await notices.safeguarding_raised(
            conn, settings, principal.organisation_id, finding_id, service
        )
    await record(
        conn,
        principal.organisation_id,
        principal.user_id,
        "finding.raise" if row is None else "finding.edit",
        "finding",
        finding_id,
        {"visit_id": str(visit_id), "severity": body.severity},
        request_id,
    )
    found = await q.finding_for(conn, principal, finding_id, settings.site_timezone)
    return FindingSaved(found, created=row is None)


async def respond(
    conn: asyncpg.Connection,
    principal: Principal,
    settings: Settings,
    finding_id: UUID,
    update_id: UUID,
    body: Update,
    *,
    request_id: str | None = None,
) -> FindingSaved:
    """Answer (accept, decline), progress, verify or handle a finding, once per update id.

    Who may do what from which state is rules.apply; this loads the facts it needs and
    records the outcome."""
    tz = settings.site_timezone
    finding = await q.finding_for(conn, principal, finding_id, tz, lock=True)
    body_hash = idempotent.body_hash(body)
    seen = await conn.fetchrow(
        "select finding_id, body_hash from finding_updates where id = $1", update_id
    )
    stored = (
        None
        if seen is None
        else idempotent.Stored(
            body_hash=seen["body_hash"], mine=seen["finding_id"] == finding_id, locked=True
        )
    )
    decision = idempotent.decide(idempotent.Put(body_hash, None, stored))
    if decision == "replay":
        return FindingSaved(finding, created=False)  # a retry: already applied
    if decision in idempotent.REFUSALS:
        raise idempotent.refusal(decision, UPDATE_WORDS)
    is_manager = await q.manages(conn, principal.user_id, finding.service_id)
    actor = rules.Actor(
        manages_service=is_manager and principal.has("service_manager"),
        coordinator=principal.has("coordinator"),
        safeguarding_lead=principal.has("safeguarding_lead"),
        citizen_inspector=principal.has("citizen_inspector"),
    )
    outcome = rules.apply(
        finding.status,
        finding.severity,
        body,
        actor,
        [a.done_at is not None for a in finding.actions],
    )
    note = getattr(body, "note", "") or getattr(body, "reason", "")
    evidence = list(getattr(body, "evidence_ids", []))
    errors = await q.check_evidence(
        conn, principal.organisation_id, finding.service_id, evidence, "evidence_ids"
    )
    if errors:
        raise unprocessable(errors[0].reason, errors)
    org = principal.organisation_id
    match body:
        case Accept(actions=actions):
            await q.add_actions(conn, org, finding_id, actions)
            note = note or f"Accepted with {plural(len(actions), 'action')}."
        case Decline(reason=reason):
            await conn.execute(
                "update findings set decline_reason = $2 where id = $1", finding_id, reason
            )
        case _:
            pass
    if outcome.action_done is not None:
        await conn.execute(
            "update finding_actions set done_at = now() where finding_id = $1 and position = $2",
            finding_id,
            outcome.action_done,
        )
        note = note or f"Action {outcome.action_done} done."
    await conn.execute(
        """update findings set status = $2, updated_at = now(),
               responded_at = case when $3 then now() else responded_at end,
               safeguarding_reference = coalesce($4, safeguarding_reference)
         where id = $1""",
        finding_id,
        outcome.to_status,
        outcome.kind in ("accepted", "declined"),
        getattr(body, "reference", None),
    )
    await q.history(
        conn,
        org,
        finding_id,
        outcome.kind,
        finding.status,
        outcome.to_status,
        principal.user_id,
        role_words(principal, manager=actor.manages_service),
        note,
        evidence,
        update_id,
        body_hash,
    )
    if outcome.kind in ("accepted", "declined"):
        await notices.response_posted(conn, settings, org, finding, outcome.kind)
    if outcome.to_status == "done_by_service":
        rounds = await conn.fetchval(
            "select count(*) from finding_updates where finding_id = $1 "
            "and to_status = 'done_by_service'",
            finding_id,
        )
        assert rounds is not None  # count(*): always a row
        await notices.verification_requested(conn, settings, org, finding, rounds)
    await record(
        conn,
        org,
        principal.user_id,
        f"finding.{outcome.kind}",
        "finding",
        finding_id,
        {"from": finding.status, "to": outcome.to_status},
        request_id,
    )
    return FindingSaved(await q.finding_for(conn, principal, finding_id, tz), created=True)


async def write_report(
    conn: asyncpg.Connection,
    principal: Principal,
    settings: Settings,
    visit_id: UUID,
    body: ReportPut,
    *,
    request_id: str | None = None,
) -> ReportSaved:
    """Create or update the visit's draft report: a summary and the findings left out."""
    principal.require("coordinator")
    visit = await visit_in_org(conn, principal, visit_id)
    if visit.status == "cancelled":
        raise conflict("This visit was cancelled; it has no report.", "visit-cancelled")
    ids = {
        r["id"]
        for r in await conn.fetch(
            "select id from findings where visit_id = $1 and severity <> 'safeguarding'",
            visit_id,
        )
    }
    bad = [
        FieldError(field=f"$.excluded_finding_ids[{i}]", reason="Not a finding of this visit.")
        for i, f in enumerate(body.excluded_finding_ids)
        if f not in ids
    ]
    if bad:
        raise unprocessable(bad[0].reason, bad)
    existing = await conn.fetchrow(
        "select id, status from visit_reports where visit_id = $1 for update", visit_id
    )
    if existing is not None and existing["status"] != "draft":
        raise conflict(
            "This report has gone to the service; it can no longer change.", "report-locked"
        )
    report_id = await conn.fetchval(
        """insert into visit_reports (organisation_id, visit_id, service_id, summary, created_by)
           values ($1, $2, $3, $4, $5)
           on conflict (visit_id) do update set summary = excluded.summary, updated_at = now()
           returning id""",
        principal.organisation_id,
        visit_id,
        visit.service_id,
        body.summary,
        principal.user_id,
    )
    assert report_id is not None  # insert or update ... returning: always a row
    await conn.execute(
        """update findings set in_report = not (id = any($2::uuid[]))
            where visit_id = $1 and severity <> 'safeguarding'""",
        visit_id,
        body.excluded_finding_ids,
    )
    await record(
        conn,
        principal.organisation_id,
        principal.user_id,
        "report.write",
        "report",
        report_id,
        {"excluded": [str(i) for i in body.excluded_finding_ids]},
        request_id,
    )
    row = await q.report_row(conn, principal, "r.id", report_id)
    report = await q.build_report(conn, principal, row, settings.site_timezone)
    return ReportSaved(report, created=existing is None)


async def send_report(
    conn: asyncpg.Connection,
    principal: Principal,
    settings: Settings,
    report_id: UUID,
    *,
    request_id: str | None = None,
) -> Report:
    """Send the draft to the service for a factual-accuracy check (again: no change)."""
    principal.require("coordinator")
    row = await q.report_row(conn, principal, "r.id", report_id, lock=True)
    if row["status"] == "published":
        raise conflict("This report is already published.", "report-published")
    if row["status"] == "draft":
        await conn.execute(
            """update visit_reports set status = 'factual_check', sent_at = now(),
                      updated_at = now() where id = $1""",
            report_id,
        )
        await notices.factual_check(conn, settings, principal.organisation_id, row)
        await record(
            conn,
            principal.organisation_id,
            principal.user_id,
            "report.send",
            "report",
            report_id,
            None,
            request_id,
        )
        row = await q.report_row(conn, principal, "r.id", report_id)
    return await q.build_report(conn, principal, row, settings.site_timezone)


async def comment_on_report(
    conn: asyncpg.Connection,
    principal: Principal,
    report_id: UUID,
    comment_id: UUID,
    body: CommentPut,
    *,
    request_id: str | None = None,
) -> CommentSaved:
    """A service manager's factual-accuracy comment, once per comment id."""
    principal.require("service_manager")
    row = await q.report_row(conn, principal, "r.id", report_id)
    if not await q.manages(conn, principal.user_id, row["service_id"]):
        raise forbidden("Only the service's managers check a report's accuracy.")
    seen = await conn.fetchrow(
        "select report_id, finding_id, comment, created_at from report_comments where id = $1",
        comment_id,
    )
    if seen is not None:
        if (seen["report_id"], seen["finding_id"], seen["comment"]) != (
            report_id,
            body.finding_id,
            body.comment,
        ):
            raise conflict("This comment id is already in use.", "comment-id-taken")
        return CommentSaved(
            Comment(
                id=comment_id,
                finding_id=seen["finding_id"],
                comment=seen["comment"],
                author_role="service manager",
                created_at=seen["created_at"],
            ),
            created=False,
        )
    if row["status"] != "factual_check":
        raise conflict(
            "Comments on accuracy are taken while the report is being checked.",
            "report-not-in-check",
        )
    if body.finding_id is not None and not await conn.fetchval(
        """select exists (select 1 from findings where id = $1 and visit_id = $2
                             and severity <> 'safeguarding' and in_report)""",
        body.finding_id,
        row["visit_id"],
    ):
        raise unprocessable(
            "No such finding in this report.",
            [FieldError(field="$.finding_id", reason="Not a finding of this report.")],
        )
    created = await conn.fetchval(
        """insert into report_comments (id, organisation_id, report_id, finding_id, author_id,
                                        comment)
           values ($1, $2, $3, $4, $5, $6) returning created_at""",
        comment_id,
        principal.organisation_id,
        report_id,
        body.finding_id,
        principal.user_id,
        body.comment,
    )
    assert created is not None  # insert ... returning: always a row
    await record(
        conn,
        principal.organisation_id,
        principal.user_id,
        "report.comment",
        "report",
        report_id,
        {"comment_id": str(comment_id)},
        request_id,
    )
    comment = Comment(
        id=comment_id,
        finding_id=body.finding_id,
        comment=body.comment,
        author_role="service manager",
        created_at=created,
    )
    return CommentSaved(comment, created=True)


async def response_due_on(
    conn: asyncpg.Connection, organisation_id: UUID, published_on: dt.date
) -> dt.date:
    """When a report's recommendations published on ``published_on`` must be answered: the
    organisation's working days later, skipping weekends and its bank holidays."""
    fs = await q.finding_settings(conn, organisation_id)
    try:
        return workdays.add_working_days(published_on, fs.response_working_days, fs.jurisdiction)
    except ValueError as e:
        raise unprocessable(str(e)) from None


async def publish_report(
    conn: asyncpg.Connection,
    principal: Principal,
    settings: Settings,
    report_id: UUID,
    body: Publish | None,
    *,
    request_id: str | None = None,
) -> Report:
    """Publish: recommendations become due after the organisation's working days (again:
    no change). Refused while a photo a finding links has not arrived and been processed."""
    principal.require("coordinator")
    tz = settings.site_timezone
    row = await q.report_row(conn, principal, "r.id", report_id, lock=True)
    if row["status"] == "published":
        return await q.build_report(conn, principal, row, tz)
    now = q.today(tz)
    published_on = (body.published_on if body else None) or now
    visit_day = row["visit_starts_at"].date()
    if published_on > now or published_on < visit_day:
        raise unprocessable(
            f"published_on must be between the visit ({visit_day}) and today ({now}).",
            [FieldError(field="$.published_on", reason="Outside the visit-to-today range.")],
        )
    findings = await conn.fetch(
        """select id, title, recommendation, severity, evidence_ids from findings
            where visit_id = $1 and severity <> 'safeguarding' and in_report
              and status = 'draft' order by created_at, id""",
        row["visit_id"],
    )
    waiting = await conn.fetch(
        """select x.id, e.status from unnest($1::uuid[]) x(id)
             left join evidence e on e.id = x.id and e.deleted_at is null
            where e.status is distinct from 'ready'""",
        sorted({e for f in findings for e in f["evidence_ids"]}),
    )
    if waiting:
        raise Refused(
            409,
            "evidence-not-ready",
            f"{plural(len(waiting), 'photo')} linked by findings have not arrived or are still "
            "being processed: "
            + ", ".join(f"{w['id']} ({w['status'] or 'not uploaded'})" for w in waiting[:10])
            + ". Publish when they are ready, or unlink them.",
            title="Photos still arriving",
        )
    due = await response_due_on(conn, principal.organisation_id, published_on)
    for f in findings:
        to = rules.published_status(f["severity"], f["recommendation"])
        await conn.execute(
            """update findings set status = $2, due_on = $3, updated_at = now() where id = $1""",
            f["id"],
            to,
            due if to == "open" else None,
        )
        await q.history(
            conn,
            principal.organisation_id,
            f["id"],
            "published",
            "draft",
            to,
            principal.user_id,
            "coordinator",
            f"Response due by {long_date(due)}." if to == "open" else "",
        )
    await conn.execute(
        """update visit_reports set status = 'published', published_at = now(),
                  published_on = $2, updated_at = now() where id = $1""",
        report_id,
        published_on,
    )
    recommendations: list[Any] = [f for f in findings if f["recommendation"]]
    await notices.report_published(
        conn, settings, principal.organisation_id, row, recommendations, due
    )
    await record(
        conn,
        principal.organisation_id,
        principal.user_id,
        "report.publish",
        "report",
        report_id,
        {"published_on": published_on.isoformat(), "due_on": due.isoformat()},
        request_id,
    )
    row = await q.report_row(conn, principal, "r.id", report_id)
    return await q.build_report(conn, principal, row, tz)
