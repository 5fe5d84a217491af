"""``/concerns``: the safeguarding lead's queue: acknowledge, refer (with the local
authority's reference), close, and the history of each concern.

Reads are queues.concern_queue / concern_for (the API's visibility, then the lead's screen);
every change is ``operations.respond``, the JSON route's own function, under an update id
made when the form was shown, so a form sent twice records one change.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from inspections.findings import operations
from inspections.findings.manager_pages import history_lines, refused_update, site_tz
from inspections.findings.queues import OPEN_CONCERN, concern_for, concern_queue, open_concerns
from inspections.findings.schemas import Acknowledge, Close, Finding, Note, Refer, Update
from inspections.web.home import panel_for
from inspections.web.screens import form_screen, read_form, screen, screens_router, see_other
from inspections.wording import long_date, plural
from service.auth import AuthedRequest, Principal
from service.db import DB
from service.errors import DomainError, FieldError, request_id_of
from service.schema import Form, NonEmpty
from service.state import app_state

STATUS_WORDS = {
    "raised": "Raised: not yet acknowledged",
    "acknowledged": "Acknowledged",
    "referred": "Referred to the local authority",
    "closed": "Closed",
}
LABELS = {
    "reference": "The local authority's reference",
    "note": "Note",
    "update_id": "Note",
}
Step = Literal["acknowledge", "refer", "close"]


class StepForm(Form, kw_only=True):
    update_id: UUID  # made when the form was shown: sending it twice changes nothing
    note: Note = ""
    reference: NonEmpty | None = None


def _line(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "title": f.title,
        "service": f.service_name,
        "raised": long_date(f.created_at),
        "status": STATUS_WORDS.get(f.status, f.status),
        "open": f.status in OPEN_CONCERN,
        "reference": f.safeguarding_reference,
    }


@get("/concerns")
async def concerns(request: AuthedRequest, db: DB) -> Template:
    found = await concern_queue(db, request.user, site_tz(request))
    waiting = [_line(f) for f in found if f.status in OPEN_CONCERN]
    closed = [_line(f) for f in found if f.status not in OPEN_CONCERN]
    return screen(
        request,
        "findings/concerns.html",
        waiting=waiting,
        closed=closed,
        count=plural(len(waiting), "concern"),
    )


def _detail(request: AuthedRequest, f: Finding, **form: Any) -> Template:
    """The concern's page; ``form``: a refused form's errors, values and status."""
    steps = {
        "acknowledge": f.status == "raised",
        "refer": f.status in ("raised", "acknowledged"),
        "close": f.status in OPEN_CONCERN,
    }
    return form_screen(
        request,
        "findings/concern.html",
        concern=_line(f),
        description=f.description,
        raised_as=f.raised_as,
        steps=steps,
        history=history_lines(f),
        **form,
    )


@get("/concerns/{finding_id:uuid}")
async def concern(finding_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Template:
    return _detail(request, await concern_for(db, request.user, finding_id, site_tz(request)))


def _update(step: Step, form: StepForm) -> Update:
    if step == "acknowledge":
        return Acknowledge(note=form.note)
    if step == "refer":
        if form.reference is None:
            raise DomainError(
                422,
                "validation",
                "Invalid request",
                "Enter the local authority's reference.",
                [FieldError(field="$.reference", reason="Enter the local authority's reference")],
            )
        return Refer(reference=form.reference, note=form.note)
    return Close(note=form.note)


@post("/concerns/{finding_id:uuid}/{step:str}")
async def concern_step(
    finding_id: FromPath[UUID], step: FromPath[str], request: AuthedRequest, db: DB
) -> Response[Any] | Template:
    user: Principal = request.user
    settings = app_state(request.app).settings
    f = await concern_for(db, user, finding_id, settings.site_timezone)
    if step not in ("acknowledge", "refer", "close"):
        raise DomainError(404, "not-found", "Not found", "No such step.")
    form = await read_form(request, StepForm, LABELS)
    if isinstance(form, list):
        return _detail(request, f, errors=form, status=422)
    try:
        body = _update(step, form)  # type: ignore[arg-type]
        async with db.transaction():
            await operations.respond(
                db,
                user,
                settings,
                finding_id,
                form.update_id,
                body,
                request_id=request_id_of(request),
            )
    except DomainError as e:
        errors = refused_update(e, LABELS)
        values = {"note": form.note, "reference": form.reference or ""}
        return _detail(request, f, errors=errors, values=values, status=422)
    except msgspec.ValidationError as e:  # pragma: no cover - the form's types match
        raise DomainError(422, "validation", "Invalid request", str(e)) from e
    return see_other(f"/concerns/{finding_id}")


@panel_for("safeguarding_lead")
async def lead_panel(db: DB, user: Principal, request: AuthedRequest) -> tuple[str, dict[str, Any]]:
    """The lead's home page: how many concerns wait (nobody else sees the count)."""
    return "findings/_concerns_panel.html", {"count": await open_concerns(db, user)}


router = screens_router("/", [concerns, concern, concern_step])
