"""Visit reports: the coordinator's review of a visit's findings, the provider's factual-
accuracy check, and publication, which starts the 20-working-day response clock."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from litestar import Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from inspections.audit.log import audit
from inspections.findings import notices, rules, workdays
from inspections.findings.queries import (
    FINDING_SQL,
    VISIBLE,
    finding_settings,
    load_findings,
    manages,
    today,
    visibility,
)
from inspections.findings.routes import history
from inspections.findings.schemas import Comment, CommentPut, Publish, Report, ReportPut
from inspections.visits.queries import visit_in_org
from inspections.wording import long_date, plural
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
coordinators = [require_roles("coordinator")]

REPORT_SQL = """
    select r.id, r.visit_id, r.service_id, s.name service_name, r.status, r.summary,
           r.sent_at, r.published_at, r.published_on, r.organisation_id,
           v.starts_at visit_starts_at
      from visit_reports r join services s on s.id = r.service_id
      join visits v on v.id = r.visit_id"""


async def report_row(
    db: asyncpg.Connection, caller: Principal, where: str, key: UUID, lock: bool = False
) -> Any:
    """The report if the caller may see it: coordinators; the visit's team; the service's
    managers from the factual check on; scrutiny members once published."""
    row = await db.fetchrow(
        REPORT_SQL
        + f" where {where} = $1 and r.organisation_id = $2"
        + (" for update of r" if lock else ""),
        key,
        caller.organisation_id,
    )
    if row is None:
        raise not_found("report")
    if caller.has("coordinator"):
        return row
    on_team = await db.fetchval(
        "select exists (select 1 from visit_members where visit_id = $1 and user_id = $2)",
        row["visit_id"],
        caller.user_id,
    )
    if on_team:
        return row
    if row["status"] != "draft" and caller.has("service_manager"):
        if await manages(db, caller.user_id, row["service_id"]):
            return row
    if row["status"] == "published" and caller.has("scrutiny_member"):
        return row
    raise not_found("report")


async def build_report(db: asyncpg.Connection, caller: Principal, row: Any, tz: str) -> Report:
    findings = await db.fetch(
        FINDING_SQL
        + f" where {VISIBLE} and f.visit_id = $8 and f.severity <> 'safeguarding'"
        + " order by f.created_at, f.id",
        *visibility(caller),
        row["visit_id"],
    )
    team = {
        r["perspective"]: r["n"]
        for r in await db.fetch(
            """select perspective, count(*)::int n from visit_members where visit_id = $1
                group by 1""",
            row["visit_id"],
        )
    }
    comments = []
    if caller.has("coordinator") or row["status"] != "draft":
        comments = [
            Comment(
                id=c["id"],
                finding_id=c["finding_id"],
                comment=c["comment"],
                author_role="service manager",
                created_at=c["created_at"],
            )
            for c in await db.fetch(
                """select id, finding_id, comment, created_at from report_comments
                    where report_id = $1 order by created_at, id""",
                row["id"],
            )
        ]
    return Report(
        id=row["id"],
        visit_id=row["visit_id"],
        service_id=row["service_id"],
        service_name=row["service_name"],
        status=row["status"],
        summary=row["summary"],
        visit_date=row["visit_starts_at"].date(),
        team={"citizen": team.get("citizen", 0), "professional": team.get("professional", 0)},
        sent_at=row["sent_at"],
        published_at=row["published_at"],
        published_on=row["published_on"],
        findings=await load_findings(db, list(findings), tz),
        comments=comments,
    )


@put(
    "/v1/visits/{visit_id:uuid}/report",
    guards=coordinators,
    tags=["reports"],
    summary="Write the visit's report from its findings (a draft; coordinators)",
    description="Creates or updates the draft: a summary and the findings left out. "
    "Safeguarding concerns are never in a report.",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def put_report(
    visit_id: FromPath[UUID],
    data: JSONBody[ReportPut],
    request: AuthedRequest,
    db: DB,
    state: State,
) -> Response[Report]:
    user = request.user
    visit = await visit_in_org(db, user, visit_id)
    if visit.status == "cancelled":
        raise conflict("This visit was cancelled; it has no report.", "visit-cancelled")
    ids = {
        r["id"]
        for r in await db.fetch(
            "select id from findings where visit_id = $1 and severity <> 'safeguarding'",
            visit_id,
        )
    }
    bad = [
        FieldError(field=f"$.excluded_finding_ids[{i}]", reason="Not a finding of this visit.")
        for i, f in enumerate(data.excluded_finding_ids)
        if f not in ids
    ]
    if bad:
        raise unprocessable(bad[0].reason, bad)
    existing = await db.fetchrow(
        "select id, status from visit_reports where visit_id = $1 for update", visit_id
    )
    if existing is not None and existing["status"] != "draft":
        raise conflict(
            "This report has gone to the service; it can no longer change.", "report-locked"
        )
    report_id = await db.fetchval(
        """insert into visit_reports (organisation_id, visit_id, service_id, summary, created_by)
           values ($1, $2, $3, $4, $5)
           on conflict (visit_id) do update set summary = excluded.summary, updated_at = now()
           returning id""",
        user.organisation_id,
        visit_id,
        visit.service_id,
        data.summary,
        user.user_id,
    )
    await db.execute(
        """update findings set in_report = not (id = any($2::uuid[]))
            where visit_id = $1 and severity <> 'safeguarding'""",
        visit_id,
        data.excluded_finding_ids,
    )
    await audit(
        db,
        request,
        "report.write",
        "report",
        report_id,
        {"excluded": [str(i) for i in data.excluded_finding_ids]},
    )
    row = await report_row(db, user, "r.id", report_id)
    return Response(
        await build_report(db, user, row, state.settings.site_timezone),
        status_code=201 if existing is None else 200,
    )


@get(
    "/v1/visits/{visit_id:uuid}/report",
    tags=["reports"],
    summary="A visit's report, with the findings the caller may see",
    responses=problem_responses(401, 404),
)
async def get_visit_report(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: State
) -> Report:
    row = await report_row(db, request.user, "r.visit_id", visit_id)
    return await build_report(db, request.user, row, state.settings.site_timezone)


@get(
    "/v1/reports/{report_id:uuid}",
    tags=["reports"],
    summary="A report, with the findings the caller may see",
    responses=problem_responses(401, 404),
)
async def get_report(
    report_id: FromPath[UUID], request: AuthedRequest, db: DB, state: State
) -> Report:
    row = await report_row(db, request.user, "r.id", report_id)
    return await build_report(db, request.user, row, state.settings.site_timezone)


@post(
    "/v1/reports/{report_id:uuid}/send",
    guards=coordinators,
    tags=["reports"],
    summary="Send the draft to the service for a factual-accuracy check",
    description="Its managers can then read it and comment on its accuracy; the team can no "
    "longer change its findings (the coordinator can, until publication). Sending again "
    "changes nothing.",
    status_code=200,
    responses=problem_responses(401, 403, 404, 409),
)
async def send_report(
    report_id: FromPath[UUID], request: AuthedRequest, db: DB, state: State
) -> Report:
    user = request.user
    row = await report_row(db, user, "r.id", report_id, lock=True)
    if row["status"] == "published":
        raise conflict("This report is already published.", "report-published")
    if row["status"] == "draft":
        await db.execute(
            """update visit_reports set status = 'factual_check', sent_at = now(),
                      updated_at = now() where id = $1""",
            report_id,
        )
        await notices.factual_check(db, state.settings, user.organisation_id, row)
        await audit(db, request, "report.send", "report", report_id)
        row = await report_row(db, user, "r.id", report_id)
    return await build_report(db, user, row, state.settings.site_timezone)


@put(
    "/v1/reports/{report_id:uuid}/comments/{comment_id:uuid}",
    guards=[require_roles("service_manager")],
    tags=["reports"],
    summary="The provider's factual-accuracy comment (idempotent on the comment id)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def put_comment(
    report_id: FromPath[UUID],
    comment_id: FromPath[UUID],
    data: JSONBody[CommentPut],
    request: AuthedRequest,
    db: DB,
) -> Response[Comment]:
    user = request.user
    row = await report_row(db, user, "r.id", report_id)
    if not await manages(db, user.user_id, row["service_id"]):
        raise forbidden("Only the service's managers check a report's accuracy.")
    seen = await db.fetchrow(
        "select report_id, finding_id, comment, created_at from report_comments where id = $1",
        comment_id,
    )
    if seen is not None:
        if (seen["report_id"], seen["finding_id"], seen["comment"]) != (
            report_id,
            data.finding_id,
            data.comment,
        ):
            raise conflict("This comment id is already in use.", "comment-id-taken")
        return Response(
            Comment(
                id=comment_id,
                finding_id=seen["finding_id"],
                comment=seen["comment"],
                author_role="service manager",
                created_at=seen["created_at"],
            )
        )
    if row["status"] != "factual_check":
        raise conflict(
            "Comments on accuracy are taken while the report is being checked.",
            "report-not-in-check",
        )
    if data.finding_id is not None and not await db.fetchval(
        """select exists (select 1 from findings where id = $1 and visit_id = $2
                             and severity <> 'safeguarding' and in_report)""",
        data.finding_id,
        row["visit_id"],
    ):
        raise unprocessable(
            "No such finding in this report.",
            [FieldError(field="$.finding_id", reason="Not a finding of this report.")],
        )
    created = await db.fetchval(
        """insert into report_comments (id, organisation_id, report_id, finding_id, author_id,
                                        comment)
           values ($1, $2, $3, $4, $5, $6) returning created_at""",
        comment_id,
        user.organisation_id,
        report_id,
        data.finding_id,
        user.user_id,
        data.comment,
    )
    await audit(db, request, "report.comment", "report", report_id, {"comment_id": str(comment_id)})
    return Response(
        Comment(
            id=comment_id,
            finding_id=data.finding_id,
            comment=data.comment,
            author_role="service manager",
            created_at=created,
        ),
        status_code=201,
    )


@post(
    "/v1/reports/{report_id:uuid}/publish",
    guards=coordinators,
    tags=["reports"],
    summary="Publish the report: recommendations become due (20 working days by default)",
    description=(
        "Publishes whether or not the provider commented. Each recommendation's response "
        "is due the given number of working days after `published_on` (default today), "
        "skipping weekends and the organisation's bank holidays. Refused (409) while any "
        "photo a finding links has not arrived and been processed. Publishing again "
        "changes nothing."
    ),
    status_code=200,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def publish_report(
    report_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    state: State,
    data: JSONBody[Publish | None] = None,
) -> Report:
    user, settings = request.user, state.settings
    tz = settings.site_timezone
    row = await report_row(db, user, "r.id", report_id, lock=True)
    if row["status"] == "published":
        return await build_report(db, user, row, tz)
    now = today(tz)
    published_on = (data.published_on if data else None) or now
    visit_day = row["visit_starts_at"].date()
    if published_on > now or published_on < visit_day:
        raise unprocessable(
            f"published_on must be between the visit ({visit_day}) and today ({now}).",
            [FieldError(field="$.published_on", reason="Outside the visit-to-today range.")],
        )
    findings = await db.fetch(
        """select id, title, recommendation, severity, evidence_ids from findings
            where visit_id = $1 and severity <> 'safeguarding' and in_report
              and status = 'draft' order by created_at, id""",
        row["visit_id"],
    )
    waiting = await db.fetch(
        """select x.id, e.status from unnest($1::uuid[]) x(id)
             left join evidence e on e.id = x.id and e.deleted_at is null
            where e.status is distinct from 'ready'""",
        sorted({e for f in findings for e in f["evidence_ids"]}),
    )
    if waiting:
        raise Problem(
            409,
            "evidence-not-ready",
            "Photos still arriving",
            f"{plural(len(waiting), 'photo')} linked by findings have not arrived or are still "
            "being processed: "
            + ", ".join(f"{w['id']} ({w['status'] or 'not uploaded'})" for w in waiting[:10])
            + ". Publish when they are ready, or unlink them.",
        )
    fs = await finding_settings(db, user.organisation_id)
    try:
        due = workdays.add_working_days(published_on, fs.response_working_days, fs.jurisdiction)
    except ValueError as e:
        raise unprocessable(str(e)) from None
    for f in findings:
        to = rules.published_status(f["severity"], f["recommendation"])
        await db.execute(
            """update findings set status = $2, due_on = $3, updated_at = now() where id = $1""",
            f["id"],
            to,
            due if to == "open" else None,
        )
        await history(
            db,
            user.organisation_id,
            f["id"],
            "published",
            "draft",
            to,
            user.user_id,
            "coordinator",
            f"Response due by {long_date(due)}." if to == "open" else "",
        )
    await db.execute(
        """update visit_reports set status = 'published', published_at = now(),
                  published_on = $2, updated_at = now() where id = $1""",
        report_id,
        published_on,
    )
    recommendations = [f for f in findings if f["recommendation"]]
    await notices.report_published(db, settings, user.organisation_id, row, recommendations, due)
    await audit(
        db,
        request,
        "report.publish",
        "report",
        report_id,
        {"published_on": published_on.isoformat(), "due_on": due.isoformat()},
    )
    row = await report_row(db, user, "r.id", report_id)
    return await build_report(db, user, row, tz)


route_handlers = [
    put_report,
    get_visit_report,
    get_report,
    send_report,
    put_comment,
    publish_report,
]
