"""Findings over HTTP: raised offline by a visit's team, answered by the service, verified
by citizens; safeguarding concerns go straight to the safeguarding leads."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Request, Response, get, params, patch, put
from litestar.datastructures import State
from litestar.openapi.spec import Example
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from inspections.audit.log import audit
from inspections.checklists.queries import version_in_org
from inspections.checklists.questions import questions
from inspections.findings import notices, rules
from inspections.findings.queries import (
    FINDING_SQL,
    VISIBLE,
    check_evidence,
    etag_of,
    finding_for,
    finding_settings,
    load_findings,
    manages,
    today,
    visibility,
)
from inspections.findings.schemas import (
    PUT_EXAMPLE,
    Accept,
    Decline,
    Finding,
    FindingPage,
    FindingPut,
    FindingSettings,
    FindingSettingsPatch,
    ServiceSummary,
    Status,
    SummaryPage,
    Update,
)
from inspections.org_settings import patch_section
from inspections.visits.queries import DOOR_RULE, door_closed, may_see_visit, visit_in_org
from inspections.wording import plural
from service.auth import Principal, require_roles
from service.db import DB
from service.errors import (
    FieldError,
    Problem,
    conflict,
    problem_responses,
    unprocessable,
)
from service.schema import Limit, decode_cursor, encode_cursor

AuthedRequest = Request[Principal, Any, Any]
_enc = msgspec.json.Encoder()


def _hash(data: Any) -> bytes:
    return hashlib.sha256(_enc.encode(data)).digest()


async def history(
    db: asyncpg.Connection,
    org: UUID,
    finding_id: UUID,
    kind: str,
    from_status: str | None,
    to_status: str,
    actor: UUID | None,
    role: str,
    note: str = "",
    evidence_ids: list[UUID] | None = None,
    update_id: UUID | None = None,
    body_hash: bytes | None = None,
) -> None:
    """One line of the finding's public history (who in role terms, when, what)."""
    await db.execute(
        """insert into finding_updates (id, organisation_id, finding_id, kind, from_status,
               to_status, actor_id, actor_role, note, evidence_ids, body_hash)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        update_id or uuid.uuid4(),
        org,
        finding_id,
        kind,
        from_status,
        to_status,
        actor,
        role,
        note,
        evidence_ids or [],
        body_hash,
    )


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


async def _validate(
    db: asyncpg.Connection, user: Principal, visit: Any, data: FindingPut
) -> list[FieldError]:
    version = await version_in_org(
        db, user.organisation_id, visit.checklist_id, visit.checklist_version
    )
    keys = {q.key for q in questions(version.content)}
    errors = [
        FieldError(field=f"$.question_keys[{i}]", reason=f"No question {k!r} in this checklist.")
        for i, k in enumerate(data.question_keys)
        if k not in keys
    ]
    errors += await check_evidence(
        db, user.organisation_id, visit.service_id, data.evidence_ids, "evidence_ids"
    )
    return errors


@put(
    "/v1/visits/{visit_id:uuid}/findings/{finding_id:uuid}",
    tags=["findings"],
    summary="Raise or edit a finding (idempotent; the phone makes the id)",
    description=(
        "The visit's team and coordinators raise findings, online or offline. Replaying the "
        "same body is 200 and changes nothing; changing a finding needs If-Match with its "
        "ETag (412 stale, 428 missing) and is possible until its report goes to the service "
        "(coordinators: until published). A safeguarding finding goes at once to the "
        "safeguarding leads, and never into a report; it is taken whatever the door. " + DOOR_RULE
    ),
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def put_finding(
    visit_id: FromPath[UUID],
    finding_id: FromPath[UUID],
    data: Annotated[
        FindingPut, params.Body(examples=[Example(summary="A finding", value=PUT_EXAMPLE)])
    ],
    request: AuthedRequest,
    db: DB,
    state: State,
    if_match: Annotated[
        str | None, HeaderParameter(name="If-Match", description="ETag of the finding")
    ] = None,
) -> Response[Finding]:
    user, settings = request.user, state.settings
    visit = await visit_in_org(db, user, visit_id)
    may_see_visit(user, visit)
    member = next((m for m in visit.team if m.user_id == user.user_id), None)
    body_hash = _hash(data)
    # Twins of one PUT (a retry overlapping its slow first attempt, a second device) queue
    # here until the first commits, then find its row and answer as a replay would.
    await db.execute(
        "select pg_advisory_xact_lock(hashtext('finding'), hashtext($1::uuid::text))", finding_id
    )
    existing = await db.fetchrow(
        """select f.visit_id, f.raised_by, f.severity, f.status, f.body_hash,
                  r.status report_status
             from findings f left join visit_reports r on r.visit_id = f.visit_id
            where f.id = $1 for update of f""",
        finding_id,
    )
    if existing is not None:
        if existing["visit_id"] != visit_id or (
            existing["raised_by"] != user.user_id and not user.has("coordinator")
        ):
            raise conflict("This finding id is already in use.", "finding-id-taken")
        if existing["body_hash"] == body_hash:
            found = await finding_for(db, user, finding_id, settings.site_timezone)
            return Response(found, headers={"ETag": found.etag})
        if if_match is None:
            raise Problem(
                428,
                "precondition-required",
                "If-Match required",
                "Send If-Match with the finding's ETag to change it.",
            )
        if if_match != etag_of(existing["body_hash"]):
            raise Problem(
                412,
                "stale",
                "Changed meanwhile",
                "The finding changed since you read it; fetch it and try again.",
            )
        if existing["severity"] == "safeguarding" and data.severity != "safeguarding":
            raise conflict(
                "A safeguarding concern stays one; its leads record how it ends.",
                "safeguarding-stays",
            )
        # The raiser (or a coordinator) may add to a safeguarding concern at any time;
        # other findings are the team's while the visit's door is open, and the
        # coordinator's until the report is published.
        report_status = existing["report_status"]
        editable = existing["severity"] == "safeguarding" or (
            existing["status"] == "draft"
            and (
                report_status in (None, "draft", "factual_check")
                if user.has("coordinator")
                else door_closed(visit, report_status) is None
            )
        )
        if not editable:
            raise conflict(
                "This finding's report has gone to the service; it can no longer change.",
                "finding-locked",
            )
    else:
        report_status = await db.fetchval(
            "select status from visit_reports where visit_id = $1", visit_id
        )
        if report_status == "published" and data.severity != "safeguarding":
            raise conflict(
                "This visit's report is published; raise new findings at a new visit "
                "(safeguarding concerns are always taken).",
                "report-published",
            )
        if visit.status == "cancelled" and data.severity != "safeguarding":
            raise conflict("This visit was cancelled.", "visit-cancelled")
        if data.severity != "safeguarding" and not user.has("coordinator"):
            closed = door_closed(visit, report_status)
            if closed is not None:
                raise conflict(closed, "visit-closed")
    errors = await _validate(db, user, visit, data)
    if errors:
        raise unprocessable(
            f"{plural(len(errors), 'problem')} with the finding: "
            + "; ".join(e.reason for e in errors[:10]),
            errors,
        )
    raised_as = member.perspective if member else "coordinator"
    safeguarding = data.severity == "safeguarding"
    fields = [
        data.title,
        data.description,
        data.domain,
        data.question_keys,
        data.severity,
        data.evidence_ids,
        data.recommendation,
        body_hash,
    ]
    if existing is None:
        await db.execute(
            """insert into findings (id, organisation_id, visit_id, service_id, raised_by,
                   raised_as, status, title, description, domain, question_keys, severity,
                   evidence_ids, recommendation, body_hash)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
            finding_id,
            user.organisation_id,
            visit_id,
            visit.service_id,
            user.user_id,
            raised_as,
            "raised" if safeguarding else "draft",
            *fields,
        )
        status_code = 201
        became_safeguarding = safeguarding
        await history(
            db,
            user.organisation_id,
            finding_id,
            "raised",
            None,
            "raised" if safeguarding else "draft",
            user.user_id,
            role_words(user, perspective=member.perspective if member else None),
        )
    else:
        became_safeguarding = safeguarding and existing["severity"] != "safeguarding"
        await db.execute(
            """update findings set title = $2, description = $3, domain = $4,
                   question_keys = $5, severity = $6, evidence_ids = $7, recommendation = $8,
                   body_hash = $9, updated_at = now(),
                   status = case when $6 = 'safeguarding' and status = 'draft'
                                 then 'raised' else status end
             where id = $1""",
            finding_id,
            *fields,
        )
        status_code = 200
    if became_safeguarding:
        service = await db.fetchrow("select id, name from services where id = $1", visit.service_id)
        await notices.safeguarding_raised(db, settings, user.organisation_id, finding_id, service)
    await audit(
        db,
        request,
        "finding.raise" if existing is None else "finding.edit",
        "finding",
        finding_id,
        {"visit_id": str(visit_id), "severity": data.severity},
    )
    found = await finding_for(db, user, finding_id, settings.site_timezone)
    return Response(found, status_code=status_code, headers={"ETag": found.etag})


@get(
    "/v1/findings/{finding_id:uuid}",
    tags=["findings"],
    summary="A finding, its action plan and its history",
    description="404 when the caller may not see it: safeguarding concerns only to their "
    "raiser, coordinators and safeguarding leads; managers from the factual check on.",
    responses=problem_responses(401, 404),
)
async def get_finding(
    finding_id: FromPath[UUID], request: AuthedRequest, db: DB, state: State
) -> Finding:
    return await finding_for(db, request.user, finding_id, state.settings.site_timezone)


@get(
    "/v1/findings",
    tags=["findings"],
    summary="Findings the caller may see, newest first",
    description="Service managers see the findings about the services they manage; "
    "`overdue=true` lists recommendations past their due date with no response (derived "
    "at read time). Safeguarding concerns never appear to managers.",
    responses=problem_responses(400, 401, 422),
)
async def list_findings(
    request: AuthedRequest,
    db: DB,
    state: State,
    service: FromQuery[UUID | None] = None,
    visit: FromQuery[UUID | None] = None,
    status: FromQuery[Status | None] = None,
    overdue: FromQuery[bool | None] = None,
    cursor: FromQuery[str | None] = None,
    limit: Limit = 50,
) -> FindingPage:
    tz = state.settings.site_timezone
    after = decode_cursor(cursor, dt.datetime, UUID) if cursor else None
    rows = await db.fetch(
        FINDING_SQL
        + f""" where {VISIBLE}
              and ($8::uuid is null or f.service_id = $8)
              and ($9::uuid is null or f.visit_id = $9)
              and ($10::text is null or f.status = $10)
              and ($11::bool is null
                   or $11 = (f.status = 'open' and f.due_on < $12::date))
              and ($13::timestamptz is null or (f.created_at, f.id) < ($13, $14::uuid))
            order by f.created_at desc, f.id desc limit $15""",
        *visibility(request.user),
        service,
        visit,
        status,
        overdue,
        today(tz),
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
    )
    items = await load_findings(db, rows[:limit], tz)
    nxt = (
        encode_cursor(rows[limit - 1]["created_at"].isoformat(), str(rows[limit - 1]["id"]))
        if len(rows) > limit
        else None
    )
    return FindingPage(items=items, next_cursor=nxt)


@put(
    "/v1/findings/{finding_id:uuid}/updates/{update_id:uuid}",
    tags=["findings"],
    summary="Answer, progress, verify or handle a finding (idempotent on the update id)",
    description=(
        "`type` says what the update is. Service managers of the service: `accept` (with "
        "an action plan) or `decline` (with a reason) an open recommendation, then "
        "`progress`, `action_done` and `done`. Citizen inspectors: `verify` "
        "(confirmed or disputed) once the service says it is done. Safeguarding leads and "
        "coordinators: `acknowledge`, `refer` (with the local authority's reference), "
        "`close`. Each is a line in the finding's public history."
    ),
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def put_update(
    finding_id: FromPath[UUID],
    update_id: FromPath[UUID],
    data: JSONBody[Update],
    request: AuthedRequest,
    db: DB,
    state: State,
) -> Response[Finding]:
    user, settings = request.user, state.settings
    tz = settings.site_timezone
    finding = await finding_for(db, user, finding_id, tz, lock=True)
    body_hash = _hash(data)
    seen = await db.fetchrow(
        "select finding_id, body_hash from finding_updates where id = $1", update_id
    )
    if seen is not None:
        if seen["finding_id"] == finding_id and seen["body_hash"] == body_hash:
            return Response(finding)  # a retry: already applied
        raise conflict("This update id is already in use.", "update-id-taken")
    is_manager = await manages(db, user.user_id, finding.service_id)
    actor = rules.Actor(
        manages_service=is_manager and user.has("service_manager"),
        coordinator=user.has("coordinator"),
        safeguarding_lead=user.has("safeguarding_lead"),
        citizen_inspector=user.has("citizen_inspector"),
    )
    try:
        outcome = rules.apply(
            finding.status,
            finding.severity,
            data,
            actor,
            [a.done_at is not None for a in finding.actions],
        )
    except rules.Refused as e:
        raise Problem(e.status, e.kind, "Not possible", e.detail) from None
    note = getattr(data, "note", "") or getattr(data, "reason", "")
    evidence = list(getattr(data, "evidence_ids", []))
    errors = await check_evidence(
        db, user.organisation_id, finding.service_id, evidence, "evidence_ids"
    )
    if errors:
        raise unprocessable(errors[0].reason, errors)
    match data:
        case Accept(actions=actions):
            await db.execute(
                """insert into finding_actions (organisation_id, finding_id, position, action,
                                                owner, target_date)
                   select $1, $2, p, a, o, t
                     from unnest($3::int[], $4::text[], $5::text[], $6::date[]) as x(p, a, o, t)""",
                user.organisation_id,
                finding_id,
                list(range(1, len(actions) + 1)),
                [a.action for a in actions],
                [a.owner for a in actions],
                [a.target_date for a in actions],
            )
            note = note or f"Accepted with {plural(len(actions), 'action')}."
        case Decline(reason=reason):
            await db.execute(
                "update findings set decline_reason = $2 where id = $1", finding_id, reason
            )
        case _:
            pass
    if outcome.action_done is not None:
        await db.execute(
            "update finding_actions set done_at = now() where finding_id = $1 and position = $2",
            finding_id,
            outcome.action_done,
        )
        note = note or f"Action {outcome.action_done} done."
    await db.execute(
        """update findings set status = $2, updated_at = now(),
               responded_at = case when $3 then now() else responded_at end,
               safeguarding_reference = coalesce($4, safeguarding_reference)
         where id = $1""",
        finding_id,
        outcome.to_status,
        outcome.kind in ("accepted", "declined"),
        getattr(data, "reference", None),
    )
    role = role_words(user, manager=actor.manages_service)
    await history(
        db,
        user.organisation_id,
        finding_id,
        outcome.kind,
        finding.status,
        outcome.to_status,
        user.user_id,
        role,
        note,
        evidence,
        update_id,
        body_hash,
    )
    org = user.organisation_id
    if outcome.kind in ("accepted", "declined"):
        await notices.response_posted(db, settings, org, finding, outcome.kind)
    if outcome.to_status == "done_by_service":
        rounds = await db.fetchval(
            "select count(*) from finding_updates where finding_id = $1 "
            "and to_status = 'done_by_service'",
            finding_id,
        )
        await notices.verification_requested(db, settings, org, finding, rounds)
    await audit(
        db,
        request,
        f"finding.{outcome.kind}",
        "finding",
        finding_id,
        {"from": finding.status, "to": outcome.to_status},
    )
    return Response(await finding_for(db, user, finding_id, tz), status_code=201)


@get(
    "/v1/findings/summary",
    guards=[require_roles("coordinator", "scrutiny_member", "service_manager")],
    tags=["findings"],
    summary="For committees: per service, recommendations made, answered on time, overdue, "
    "verified",
    description="Recommendations of reports published in the period (default: the last 12 "
    "months). Managers see only the services they manage.",
    responses=problem_responses(401, 403, 422),
)
async def summary(
    request: AuthedRequest,
    db: DB,
    state: State,
    period_from: Annotated[dt.date | None, QueryParameter(name="from")] = None,
    period_to: Annotated[dt.date | None, QueryParameter(name="to")] = None,
) -> SummaryPage:
    user, tz = request.user, state.settings.site_timezone
    end = period_to or today(tz)
    start = period_from or end - dt.timedelta(days=365)
    if end < start:
        raise unprocessable("from must not be after to.")
    return SummaryPage(
        period_from=start, period_to=end, items=await summaries(db, user, start, end, tz)
    )


async def summaries(
    db: asyncpg.Connection,
    user: Principal,
    start: dt.date,
    end: dt.date,
    tz: str,
    service_id: UUID | None = None,
) -> list[ServiceSummary]:
    """Per service, what became of the recommendations of reports published start..end."""
    rows = await db.fetch(
        """select s.id service_id, s.name service_name,
                  count(*)::int recommendations,
                  count(*) filter (where f.responded_at is not null)::int answered,
                  count(*) filter (where (f.responded_at at time zone $5)::date <= f.due_on)::int
                      answered_on_time,
                  count(*) filter (where f.status = 'declined')::int declined,
                  count(*) filter (where f.status = 'open' and f.due_on < $6)::int overdue,
                  count(*) filter (where f.status = 'open')::int awaiting_response,
                  count(*) filter (where f.status = 'done_by_service')::int done_by_service,
                  count(*) filter (where f.status = 'verified')::int verified
             from findings f
             join visit_reports r on r.visit_id = f.visit_id and r.status = 'published'
             join services s on s.id = f.service_id
            where f.organisation_id = $1 and f.recommendation is not null and f.in_report
              and f.severity <> 'safeguarding' and r.published_on between $2 and $3
              and ($8::uuid is null or s.id = $8)
              and (not $4 or exists (select 1 from service_managers m
                                     where m.service_id = s.id and m.user_id = $7))
            group by s.id, s.name order by s.name, s.id""",
        user.organisation_id,
        start,
        end,
        not user.has("coordinator", "scrutiny_member"),
        tz,
        today(tz),
        user.user_id,
        service_id,
    )
    return [ServiceSummary(**dict(r)) for r in rows]


@get(
    "/v1/organisation/findings-settings",
    guards=[require_roles("coordinator", "scrutiny_member")],
    tags=["findings"],
    summary="How response deadlines are counted",
    responses=problem_responses(401, 403),
)
async def get_settings(request: AuthedRequest, db: DB) -> FindingSettings:
    return await finding_settings(db, request.user.organisation_id)


@patch(
    "/v1/organisation/findings-settings",
    guards=[require_roles("coordinator")],
    tags=["findings"],
    summary="Change the jurisdiction (bank holidays) and working days (audited)",
    responses=problem_responses(401, 403, 422),
)
async def patch_settings(
    data: JSONBody[FindingSettingsPatch], request: AuthedRequest, db: DB
) -> FindingSettings:
    org = request.user.organisation_id
    merged, changes = await patch_section(db, org, "findings", FindingSettings, data)
    await audit(db, request, "organisation.findings_settings", "organisation", org, changes)
    return merged


route_handlers = [
    put_finding,
    get_finding,
    list_findings,
    put_update,
    summary,
    get_settings,
    patch_settings,
]
