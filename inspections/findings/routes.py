"""Findings over HTTP: raised offline by a visit's team, answered by the service, verified
by citizens; safeguarding concerns go straight to the safeguarding leads.

The writes are thin: parse, call inspections.findings.operations, present."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Response, Router, get, params, put
from litestar.datastructures import State
from litestar.openapi.spec import Example
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from inspections.findings import operations
from inspections.findings.queries import (
    finding_for,
    load_findings,
    today,
    visible_findings,
)
from inspections.findings.schemas import (
    PUT_EXAMPLE,
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
from inspections.idempotent import put_response
from inspections.org_settings import settings_routes
from inspections.visits.queries import DOOR_RULE
from service.auth import AuthedRequest, Principal, require_roles
from service.db import DB
from service.errors import problem_responses, request_id_of, unprocessable
from service.schema import Paging


@put(
    "/visits/{visit_id:uuid}/findings/{finding_id:uuid}",
    summary="Raise or edit a finding (idempotent; the phone makes the id)",
    description=(
        "The visit's team and coordinators raise findings, online or offline. Replaying the "
        "same body is 200 and changes nothing; changing a finding needs If-Match with its "
        "ETag (412 stale, 428 missing) and is possible until its report goes to the service "
        "(coordinators: until published). A safeguarding finding goes at once to the "
        "safeguarding leads, and never into a report; it is taken whatever the door. " + DOOR_RULE
    ),
    responses=problem_responses(403, 409, 412, 428),
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
    saved = await operations.save_finding(
        db,
        request.user,
        state.settings,
        visit_id,
        finding_id,
        data,
        if_match,
        request_id=request_id_of(request),
    )
    return put_response(saved.finding, saved.created, saved.finding.etag)


@get(
    "/findings/{finding_id:uuid}",
    summary="A finding, its action plan and its history",
    description="404 when the caller may not see it: safeguarding concerns only to their "
    "raiser, coordinators and safeguarding leads; managers from the factual check on.",
)
async def get_finding(
    finding_id: FromPath[UUID], request: AuthedRequest, db: DB, state: State
) -> Finding:
    return await finding_for(db, request.user, finding_id, state.settings.site_timezone)


@get(
    "/findings",
    summary="Findings the caller may see, newest first",
    description="Service managers see the findings about the services they manage; "
    "`overdue=true` lists recommendations past their due date with no response (derived "
    "at read time). Safeguarding concerns never appear to managers.",
    responses=problem_responses(422),
)
async def list_findings(
    request: AuthedRequest,
    db: DB,
    state: State,
    *,
    service: FromQuery[UUID | None] = None,
    visit: FromQuery[UUID | None] = None,
    status: FromQuery[Status | None] = None,
    overdue: FromQuery[bool | None] = None,
    paging: Paging,
) -> FindingPage:
    tz = state.settings.site_timezone
    rows = await visible_findings(
        db,
        request.user,
        tz,
        service=service,
        visit=visit,
        status=status,
        overdue=overdue,
        after=paging.after(dt.datetime, UUID),
        limit=paging.fetch,
    )
    page, nxt = paging.page(rows, "created_at", "id")
    return FindingPage(items=await load_findings(db, page, tz), next_cursor=nxt)


@put(
    "/findings/{finding_id:uuid}/updates/{update_id:uuid}",
    summary="Answer, progress, verify or handle a finding (idempotent on the update id)",
    description=(
        "`type` says what the update is. Service managers of the service: `accept` (with "
        "an action plan) or `decline` (with a reason) an open recommendation, then "
        "`progress`, `action_done` and `done`. Citizen inspectors: `verify` "
        "(confirmed or disputed) once the service says it is done. Safeguarding leads and "
        "coordinators: `acknowledge`, `refer` (with the local authority's reference), "
        "`close`. Each is a line in the finding's public history."
    ),
    responses=problem_responses(403, 409),
)
async def put_update(
    finding_id: FromPath[UUID],
    update_id: FromPath[UUID],
    data: JSONBody[Update],
    request: AuthedRequest,
    db: DB,
    state: State,
) -> Response[Finding]:
    saved = await operations.respond(
        db,
        request.user,
        state.settings,
        finding_id,
        update_id,
        data,
        request_id=request_id_of(request),
    )
    return put_response(saved.finding, saved.created)


@get(
    "/findings/summary",
    guards=[require_roles("coordinator", "scrutiny_member", "service_manager")],
    summary="For committees: per service, recommendations made, answered on time, overdue, "
    "verified",
    description="Recommendations of reports published in the period (default: the last 12 "
    "months). Managers see only the services they manage.",
    responses=problem_responses(422),
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


settings_handlers = settings_routes(
    "/organisation/findings-settings",
    "findings",
    FindingSettings,
    FindingSettingsPatch,
    name="settings",
    audit_action="organisation.findings_settings",
    readers=("coordinator", "scrutiny_member"),
    read_summary="How response deadlines are counted",
    patch_summary="Change the jurisdiction (bank holidays) and working days (audited)",
)

router = Router(
    "/v1",
    tags=["findings"],
    route_handlers=[
        put_finding,
        get_finding,
        list_findings,
        put_update,
        summary,
        *settings_handlers,
    ],
)
