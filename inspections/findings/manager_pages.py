"""``/my/findings``: a service manager's recommendations and reports.

- The list: recommendations to the services I manage, overdue first, then by due date,
  with the days left in words; my services' scorecards; reports waiting for my factual
  check.
- One recommendation: accept with an action plan (actions, owner, target date) or decline
  with a reason; then post progress, mark actions done, mark it done.
- One report in its factual check: read it and comment on it (or on one finding).

Reads are queues.py (the API's visibility narrowed to the manager's services); every change
is the JSON route's own operation (``operations.respond``, ``operations.comment_on_report``)
under an id made when the form was shown, so a form sent twice records one change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from inspections.findings import operations, rules
from inspections.findings.queries import today
from inspections.findings.queues import my_finding, my_recommendations, report_for, reports_to_check
from inspections.findings.schemas import (
    Accept,
    ActionDone,
    CommentPut,
    Decline,
    Done,
    Finding,
    Note,
    Progress,
    Report,
    Update,
)
from inspections.scorecards.page import readable_services
from inspections.web.home import panel_for
from inspections.web.screens import (
    form_screen,
    page_errors,
    read_form,
    screen,
    screens_router,
    see_other,
)
from inspections.wording import days_left, long_date, plural
from service.auth import AuthedRequest, Principal
from service.db import DB
from service.errors import DomainError, request_id_of
from service.schema import Form
from service.state import app_state

ROWS = 3  # empty action rows on the accept form; a plan has 1 to 20 actions (the API's)
STATUS_WORDS = {
    "open": "Waiting for your response",
    "responded": "Accepted: the action plan is under way",
    "in_progress": "In progress",
    "done_by_service": "Done: waiting for citizen inspectors to check",
    "verified": "Checked and confirmed by citizen inspectors",
    "declined": "Declined",
    "noted": "Noted",
}
LABELS = {
    "reason": "Reason",
    "note": "Note",
    "comment": "Comment",
    "finding_id": "Which part of the report",
    "action": "Action",
    **{f"action_{i}": f"Action {i}" for i in range(1, ROWS + 1)},
    **{f"owner_{i}": f"Who will do action {i}" for i in range(1, ROWS + 1)},
    **{f"target_{i}": f"Target date for action {i}" for i in range(1, ROWS + 1)},
}


class AcceptForm(Form, kw_only=True):
    update_id: UUID
    note: Note = ""
    action_1: str = ""
    owner_1: str = ""
    target_1: dt.date | None = None
    action_2: str = ""
    owner_2: str = ""
    target_2: dt.date | None = None
    action_3: str = ""
    owner_3: str = ""
    target_3: dt.date | None = None


class DeclineForm(Form, kw_only=True):
    update_id: UUID
    reason: str = ""


class NoteForm(Form, kw_only=True):
    update_id: UUID
    note: Note = ""


class ActionDoneForm(Form, kw_only=True):
    update_id: UUID
    action: int


class CommentForm(Form, kw_only=True):
    comment_id: UUID
    comment: str = ""
    finding_id: UUID | None = None


def sent_before(e: DomainError) -> DomainError:
    """An id already used for other words (a stale form sent again), said for a person."""
    if e.kind not in ("update-id-taken", "comment-id-taken"):
        return e
    return DomainError(
        409,
        e.kind,
        "This form was already sent",
        "This form was sent before with other words. Go back, reload the page and try again.",
    )


def refused_update(e: DomainError, labels: dict[str, str]) -> list[dict[str, str]]:
    """An update the domain refused: beside its form when the form is at fault (422), else
    the error page with the API's words (403, 404, 409)."""
    if e.status != 422:
        raise sent_before(e) from None
    return page_errors(e, labels)


def history_lines(f: Finding) -> list[dict[str, Any]]:
    """A finding's public history, a line a change."""
    return [
        {
            "when": long_date(h.at),
            "what": h.kind.replace("_", " ").capitalize(),
            "by": h.actor_role,
            "note": h.note,
        }
        for h in f.history
    ]


def site_tz(request: AuthedRequest) -> str:
    return app_state(request.app).settings.site_timezone


def _due(f: Finding, now: dt.date) -> str:
    if f.due_on is None:
        return ""
    if f.status != "open":
        answered = {True: ": answered on time", False: ": answered late", None: ""}
        return f"Response was due {long_date(f.due_on)}{answered[f.responded_on_time]}"
    if f.overdue:
        return f"Response was due {long_date(f.due_on)}: {days_left(f.due_on, now)}"
    return f"Response due {long_date(f.due_on)}: {days_left(f.due_on, now)}"


def _line(f: Finding, now: dt.date) -> dict[str, Any]:
    return {
        "id": f.id,
        "title": f.title,
        "service": f.service_name,
        "recommendation": f.recommendation,
        "status": STATUS_WORDS.get(f.status, f.status.replace("_", " ")),
        "due": _due(f, now),
        "overdue": f.overdue,
    }


@get("/my/findings")
async def my_findings(request: AuthedRequest, db: DB) -> Template:
    user, tz = request.user, site_tz(request)
    to_do, finished = await my_recommendations(db, user, tz)
    now = today(tz)
    services = [s for group in (await readable_services(db, user)).values() for s in group]
    reports = await reports_to_check(db, user, tz)
    overdue = sum(1 for f in to_do if f.overdue)
    return screen(
        request,
        "findings/my_findings.html",
        to_do=[_line(f, now) for f in to_do],
        finished=[_line(f, now) for f in finished],
        summary=f"{plural(len(to_do), 'recommendation')} to answer or act on"
        + (f", {overdue} overdue" if overdue else ""),
        services=services,
        reports=[
            {
                "id": r.id,
                "service": r.service_name,
                "visit": long_date(r.visit_date),
                "sent": long_date(r.sent_at) if r.sent_at else "",
            }
            for r in reports
        ],
    )


def _detail(request: AuthedRequest, f: Finding, **form: Any) -> Template:
    """The recommendation's page; ``form``: a refused form's errors, values and status."""
    now = today(site_tz(request))
    working = f.status in rules.WORKING
    return form_screen(
        request,
        "findings/my_finding.html",
        f=f,
        line=_line(f, now),
        actions=[
            {
                "number": a.number,
                "action": a.action,
                "owner": a.owner,
                "target": long_date(a.target_date),
                "done": long_date(a.done_at) if a.done_at else "",
            }
            for a in f.actions
        ],
        history=history_lines(f),
        can_answer=f.status == "open",
        working=working,
        rows=range(1, ROWS + 1),
        **form,
    )


@get("/my/findings/{finding_id:uuid}")
async def recommendation(finding_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Template:
    return _detail(request, await my_finding(db, request.user, finding_id, site_tz(request)))


def _plan(form: AcceptForm) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The action rows filled in, and what is missing from a half-filled one."""
    actions, errors = [], []
    for i in range(1, ROWS + 1):
        action, owner = getattr(form, f"action_{i}").strip(), getattr(form, f"owner_{i}").strip()
        target = getattr(form, f"target_{i}")
        if not (action or owner or target):
            continue
        for name, value, words in (
            (f"action_{i}", action, f"Enter what will be done in action {i}"),
            (f"owner_{i}", owner, f"Enter who will do action {i}"),
            (f"target_{i}", target, f"Enter a target date for action {i}"),
        ):
            if not value:
                errors.append({"field": name, "message": words})
        actions.append({"action": action, "owner": owner, "target_date": target})
    if not actions:
        errors.append({"field": "action_1", "message": "Enter at least one action"})
    return actions, errors


def _in_words(e: msgspec.ValidationError) -> list[dict[str, str]]:
    """A plan msgspec refused (too long), named by the form's field."""
    text = str(e)
    for i in range(ROWS):
        for key, field in (("action", "action"), ("owner", "owner"), ("target_date", "target")):
            if f"$.actions[{i}].{key}" in text:
                name = f"{field}_{i + 1}"
                return [{"field": name, "message": f"Check {LABELS[name].lower()}: too long"}]
    return [{"field": "note", "message": "Check the note: it is too long"}]


async def _respond(
    request: AuthedRequest, db: DB, f: Finding, update_id: UUID, body: Update
) -> Response[Any]:
    settings = app_state(request.app).settings
    async with db.transaction():  # a refusal leaves nothing half-done
        await operations.respond(
            db, request.user, settings, f.id, update_id, body, request_id=request_id_of(request)
        )
    return see_other(f"/my/findings/{f.id}")


async def _answer(
    request: AuthedRequest, db: DB, finding_id: UUID, what: str
) -> Response[Any] | Template:
    f = await my_finding(db, request.user, finding_id, site_tz(request))
    forms: dict[str, type[Form]] = {
        "accept": AcceptForm,
        "decline": DeclineForm,
        "progress": NoteForm,
        "done": NoteForm,
        "action-done": ActionDoneForm,
    }
    form = await read_form(request, forms[what], LABELS)
    if isinstance(form, list):
        return _detail(request, f, errors=form, status=422)
    values = msgspec.structs.asdict(form)
    errors: list[dict[str, str]] = []
    body: Update | None = None
    try:
        if isinstance(form, AcceptForm):
            actions, errors = _plan(form)
            if not errors:
                body = msgspec.convert({"actions": actions, "note": form.note}, Accept)
        elif isinstance(form, DeclineForm):
            if not form.reason.strip():
                errors = [{"field": "reason", "message": "Enter the reason for declining"}]
            else:
                body = msgspec.convert({"reason": form.reason.strip()}, Decline)
        elif isinstance(form, ActionDoneForm):
            body = ActionDone(action=form.action)
        elif isinstance(form, NoteForm) and what == "progress":
            if not form.note.strip():
                errors = [{"field": "note", "message": "Enter what has happened"}]
            else:
                body = Progress(note=form.note.strip())
        elif isinstance(form, NoteForm):
            body = Done(note=form.note)
    except msgspec.ValidationError as e:
        errors = _in_words(e)
    if errors or body is None:
        return _detail(request, f, errors=errors, values=values, status=422)
    try:
        return await _respond(request, db, f, form.update_id, body)  # type: ignore[attr-defined]
    except DomainError as e:
        errors = refused_update(e, LABELS)
        return _detail(request, f, errors=errors, values=values, status=422)


@post("/my/findings/{finding_id:uuid}/{what:str}")
async def answer(
    finding_id: FromPath[UUID], what: FromPath[str], request: AuthedRequest, db: DB
) -> Response[Any] | Template:
    if what not in ("accept", "decline", "progress", "done", "action-done"):
        raise DomainError(404, "not-found", "Not found", "No such page.")
    return await _answer(request, db, finding_id, what)


def _report_page(request: AuthedRequest, r: Report, **form: Any) -> Template:
    """The report in its factual check; ``form``: a refused comment's errors, values, status."""
    titles = {f.id: f.title for f in r.findings}
    return form_screen(
        request,
        "findings/my_report.html",
        r=r,
        visit=long_date(r.visit_date),
        findings=r.findings,
        comments=[
            {
                "when": long_date(c.created_at),
                "about": titles.get(c.finding_id, "") if c.finding_id else "",
                "comment": c.comment,
            }
            for c in r.comments
        ],
        open_for_comments=r.status == "factual_check",
        **form,
    )


@get("/my/reports/{report_id:uuid}")
async def report(report_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Template:
    return _report_page(request, await report_for(db, request.user, report_id, site_tz(request)))


@post("/my/reports/{report_id:uuid}/comments")
async def comment(
    report_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Response[Any] | Template:
    r = await report_for(db, request.user, report_id, site_tz(request))
    form = await read_form(request, CommentForm, LABELS)
    if isinstance(form, list):
        return _report_page(request, r, errors=form, status=422)
    values = msgspec.structs.asdict(form)
    if not form.comment.strip():
        errors = [{"field": "comment", "message": "Enter your comment"}]
        return _report_page(request, r, errors=errors, values=values, status=422)
    try:
        body = msgspec.convert(
            {"comment": form.comment.strip(), "finding_id": form.finding_id}, CommentPut
        )
        async with db.transaction():
            await operations.comment_on_report(
                db,
                request.user,
                report_id,
                form.comment_id,
                body,
                request_id=request_id_of(request),
            )
    except msgspec.ValidationError:
        errors = [{"field": "comment", "message": "Your comment must be 5,000 characters or fewer"}]
        return _report_page(request, r, errors=errors, values=values, status=422)
    except DomainError as e:
        errors = refused_update(e, LABELS)
        return _report_page(request, r, errors=errors, values=values, status=422)
    return see_other(f"/my/reports/{report_id}#comments")


@panel_for("service_manager")
async def manager_panel(
    db: DB, user: Principal, request: AuthedRequest
) -> tuple[str, dict[str, Any]]:
    """A manager's home page: how many recommendations wait, how many are overdue."""
    to_do, _ = await my_recommendations(db, user, site_tz(request))
    return "findings/_manager_panel.html", {
        "to_do": len(to_do),
        "overdue": sum(1 for f in to_do if f.overdue),
    }


router = screens_router("/", [my_findings, recommendation, answer, report, comment])
