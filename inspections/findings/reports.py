"""Visit reports: the coordinator's review of a visit's findings, the provider's factual-
accuracy check, and publication, which starts the 20-working-day response clock.

Over HTTP: the writes are inspections.findings.operations; the SQL is in queries.py."""

from __future__ import annotations

from uuid import UUID

from litestar import Response, Router, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from inspections.findings import operations
from inspections.findings.queries import build_report, report_row
from inspections.findings.schemas import Comment, CommentPut, Publish, Report, ReportPut
from inspections.idempotent import put_response
from service.auth import AuthedRequest, coordinator_only, require_roles
from service.db import DB
from service.errors import problem_responses, request_id_of
from service.state import app_state


@put(
    "/visits/{visit_id:uuid}/report",
    guards=coordinator_only,
    summary="Write the visit's report from its findings (a draft; coordinators)",
    description="Creates or updates the draft: a summary and the findings left out. "
    "Safeguarding concerns are never in a report.",
    responses=problem_responses(409),
)
async def put_report(
    visit_id: FromPath[UUID],
    data: JSONBody[ReportPut],
    request: AuthedRequest,
    db: DB,
    state: State,
) -> Response[Report]:
    saved = await operations.write_report(
        db, request.user, state.settings, visit_id, data, request_id=request_id_of(request)
    )
    return put_response(saved.report, saved.created)


@get(
    "/visits/{visit_id:uuid}/report",
    summary="A visit's report, with the findings the caller may see",
)
async def get_visit_report(visit_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Report:
    return await _report(request, db, "r.visit_id", visit_id)


@get(
    "/reports/{report_id:uuid}",
    summary="A report, with the findings the caller may see",
)
async def get_report(report_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Report:
    return await _report(request, db, "r.id", report_id)


async def _report(request: AuthedRequest, db: DB, key: str, value: UUID) -> Report:
    """The report whose ``key`` column is ``value`` (its visit, or its own id), with the
    findings the caller may see: the two GET routes' one way."""
    row = await report_row(db, request.user, key, value)
    tz = app_state(request.app).settings.site_timezone
    return await build_report(db, request.user, row, tz)


@post(
    "/reports/{report_id:uuid}/send",
    guards=coordinator_only,
    summary="Send the draft to the service for a factual-accuracy check",
    description="Its managers can then read it and comment on its accuracy; the team can no "
    "longer change its findings (the coordinator can, until publication). Sending again "
    "changes nothing.",
    status_code=200,
    responses=problem_responses(409),
)
async def send_report(
    report_id: FromPath[UUID], request: AuthedRequest, db: DB, state: State
) -> Report:
    return await operations.send_report(
        db, request.user, state.settings, report_id, request_id=request_id_of(request)
    )


@put(
    "/reports/{report_id:uuid}/comments/{comment_id:uuid}",
    guards=[require_roles("service_manager")],
    summary="The provider's factual-accuracy comment (idempotent on the comment id)",
    responses=problem_responses(409),
)
async def put_comment(
    report_id: FromPath[UUID],
    comment_id: FromPath[UUID],
    data: JSONBody[CommentPut],
    request: AuthedRequest,
    db: DB,
) -> Response[Comment]:
    saved = await operations.comment_on_report(
        db, request.user, report_id, comment_id, data, request_id=request_id_of(request)
    )
    return put_response(saved.comment, saved.created)


@post(
    "/reports/{report_id:uuid}/publish",
    guards=coordinator_only,
    summary="Publish the report: recommendations become due (20 working days by default)",
    description=(
        "Publishes whether or not the provider commented. Each recommendation's response "
        "is due the given number of working days after `published_on` (default today), "
        "skipping weekends and the organisation's bank holidays. Refused (409) while any "
        "photo a finding links has not arrived and been processed. Publishing again "
        "changes nothing."
    ),
    status_code=200,
    responses=problem_responses(409),
)
async def publish_report(
    report_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    state: State,
    data: JSONBody[Publish | None] = None,
) -> Report:
    return await operations.publish_report(
        db, request.user, state.settings, report_id, data, request_id=request_id_of(request)
    )


router = Router(
    "/v1",
    tags=["reports"],
    route_handlers=[
        put_report,
        get_visit_report,
        get_report,
        send_report,
        put_comment,
        publish_report,
    ],
)
