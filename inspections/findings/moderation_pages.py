"""``/moderation``: a coordinator reviews what was written after a report was published
(notes, decline reasons, photos, action owners) before the public sees it.

Reads and writes are moderation.py's, the JSON routes' own functions; a rejection needs a
reason (shown beside its form when missing).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import Template
from msgspec import Meta

from inspections.findings.moderation import decide as decide_item
from inspections.findings.moderation import pending, pending_count, require_moderator
from inspections.web.home import panel_for
from inspections.web.screens import read_form, screen, screens_router, see_other
from inspections.wording import long_date
from service.auth import AuthedRequest, Principal
from service.db import DB
from service.errors import DomainError
from service.schema import Form

LABELS = {"decision": "Decision", "reason": "Why it is not published"}


class DecisionForm(Form, kw_only=True):
    decision: Literal["approve", "reject"]
    reason: Annotated[str, Meta(max_length=1000)] = ""


async def _page(
    request: AuthedRequest,
    db: DB,
    errors: dict[str, list[dict[str, str]]] | None = None,
    status: int = 200,
) -> Template:
    items = [
        {
            "kind": i.kind,
            "id": i.id,
            "key": f"{i.kind}-{i.id}",
            "what": "Action plan step" if i.kind == "action" else "Note or photos",
            "finding": i.finding_title,
            "service": i.service_name,
            "text": i.text,
            "owner": i.owner,
            "photos": [f"/evidence/{e}" for e in i.evidence_ids],  # evidence/pages.py
            "by": i.written_by.replace("_", " "),
            "when": long_date(i.created_at),
        }
        for i in await pending(db, request.user)
    ]
    return screen(
        request, "findings/moderation.html", status=status, items=items, errors=errors or {}
    )


@get("/moderation")
async def moderation(request: AuthedRequest, db: DB) -> Template:
    return await _page(request, db)


@post("/moderation/{kind:str}/{item_id:uuid}")
async def moderation_decide(
    kind: FromPath[str], item_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Response[Any] | Template:
    require_moderator(request.user)
    form = await read_form(request, DecisionForm, LABELS)
    key = f"{kind}-{item_id}"
    if isinstance(form, list):
        return await _page(request, db, {key: form}, status=422)
    if form.decision == "reject" and not form.reason:
        errors = [{"field": f"reason-{key}", "message": "Enter why it is not published"}]
        return await _page(request, db, {key: errors}, status=422)
    try:
        async with db.transaction():
            await decide_item(
                db,
                request,
                request.user,
                kind,
                item_id,
                approve=form.decision == "approve",
                reason=form.reason or None,
            )
    except DomainError as e:
        if e.status != 409:
            raise
        # Someone else decided first: the list no longer shows it.
    return see_other("/moderation")


@panel_for("coordinator")
async def moderation_panel(
    db: DB, user: Principal, request: AuthedRequest
) -> tuple[str, dict[str, Any]]:
    """A coordinator's home page: how many items wait for review."""
    count = await pending_count(db, user.organisation_id)
    return "findings/_moderation_panel.html", {"count": count}


router = screens_router("/", [moderation, moderation_decide])
