"""/reports: the coordinator reviews a visit's findings, edits them, sends the report to the
service for a factual check, reads the manager's comments, publishes it (seeing the date
the recommendations will be due) and finds its public link.

Pages are keyed by the visit (a visit has at most one report). Every write is the same
operation the JSON API calls (inspections.findings.operations), reads are the same queries
(report_row, build_report, finding_for): the permission checks live there.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Template
from msgspec import Meta

from inspections.evidence.pages import photo_url
from inspections.findings import operations
from inspections.findings.queries import (
    build_report,
    finding_for,
    finding_settings,
    report_row,
    report_visits,
    today,
)
from inspections.findings.schemas import FindingPut, Publish, Report, ReportPut
from inspections.visits.operations import require_coordinator, visit_for
from inspections.web.screens import (
    Refused,
    page_errors,
    read_form,
    screen,
    screens_router,
    see_other,
    submit,
)
from inspections.wording import long_date, plural
from service.auth import AuthedRequest, Principal
from service.db import DB
from service.errors import DomainError, not_found, request_id_of
from service.schema import Form, LongText, NonEmpty
from service.state import AppState


class ReviewForm(Form, kw_only=True):
    summary: LongText = ""
    included: list[UUID] = []  # the findings kept in the report; the others are left out


class PublishForm(Form, kw_only=True):
    published_on: dt.date | None = None


class FindingForm(Form, kw_only=True):
    title: NonEmpty
    description: LongText = ""
    severity: Literal["positive", "minor", "major"]
    recommendation: Annotated[str, Meta(max_length=5_000)] = ""
    etag: str  # the version edited: a change made meanwhile is not overwritten


LABELS = {
    "summary": "Summary",
    "included": "Findings in the report",
    "excluded_finding_ids": "Findings in the report",
    "published_on": "Publication date",
    "title": "Title",
    "description": "What the team saw",
    "severity": "Kind of finding",
    "recommendation": "Recommendation",
    "etag": "Title",
}
SEVERITY_WORDS = {
    "positive": "Good practice",
    "minor": "Minor",
    "major": "Major",
    "safeguarding": "Safeguarding",
}
STATUS_WORDS = {
    "draft": "Draft: not sent yet",
    "factual_check": "With the service for a factual check",
    "published": "Published",
}
FINDING_STATUS = {
    "draft": "Draft",
    "open": "Waiting for the service's answer",
    "responded": "Answered",
    "in_progress": "Being acted on",
    "done_by_service": "Done, says the service",
    "verified": "Verified",
    "declined": "Declined",
    "noted": "Noted",
}


# --- the list ---------------------------------------------------------------------------


@get("/", name="reports")
async def reports_list(request: AuthedRequest, db: DB, state: AppState) -> Template:
    require_coordinator(request.user)  # the section is theirs, as the report writes are
    rows = await report_visits(db, request.user.organisation_id, state.settings.site_timezone)
    groups: dict[str, list[dict[str, Any]]] = {"review": [], "check": [], "published": []}
    for r in rows:
        group = {"factual_check": "check", "published": "published"}.get(r["status"], "review")
        groups[group].append(
            {
                "visit_id": r["visit_id"],
                "service": r["service_name"],
                "date": long_date(r["starts_at"]),
                "status": STATUS_WORDS.get(r["status"], "No report yet"),
                "findings": plural(r["findings"], "finding"),
                "comments": plural(r["comments"], "comment") if r["comments"] else "",
                "published_on": long_date(r["published_on"]) if r["published_on"] else "",
                "overdue": plural(r["overdue"], "recommendation") + " overdue"
                if r["overdue"]
                else "",
            }
        )
    return screen(request, "findings/reports_list.html", groups=groups)


# --- one report -------------------------------------------------------------------------


async def _report(
    db: asyncpg.Connection, user: Principal, visit_id: UUID, tz: str
) -> Report | None:
    """The visit's report as GET /v1/visits/{id}/report gives it; None when a coordinator
    has not started it yet (anyone else gets that route's 404)."""
    try:
        row = await report_row(db, user, "r.visit_id", visit_id)
    except DomainError as exc:
        if exc.status != 404 or not user.has("coordinator"):
            raise
        await visit_for(db, user, visit_id)  # another organisation's visit: 404 as well
        return None
    return await build_report(db, user, row, tz)


async def _ready_photos(db: asyncpg.Connection, ids: list[UUID]) -> set[UUID]:
    rows = await db.fetch(
        """select id from evidence where id = any($1::uuid[]) and status = 'ready'
              and deleted_at is null""",
        ids,
    )
    return {r["id"] for r in rows}


async def _review_page(
    request: AuthedRequest,
    db: DB,
    state: AppState,
    visit_id: UUID,
    errors: list[dict[str, str]] | None = None,
    status: int = 200,
) -> Template:
    user, tz = request.user, state.settings.site_timezone
    report = await _report(db, user, visit_id, tz)
    visit = await visit_for(db, user, visit_id) if report is None else None
    due = None
    if report is None or report.status != "published":
        fs = await finding_settings(db, user.organisation_id)
        due = {
            "days": fs.response_working_days,
            "on": long_date(await operations.response_due_on(db, user.organisation_id, today(tz))),
            "today": today(tz).isoformat(),
        }
    findings = []
    if report is not None:
        titles = {f.id: f.title for f in report.findings}
        ready = await _ready_photos(db, [e for f in report.findings for e in f.evidence_ids])
        for f in report.findings:
            findings.append(
                {
                    "f": f,
                    "severity": SEVERITY_WORDS[f.severity],
                    "status": FINDING_STATUS.get(f.status, f.status),
                    "due": long_date(f.due_on) if f.due_on else "",
                    "photos": [photo_url(e) for e in f.evidence_ids if e in ready],
                }
            )
        comments = [
            {
                "about": titles.get(c.finding_id, "") if c.finding_id else "",
                "comment": c.comment,
                "when": long_date(c.created_at),
            }
            for c in report.comments
        ]
    else:
        comments = []
    count = 0
    if report is None:
        count = await db.fetchval(
            "select count(*) from findings where visit_id = $1 and severity <> 'safeguarding'",
            visit_id,
        )
    return screen(
        request,
        "findings/report_review.html",
        status=status,
        errors=errors or [],
        visit_id=visit_id,
        service=report.service_name if report else visit.service_name if visit else "",
        visit_date=long_date(
            report.visit_date if report else visit.starts_at if visit else today(tz)
        ),
        report=report,
        report_status=STATUS_WORDS[report.status] if report else "No report yet",
        findings=findings,
        comments=comments,
        findings_count=plural(count or 0, "finding"),
        sent_on=long_date(report.sent_at) if report and report.sent_at else "",
        published_on=long_date(report.published_on) if report and report.published_on else "",
        due=due,
        may_act=user.has("coordinator"),
    )


@get("/{visit_id:uuid}", name="report-review")
async def review(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Template:
    return await _review_page(request, db, state, visit_id)


@post("/{visit_id:uuid}", name="report-save")
async def save_review(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Template | Response[None]:
    async def write(data: ReviewForm) -> operations.ReportSaved:
        # The form lists the findings kept; the report records those left out.
        ids = [
            r["id"]
            for r in await db.fetch(
                "select id from findings where visit_id = $1 and severity <> 'safeguarding'",
                visit_id,
            )
        ]
        body = ReportPut(
            summary=data.summary, excluded_finding_ids=[i for i in ids if i not in data.included]
        )
        return await operations.write_report(
            db, request.user, state.settings, visit_id, body, request_id=request_id_of(request)
        )

    done = await submit(db, await read_form(request, ReviewForm, LABELS), write, LABELS)
    if isinstance(done, Refused):
        return await _review_page(request, db, state, visit_id, done.errors, done.status)
    return see_other(f"/reports/{visit_id}#saved")


@post("/{visit_id:uuid}/start", name="report-start")
async def start(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Response[None]:
    # A new draft with every finding in it (the review then leaves some out).
    await operations.write_report(
        db, request.user, state.settings, visit_id, ReportPut(), request_id=request_id_of(request)
    )
    return see_other(f"/reports/{visit_id}")


async def _report_id(db: asyncpg.Connection, user: Principal, visit_id: UUID) -> UUID:
    return (await report_row(db, user, "r.visit_id", visit_id))["id"]


@post("/{visit_id:uuid}/send", name="report-send")
async def send(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Response[None]:
    report_id = await _report_id(db, request.user, visit_id)
    await operations.send_report(
        db, request.user, state.settings, report_id, request_id=request_id_of(request)
    )
    return see_other(f"/reports/{visit_id}")


@post("/{visit_id:uuid}/publish", name="report-publish")
async def publish(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Template | Response[None]:
    async def write(data: PublishForm) -> Report:
        report_id = await _report_id(db, request.user, visit_id)
        return await operations.publish_report(
            db,
            request.user,
            state.settings,
            report_id,
            Publish(published_on=data.published_on),
            request_id=request_id_of(request),
        )

    done = await submit(db, await read_form(request, PublishForm, LABELS), write, LABELS)
    if isinstance(done, Refused):
        for e in done.errors:
            if e["field"] == "published_on":  # the API's words name its field
                e["message"] = "Publication date must be between the day of the visit and today"
        return await _review_page(request, db, state, visit_id, done.errors, done.status)
    return see_other(f"/reports/{visit_id}")


# --- editing a finding ------------------------------------------------------------------


async def _finding_page(
    request: AuthedRequest,
    db: DB,
    state: AppState,
    visit_id: UUID,
    finding_id: UUID,
    values: dict[str, Any] | None,
    errors: list[dict[str, str]],
    status: int = 200,
) -> Template:
    f = await finding_for(db, request.user, finding_id, state.settings.site_timezone)
    if f.visit_id != visit_id or f.severity == "safeguarding":
        raise not_found("finding")
    values = values or {
        "title": f.title,
        "description": f.description,
        "severity": f.severity,
        "recommendation": f.recommendation or "",
        "etag": f.etag,
    }
    return screen(
        request,
        "findings/finding_edit.html",
        status=status,
        errors=errors,
        finding=f,
        values=values,
        visit_id=visit_id,
        severities=[(k, v) for k, v in SEVERITY_WORDS.items() if k != "safeguarding"],
    )


@get("/{visit_id:uuid}/findings/{finding_id:uuid}", name="finding-edit")
async def edit_finding(
    visit_id: FromPath[UUID],
    finding_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    state: AppState,
) -> Template:
    return await _finding_page(request, db, state, visit_id, finding_id, None, [])


@post("/{visit_id:uuid}/findings/{finding_id:uuid}", name="finding-save")
async def save_finding(
    visit_id: FromPath[UUID],
    finding_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    state: AppState,
) -> Template | Response[None]:
    form = await request.form()
    values = {
        k: form.get(k, "") for k in ("title", "description", "severity", "recommendation", "etag")
    }
    data = await read_form(request, FindingForm, LABELS)
    if isinstance(data, list):
        return await _finding_page(request, db, state, visit_id, finding_id, values, data, 422)
    f = await finding_for(db, request.user, finding_id, state.settings.site_timezone)
    # What the form does not show stays as the team raised it.
    body = FindingPut(
        title=data.title,
        description=data.description,
        domain=f.domain,
        question_keys=f.question_keys,
        severity=data.severity,
        evidence_ids=f.evidence_ids,
        recommendation=data.recommendation or None,
    )
    try:
        async with db.transaction():
            await operations.save_finding(
                db,
                request.user,
                state.settings,
                visit_id,
                finding_id,
                body,
                data.etag,
                request_id=request_id_of(request),
            )
    except DomainError as exc:
        if exc.status == 412:
            errors = [
                {
                    "field": "title",
                    "message": "Someone changed this finding while you were editing it. "
                    "Here it is as it is now: make your change again.",
                }
            ]
            return await _finding_page(request, db, state, visit_id, finding_id, None, errors, 409)
        if exc.status != 422:
            raise
        errors = page_errors(exc, LABELS)
        return await _finding_page(request, db, state, visit_id, finding_id, values, errors, 422)
    return see_other(f"/reports/{visit_id}#finding-{finding_id}")


router = screens_router(
    "/reports",
    [reports_list, review, save_review, start, send, publish, edit_finding, save_finding],
)
