"""/visits: the coordinator's visits, by date; scheduling one with its team; a visit's page
with its submissions side by side and its photos (each with whether it shows a person,
marked as PUT /v1/evidence/{id}/person marks it); cancelling and closing.

Every handler calls what the JSON route calls (inspections.visits.operations, the
submissions' side by side, the evidence list): the permission checks and the team rules
live there, not here.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
from litestar import Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from msgspec import Meta

from inspections.accounts.clearance import clearance_reasons, from_rows
from inspections.checklists.queries import version_in_org
from inspections.checklists.questions import Choice, PassFail, Rating, YesNo, questions
from inspections.evidence import operations as evidence_ops
from inspections.evidence import queries as evidence_q
from inspections.evidence.pages import photo_url
from inspections.evidence.schemas import PersonFlag
from inspections.submissions.side_by_side import visit_submissions
from inspections.visits import operations
from inspections.visits.schemas import TeamMemberIn, Visit, VisitCreate
from inspections.web.screens import (
    Refused,
    page_errors,
    read_form,
    screen,
    screens_router,
    see_other,
    submit,
)
from inspections.wording import plural, weekday_date
from service.auth import AuthedRequest, Principal
from service.bounds import MAX_YEAR, MIN_YEAR, bounded_moment
from service.db import DB
from service.errors import DomainError, not_found, request_id_of
from service.schema import Form
from service.state import AppState

TimeOfDay = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")]


class ScheduleForm(Form, kw_only=True):
    service_id: UUID
    checklist: Annotated[str, Meta(pattern=r"^[0-9a-f-]{36}/\d{1,6}$")]  # "<id>/<version>"
    day: dt.date
    starts_at: TimeOfDay
    ends_at: TimeOfDay
    announced: Literal["yes", "no"] = "yes"
    citizens: list[UUID] = []
    professionals: list[UUID] = []
    lead: UUID | None = None


class CancelForm(Form, kw_only=True):
    reason: Annotated[str, Meta(min_length=1, max_length=1000)]


class CloseForm(Form, kw_only=True):
    pass


LABELS = {
    "service_id": "Service",
    "checklist": "Checklist",
    "day": "Date",
    "starts_at": "Start time",
    "ends_at": "End time",
    "announced": "Announced or not",
    "team": "Team",
    "citizens": "Team",
    "professionals": "Team",
    "lead": "Team lead",
    "checklist_id": "Checklist",
    "checklist_version": "Checklist",
    "reason": "Reason for cancelling",
}
# The domain's words about a field, said as a volunteer would (the rest pass as they are).
PLAIN = {
    "must be after starts_at": "must be after the start time",
    "needs a time zone offset (RFC 3339)": "is not a time of day",
    "no such published version": "that version is not published",
}
# The schedule form, empty (every field the template reads).
BLANK: dict[str, Any] = {
    "service_id": "",
    "checklist": "",
    "day": "",
    "starts_at": "",
    "ends_at": "",
    "announced": "yes",
    "citizens": [],
    "professionals": [],
    "lead": "",
}
STATUS_WORDS = {
    "planned": "Planned",
    "in_progress": "In progress",
    "submitted": "Submitted",
    "cancelled": "Cancelled",
}


def _tz(state: AppState) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(state.settings.site_timezone)


def when_words(visit: Visit, tz: zoneinfo.ZoneInfo) -> str:
    """ "Tuesday 1 December 2026, 10:00 to 13:00" where the services are."""
    s, e = visit.starts_at.astimezone(tz), visit.ends_at.astimezone(tz)
    end = f"{e:%H:%M}" if s.date() == e.date() else f"{weekday_date(e)} {e:%H:%M}"
    return f"{weekday_date(s)}, {s:%H:%M} to {end}"


def status_words(visit: Visit) -> str:
    if visit.status == "submitted" and visit.closed_at is not None:
        return "Closed"
    return STATUS_WORDS[visit.status]


def _errors(exc: DomainError) -> list[dict[str, str]]:
    out = page_errors(exc, LABELS)
    for e in out:
        for said, plain in PLAIN.items():
            e["message"] = e["message"].replace(said, plain)
    return out


# --- the list ---------------------------------------------------------------------------


@get("/", name="visits")
async def visits_list(
    request: AuthedRequest,
    db: DB,
    state: AppState,
    service: FromQuery[str] = "",
    when: FromQuery[str] = "upcoming",
    cursor: FromQuery[str | None] = None,
) -> Template:
    recent = when == "recent"
    service_id = _uuid_or_none(service)
    # Today begins at midnight where the services are.
    midnight = dt.datetime.combine(dt.datetime.now(_tz(state)).date(), dt.time(), _tz(state))
    page = await operations.list_visits(
        db,
        request.user,
        service_id=service_id,
        # Upcoming: from the start of today, soonest first; recent: before that, latest first.
        starts_from=None if recent else midnight,
        starts_before=midnight if recent else None,
        cursor=cursor,
        limit=50,
        newest_first=recent,
    )
    services = await _services(db, request.user)
    tz = _tz(state)
    items = [
        {
            "visit": v,
            "when": when_words(v, tz),
            "status": status_words(v),
            "team": plural(len(v.team), "person", "people"),
        }
        for v in page.items
    ]
    more = None
    if page.next_cursor:
        more = urlencode(
            {"when": "recent" if recent else "upcoming", "service": service or ""}
            | {"cursor": page.next_cursor}
        )
        more = f"/visits?{more}"
    return screen(
        request,
        "visits/list.html",
        items=items,
        services=services,
        service=str(service_id or ""),
        recent=recent,
        more=more,
    )


def _uuid_or_none(value: str) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


async def _services(db: asyncpg.Connection, caller: Principal) -> list[Any]:
    return await db.fetch(
        "select id, name from services where organisation_id = $1 order by name, id",
        caller.organisation_id,
    )


# --- scheduling -------------------------------------------------------------------------


async def _checklists(db: asyncpg.Connection, caller: Principal) -> list[dict[str, str]]:
    """Each published version of the organisation's checklists in use, latest first."""
    rows = await db.fetch(
        """select c.id, v.version, v.title, c.latest_version
             from checklists c join checklist_versions v on v.checklist_id = c.id
            where c.organisation_id = $1 and c.retired_at is null
            order by c.title, c.id, v.version desc""",
        caller.organisation_id,
    )
    return [
        {
            "value": f"{r['id']}/{r['version']}",
            "label": f"{r['title']}, version {r['version']}"
            + (" (latest)" if r["version"] == r["latest_version"] else ""),
        }
        for r in rows
    ]


async def team_candidates(
    db: asyncpg.Connection, caller: Principal, on: dt.date, through: dt.date
) -> list[dict[str, Any]]:
    """The organisation's active inspectors, each with why they are not cleared for these
    days (clearance_reasons: the rule the team rules apply; empty when cleared)."""
    people = await db.fetch(
        """select id, display_name, roles from users
            where organisation_id = $1 and active
              and roles && array['citizen_inspector', 'professional_inspector']
            order by display_name, id""",
        caller.organisation_id,
    )
    training: dict[UUID, list[Any]] = defaultdict(list)
    for r in await db.fetch(
        """select user_id, kind, course, completed_on, expires_on from training_records
            where user_id = any($1::uuid[])""",
        [p["id"] for p in people],
    ):
        training[r["user_id"]].append(r)
    out = []
    for p in people:
        roles = set(p["roles"])
        out.append(
            {
                "id": str(p["id"]),
                "name": p["display_name"],
                "citizen": "citizen_inspector" in roles,
                "professional": "professional_inspector" in roles,
                "reasons": clearance_reasons(
                    roles & {"citizen_inspector"} or roles,
                    from_rows(training[p["id"]]),
                    on,
                    through,
                ),
            }
        )
    return out


def _moment(day: dt.date, time: str, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(time), tz)


async def _schedule_page(
    request: AuthedRequest,
    db: DB,
    state: AppState,
    values: dict[str, Any],
    errors: list[dict[str, str]],
    status: int = 200,
) -> Template:
    operations.require_coordinator(request.user)  # as scheduling will: say so first
    day = values.get("day") or dt.datetime.now(_tz(state)).date()
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            day = dt.datetime.now(_tz(state)).date()
    return screen(
        request,
        "visits/new.html",
        status=status,
        errors=errors,
        values=values,
        services=await _services(db, request.user),
        checklists=await _checklists(db, request.user),
        people=await team_candidates(db, request.user, day, day),
        clearance_day=weekday_date(day),
    )


@get("/new", name="visit-new")
async def new_visit(request: AuthedRequest, db: DB, state: AppState) -> Template:
    return await _schedule_page(request, db, state, dict(BLANK), [])


@post("/new", name="visit-schedule")
async def schedule_visit(
    request: AuthedRequest, db: DB, state: AppState
) -> Template | Response[None]:
    form = await request.form()
    values: dict[str, Any] = {
        k: form.get(k, "") for k in ("service_id", "checklist", "day", "starts_at", "ends_at")
    }
    values["announced"] = form.get("announced", "yes")
    values["citizens"] = form.getall("citizens") if "citizens" in form else []
    values["professionals"] = form.getall("professionals") if "professionals" in form else []
    values["lead"] = form.get("lead", "")
    data = await read_form(request, ScheduleForm, LABELS)
    if isinstance(data, list):
        for e in data:
            if e["field"] in ("starts_at", "ends_at"):
                e["message"] = f"Enter {LABELS[e['field']].lower()} like 10:30"
        return await _schedule_page(request, db, state, values, data, 422)
    tz = _tz(state)
    checklist_id, version = data.checklist.split("/")
    team = [
        TeamMemberIn(user_id=u, perspective="citizen", lead=u == data.lead) for u in data.citizens
    ]
    team += [
        TeamMemberIn(user_id=u, perspective="professional", lead=u == data.lead)
        for u in data.professionals
    ]
    if not team:
        errors = [{"field": "team", "message": "Team: choose at least one person for the team"}]
        return await _schedule_page(request, db, state, values, errors, 422)
    if data.lead is not None and not any(m.lead for m in team):
        errors = [{"field": "lead", "message": "Team lead: choose someone you put in the team"}]
        return await _schedule_page(request, db, state, values, errors, 422)
    try:
        starts_at = bounded_moment(_moment(data.day, data.starts_at, tz))
        ends_at = bounded_moment(_moment(data.day, data.ends_at, tz))
    except ValueError:  # a year this service does not plan for
        errors = [{"field": "day", "message": f"Date must be between {MIN_YEAR} and {MAX_YEAR}"}]
        return await _schedule_page(request, db, state, values, errors, 422)
    body = VisitCreate(
        service_id=data.service_id,
        checklist_id=UUID(checklist_id),
        checklist_version=int(version),
        starts_at=starts_at,
        ends_at=ends_at,
        announced=data.announced == "yes",
        team=team,
    )
    try:
        async with db.transaction():
            visit = await operations.create_visit(
                db, request.user, body, request_id=request_id_of(request)
            )
    except DomainError as exc:
        if exc.status not in (409, 422):
            raise  # a refusal (403, 404) is a page of its own
        return await _schedule_page(request, db, state, values, _errors(exc), 422)
    return see_other(f"/visits/{visit.id}")


# --- one visit --------------------------------------------------------------------------


def answer_words(question: Any, value: Any) -> str:
    """An answer as the inspector chose it, not its stored value."""
    if value is None:
        return "Not answered or N/A"
    match question:
        case Rating(labels=labels) if isinstance(value, int) and 1 <= value <= len(labels):
            return f"{value} of {len(labels)}: {labels[value - 1]}"
        case YesNo():
            return "Yes" if value is True else "No"
        case PassFail():
            words = {"pass": "Pass", "qualified_pass": "Qualified pass", "fail": "Fail"}
            return words.get(str(value), str(value))
        case Choice(options=options):
            names = {o.value: o.label for o in options}
            values = value if isinstance(value, list) else [value]
            return ", ".join(names.get(str(v), str(v)) for v in values)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    unit = getattr(question, "unit", None)
    return f"{value} {unit}" if unit and isinstance(value, int | float) else str(value)


# A photo's "shows a person" form: PersonFlag, the API's own body.
PERSON_LABELS = {"shows_person": "Shows a person", "public_reason": "Reason it may be public"}
PERSON_ONLY = "only for a photo that shows a person (tick “Shows a person” or leave it empty)."


def may_mark(user: Principal, uploaded_by: UUID | None) -> bool:
    """Who PUT /v1/evidence/{id}/person lets mark a photo: its uploader, a coordinator
    (mark_person checks again when the form is sent)."""
    return user.has("coordinator") or uploaded_by == user.user_id


@get("/{visit_id:uuid}", name="visit")
async def visit_page(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Template:
    return await _visit_page(visit_id, request, db, state)


async def _visit_page(
    visit_id: UUID,
    request: AuthedRequest,
    db: asyncpg.Connection,
    state: AppState,
    *,
    errors: list[dict[str, str]] | None = None,
    sent: dict[str, dict[str, str]] | None = None,
    status: int = 200,
) -> Template:
    """The visit's page; ``errors`` and ``sent``: a refused photo form's, by photo id."""
    subs = await visit_submissions(db, request.user, visit_id)  # coordinators; 404 elsewhere
    visit = await operations.visit_for(db, request.user, visit_id)
    version = await version_in_org(
        db, request.user.organisation_id, visit.checklist_id, visit.checklist_version
    )
    defs = {q.key: q for q in questions(version.content)}
    columns = [
        {
            "id": str(s.id),
            "name": s.display_name,
            "perspective": s.perspective,
            "final": s.state == "final",
        }
        for s in sorted(subs.submissions, key=lambda s: (s.perspective, s.display_name))
    ]
    comments = {(str(s.id), a.question_key): a.comment for s in subs.submissions for a in s.answers}
    rows = [
        {
            "prompt": row.prompt,
            "domain": row.domain.replace("_", " "),
            "answers": [
                {
                    "name": c["name"],
                    "perspective": c["perspective"],
                    "words": answer_words(defs.get(row.question_key), row.answers.get(c["id"])),
                    "comment": comments.get((c["id"], row.question_key)),
                }
                for c in columns
            ],
        }
        for row in subs.side_by_side
    ]
    photos = [
        {
            "thumb": photo_url(r["id"]),
            "display": photo_url(r["id"], "display"),
            "caption": r["caption"] or "",
            "question": defs[r["question_key"]].prompt if r["question_key"] in defs else "",
            "by": names.get(r["uploaded_by"], ""),
            "id": str(r["id"]),
            "may_mark": may_mark(request.user, r["uploaded_by"]),
            # What was sent, if this photo's form was refused; else what is recorded.
            "person": (sent or {}).get(str(r["id"]))
            or {
                "shows_person": "true" if r["shows_person"] else "",
                "public_reason": r["public_reason"] or "",
            },
            "marked": request.query_params.get("marked") == str(r["id"]),
        }
        for names in [{m.user_id: m.display_name for m in visit.team}]
        for r in await evidence_q.visit_evidence(db, request.user, visit_id)
        if r["status"] == "ready"
    ]
    report = await db.fetchrow("select id, status from visit_reports where visit_id = $1", visit_id)
    return screen(
        request,
        "visits/visit.html",
        visit=visit,
        when=when_words(visit, _tz(state)),
        visit_status=status_words(visit),
        checklist=version.title,
        columns=columns,
        rows=rows,
        photos=photos,
        report=report,
        errors=errors or [],
        status=status,
        coordinator=request.user.has("coordinator"),
    )


@post("/{visit_id:uuid}/photos/{evidence_id:uuid}/person", name="visit-photo-person")
async def mark_photo(
    visit_id: FromPath[UUID],
    evidence_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    state: AppState,
) -> Template | Response[None]:
    """Whether a photo of this visit shows a person, and why it may still be public: the
    API's operation (evidence.operations.mark_person), the API's body (PersonFlag)."""
    visit_of = await db.fetchval("select visit_id from evidence where id = $1", evidence_id)
    if visit_of != visit_id:
        raise not_found("evidence")
    raw = await request.form()
    done = await submit(
        db,
        await read_form(request, PersonFlag, PERSON_LABELS),
        lambda d: evidence_ops.mark_person(
            db, request.user, evidence_id, d, request_id=request_id_of(request)
        ),
        PERSON_LABELS,
    )
    if isinstance(done, Refused):
        # Each photo has its own form: ids (and so the error links) carry the photo's id.
        errors = [
            {
                "field": f"{e['field']}-{evidence_id}",
                "message": e["message"].replace("Only with shows_person true.", PERSON_ONLY),
            }
            for e in done.errors
        ]
        sent = {
            str(evidence_id): {
                "shows_person": str(raw.get("shows_person", "")),
                "public_reason": str(raw.get("public_reason", "")),
            }
        }
        return await _visit_page(
            visit_id, request, db, state, errors=errors, sent=sent, status=done.status
        )
    return see_other(f"/visits/{visit_id}?marked={evidence_id}#photo-{evidence_id}")


@post("/{visit_id:uuid}/cancel", name="visit-cancel")
async def cancel_visit(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Response[None] | Template:
    data = await read_form(request, CancelForm, LABELS)
    if isinstance(data, list):
        visit = await operations.visit_for(db, request.user, visit_id)
        return screen(request, "visits/cancel.html", status=422, visit=visit, errors=data)
    async with db.transaction():
        await operations.cancel_visit(
            db, request.user, visit_id, data.reason, request_id=request_id_of(request)
        )
    return see_other(f"/visits/{visit_id}")


@get("/{visit_id:uuid}/cancel", name="visit-cancel-form")
async def cancel_form(visit_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Template:
    operations.require_coordinator(request.user)  # as cancelling will
    visit = await operations.visit_for(db, request.user, visit_id)
    return screen(request, "visits/cancel.html", visit=visit, errors=[])


@post("/{visit_id:uuid}/close", name="visit-close")
async def close_visit(visit_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Response[None]:
    async with db.transaction():
        await operations.close_visit(db, request.user, visit_id, request_id=request_id_of(request))
    return see_other(f"/visits/{visit_id}")


router = screens_router(
    "/visits",
    [
        visits_list,
        new_visit,
        schedule_visit,
        visit_page,
        cancel_form,
        cancel_visit,
        close_visit,
        mark_photo,
    ],
)
