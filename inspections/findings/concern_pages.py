"""``/concerns``: the safeguarding lead's queue: acknowledge, refer (with the local
authority's reference), close, and the history of each concern.

Reads are queues.concern_queue / concern_for (the API's visibility, then the lead's screen);
every change is ``operations.respond``, the JSON route's own function, under an update id
made when the form was shown, so a form sent twice records one change.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal
from uuid import UUID

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from inspections.findings import operations
from inspections.findings.manager_pages import sent_before
from inspections.findings.queues import OPEN_CONCERN, concern_for, concern_queue, open_concerns
from inspections.findings.schemas import Acknowledge, Close, Finding, Note, Refer, Update
from inspections.web.home import PANELS
from inspections.web.screens import page_errors, read_form, screen, screens_router, see_other
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
HISTORY_WORDS = {
    "raised": "Raised",
    "acknowledged": "Acknowledged",
    "referred": "Referred",
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


def _tz(request: AuthedRequest) -> str:
    return app_state(request.app).settings.site_timezone


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
    found = await concern_queue(db, request.user, _tz(request))
    waiting = [_line(f) for f in found if f.status in OPEN_CONCERN]
    closed = [_line(f) for f in found if f.status not in OPEN_CONCERN]
    return screen(
        request,
        "findings/concerns.html",
        waiting=waiting,
        closed=closed,
        count=plural(len(waiting), "concern"),
    )


def _detail(
    request: AuthedRequest,
    f: Finding,
    errors: list[dict[str, str]] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    steps = {
        "acknowledge": f.status == "raised",
        "refer": f.status in ("raised", "acknowledged"),
        "close": f.status in OPEN_CONCERN,
    }
    history = [
        {
            "when": long_date(h.at),
            "what": HISTORY_WORDS.get(h.kind, h.kind.replace("_", " ").capitalize()),
            "by": h.actor_role,
            "note": h.note,
        }
        for h in f.history
    ]
    return screen(
        request,
        "findings/concern.html",
        status=status,
        concern=_line(f),
        description=f.description,
        raised_as=f.raised_as,
        steps=steps,
        history=history,
        errors=errors or [],
        values=values or {},
        new_id=lambda: str(uuid.uuid4()),  # one per form: each is its own change
    )


@get("/concerns/{finding_id:uuid}")
async def concern(finding_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Template:
    return _detail(request, await concern_for(db, request.user, finding_id, _tz(request)))


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
        return _detail(request, f, form, status=422)
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
        if e.status != 422:
            raise sent_before(e) from None
        values = {"note": form.note, "reference": form.reference or ""}
        return _detail(request, f, page_errors(e, LABELS), values, status=422)
    except msgspec.ValidationError as e:  # pragma: no cover - the form's types match
        raise DomainError(422, "validation", "Invalid request", str(e)) from e
    return see_other(f"/concerns/{finding_id}")


async def lead_panel(
    db: DB, user: Principal, request: AuthedRequest
) -> tuple[str, dict[str, Any]] | None:
    """The lead's home page: how many concerns wait (nobody else sees the count)."""
    if not user.has("safeguarding_lead"):
        return None
    return "findings/_concerns_panel.html", {"count": await open_concerns(db, user)}


PANELS.append(lead_panel)
router = screens_router("/", [concerns, concern, concern_step])
