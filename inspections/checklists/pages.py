"""/checklists: the coordinator's checklists, each version as an inspector sees it (with the
easy-read text a link away), import from and export to .xlsx, small edits, publish, retire.

Every handler calls what the JSON route calls (inspections.checklists.operations, with the
routes' own guards): who may do what, and every rule of a draft, live there, not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from inspections.checklists import operations as ops
from inspections.checklists.questions import (
    Choice,
    Content,
    Number,
    PassFail,
    Prompt,
    Question,
    Rating,
    Text,
    Weight,
    YesNo,
    max_points,
    questions,
)
from inspections.checklists.routes import readers, workbook_response
from inspections.checklists.schemas import ChecklistPatch
from inspections.checklists.spreadsheet import BadSpreadsheet, read_checklist
from inspections.web.screens import page_errors, read_form, screen, screens_router, see_other
from inspections.wording import weekday_date
from service.auth import AuthedRequest, coordinator_only
from service.bounds import Version
from service.db import DB
from service.errors import DomainError
from service.schema import Form, LongText

# The inspector's app's own words (its en.json), so the preview reads as the phone does.
_APP_TEXT = Path(__file__).resolve().parent.parent / "inspector_app" / "static" / "text"
APP = json.loads((_APP_TEXT / "en.json").read_text(encoding="utf-8"))


class QuestionForm(Form, kw_only=True):
    prompt: Prompt
    help: LongText = ""
    easy_read: LongText = ""
    weight: Weight


class ConfirmForm(Form, kw_only=True):
    """A button's post: only the CSRF token."""


LABELS = {
    "prompt": "Question",
    "help": "Help text",
    "easy_read": "Easy-read text",
    "weight": "Weight",
}
KIND_WORDS = {
    "rating": "Rating",
    "pass_fail": "Pass or fail",
    "yes_no": "Yes or no",
    "choice": "Choice",
    "number": "Number",
    "text": "Text",
}


def _kind(q: Question) -> str:
    return str(type(q).__struct_config__.tag)


def _control(q: Question) -> dict[str, Any]:
    """What the inspector's app shows to answer ``q`` (inspector_app/static/app.js)."""
    radios: list[str] = []
    match q:
        case Rating(labels=labels):
            radios = [f"{i} · {label}" for i, label in enumerate(labels, start=1)]
        case PassFail():
            radios = [APP["answer.pass"], APP["answer.qualified_pass"], APP["answer.fail"]]
        case YesNo():
            radios = [APP["answer.yes"], APP["answer.no"]]
        case Choice(options=options, multiple=False):
            radios = [o.label for o in options]
        case Choice(options=options, multiple=True):
            return {
                "kind": "checkboxes",
                "legend": APP["question.choose_any"],
                "options": [o.label for o in options],
            }
        case Number(min=lo, max=hi, unit=unit):
            label = (
                APP["question.number_unit"].replace("{unit}", unit)
                if unit
                else APP["question.number"]
            )
            return {"kind": "number", "label": label, "min": lo, "max": hi}
        case Text(max_length=n):
            return {"kind": "text", "label": APP["question.your_answer"], "max_length": n}
        case _:
            pass
    return {"kind": "radios", "legend": APP["question.answer"], "options": radios}


def _facts(q: Question) -> list[str]:
    """What the app does not show but a coordinator checks: scoring and evidence rules."""
    out = [f"{KIND_WORDS[_kind(q)]} · domain {q.domain} · weight {q.weight:g}"]
    top = max_points(q)
    out.append(f"Scores up to {top:g} points" if top is not None else "Not scored")
    if isinstance(q, YesNo):
        out.append("The good answer is " + ("yes" if q.good_answer else "no"))
    if isinstance(q, Number) and (q.min is not None or q.max is not None):
        lo = f"{q.min:g}" if q.min is not None else "any"
        hi = f"{q.max:g}" if q.max is not None else "any"
        out.append(f"From {lo} to {hi}")
    if q.evidence is not None:
        if q.evidence.when == "always":
            out.append("Needs a photo")
        else:
            out.append(f"Needs a photo when the answer earns {q.evidence.points:g} or fewer")
    if not q.easy_read:
        out.append("No easy-read text")
    return out


def _sections(content: Content, easy: bool) -> list[dict[str, Any]]:
    out, n = [], 0
    for section in content.sections:
        qs = []
        for q in section.questions:
            n += 1
            qs.append(
                {
                    "n": n,
                    "key": q.key,
                    "prompt": q.easy_read if easy and q.easy_read else q.prompt,
                    "help": q.help,
                    "required": q.required,
                    "allow_na": q.allow_na,
                    "control": _control(q),
                    "facts": _facts(q),
                }
            )
        out.append({"title": section.title, "questions": qs})
    return out


def _preview(
    request: AuthedRequest,
    *,
    title: str,
    heading: str,
    content: Content,
    easy: bool,
    back: str,
    export: str,
    editable: bool,
    checklist_id: UUID,
    description: str,
    imported: bool = False,
    saved: str = "",
) -> Template:
    here = request.url.path
    return screen(
        request,
        "checklists/preview.html",
        title=title,
        heading=heading,
        description=description,
        sections=_sections(content, easy),
        easy=easy,
        switch_url=here if easy else here + "?" + urlencode({"text": "easy"}),
        app=APP,
        back=back,
        export=export,
        editable=editable and request.user.has("coordinator"),
        checklist_id=checklist_id,
        count=len(questions(content)),
        imported=imported,
        saved=saved,
    )


@get("/", name="checklists", guards=readers)
async def list_page(request: AuthedRequest, db: DB, retired: FromQuery[bool] = False) -> Template:
    # An organisation has a handful of checklists: one page holds them (the API pages them).
    rows = await ops.list_checklists(db, request.user, retired, (None, None), 500)
    return screen(
        request,
        "checklists/list.html",
        rows=ops.summaries(list(rows)),
        retired=retired,
        coordinator=request.user.has("coordinator"),
    )


@get("/{checklist_id:uuid}", guards=readers)
async def checklist_page(
    checklist_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    published: FromQuery[int | None] = None,
) -> Template:
    checklist = await ops.get_checklist(db, request.user, checklist_id)
    versions = await ops.versions(db, request.user, checklist_id)
    return screen(
        request,
        "checklists/checklist.html",
        c=checklist,
        versions=[
            {"version": v.version, "published": weekday_date(v.published_at)} for v in versions
        ],
        count=len(questions(checklist.content)),
        coordinator=request.user.has("coordinator"),
        published=published,
    )


@get("/{checklist_id:uuid}/draft", guards=readers)
async def draft_page(
    checklist_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    text: FromQuery[str] = "",
    imported: FromQuery[bool] = False,
    saved: FromQuery[str] = "",
) -> Template | Response[None]:
    c = await ops.get_checklist(db, request.user, checklist_id)
    if not c.has_draft:
        return see_other(f"/checklists/{checklist_id}/versions/{c.latest_version}")
    return _preview(
        request,
        title=f"Draft of {c.title}",
        heading=c.title,
        description=c.description,
        content=c.content,
        easy=text == "easy",
        back=f"/checklists/{checklist_id}",
        export=f"/checklists/{checklist_id}/export.xlsx",
        editable=not c.retired,
        checklist_id=checklist_id,
        imported=imported,
        saved=saved if any(q.key == saved for q in questions(c.content)) else "",
    )


@get("/{checklist_id:uuid}/versions/{version:int}", guards=readers)
async def version_page(
    checklist_id: FromPath[UUID],
    version: Version,
    request: AuthedRequest,
    db: DB,
    text: FromQuery[str] = "",
) -> Template:
    v = await ops.get_version(db, request.user, checklist_id, version)
    return _preview(
        request,
        title=f"{v.title}, version {version}",
        heading=f"{v.title}, version {version}",
        description=v.description,
        content=v.content,
        easy=text == "easy",
        back=f"/checklists/{checklist_id}",
        export=f"/checklists/{checklist_id}/versions/{version}/export.xlsx",
        editable=False,
        checklist_id=checklist_id,
    )


@get("/{checklist_id:uuid}/export.xlsx", guards=readers)
async def export_page(checklist_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Response:
    return workbook_response(*await ops.export_current(db, request.user, checklist_id))


@get("/{checklist_id:uuid}/versions/{version:int}/export.xlsx", guards=readers)
async def export_version_page(
    checklist_id: FromPath[UUID], version: Version, request: AuthedRequest, db: DB
) -> Response:
    return workbook_response(*await ops.export_version(db, request.user, checklist_id, version))


def _import_form(
    request: AuthedRequest, errors: list[dict[str, str]], problems: list[str], status: int = 200
) -> Template:
    return screen(
        request,
        "checklists/import.html",
        status=status,
        errors=errors,
        problems=problems,
    )


@get("/import", guards=coordinator_only)
async def import_page(request: AuthedRequest) -> Template:
    return _import_form(request, [], [])


@post("/import", guards=coordinator_only, status_code=303)
async def import_post(request: AuthedRequest, db: DB) -> Template | Response[None]:
    form = await request.form()
    upload = form.get("file")
    data = await upload.read() if isinstance(upload, UploadFile) else b""
    if not data:
        choose = [{"field": "file", "message": "Choose an .xlsx file to import"}]
        return _import_form(request, choose, [], 422)
    try:
        checklist = await ops.create_draft(db, request, read_checklist(data))
    except BadSpreadsheet as exc:
        summary = [{"field": "file", "message": exc.detail.split(":")[0] + ", listed below"}]
        return _import_form(request, summary, [str(p) for p in exc.problems], 422)
    except DomainError as exc:
        if exc.status != 422:
            raise
        return _import_form(request, page_errors(exc, {}), [], 422)
    return see_other(f"/checklists/{checklist.id}/draft?imported=1")


def _lines(text: str) -> str:
    # Browsers send a textarea's line breaks as CRLF; the API and the phone use LF.
    return text.replace("\r\n", "\n")


def _find(content: Content, key: str) -> Question:
    for q in questions(content):
        if q.key == key:
            return q
    raise DomainError(404, "not-found", "Not found", "No such question in this checklist.")


async def _edit_form(
    request: AuthedRequest,
    checklist_id: UUID,
    title: str,
    q: Question,
    values: dict[str, Any],
    errors: list[dict[str, str]],
    status: int = 200,
) -> Template:
    return screen(
        request,
        "checklists/question.html",
        status=status,
        checklist_id=checklist_id,
        checklist_title=title,
        key=q.key,
        kind=KIND_WORDS[_kind(q)],
        values=values,
        errors=errors,
        app_help=APP["question.help"],
    )


@get("/{checklist_id:uuid}/questions/{key:str}", guards=coordinator_only)
async def question_page(
    checklist_id: FromPath[UUID], key: FromPath[str], request: AuthedRequest, db: DB
) -> Template:
    c = await ops.get_checklist(db, request.user, checklist_id)
    q = _find(c.content, key)
    values = {
        "prompt": q.prompt,
        "help": q.help or "",
        "easy_read": q.easy_read or "",
        "weight": f"{q.weight:g}",
    }
    return await _edit_form(request, checklist_id, c.title, q, values, [])


@post("/{checklist_id:uuid}/questions/{key:str}", guards=coordinator_only, status_code=303)
async def question_post(
    checklist_id: FromPath[UUID], key: FromPath[str], request: AuthedRequest, db: DB
) -> Template | Response[None]:
    c = await ops.get_checklist(db, request.user, checklist_id)
    q = _find(c.content, key)
    form = await read_form(request, QuestionForm, LABELS)
    posted = await request.form()
    values = {f: str(posted.get(f, "")) for f in LABELS}
    if isinstance(form, list):
        return await _edit_form(request, checklist_id, c.title, q, values, form, 422)
    edited = msgspec.structs.replace(
        q,
        prompt=_lines(form.prompt),
        help=_lines(form.help) or None,
        easy_read=_lines(form.easy_read) or None,
        weight=form.weight,
    )
    content = Content(
        sections=[
            msgspec.structs.replace(
                s, questions=[edited if x.key == key else x for x in s.questions]
            )
            for s in c.content.sections
        ]
    )
    try:
        await ops.update_draft(db, request, checklist_id, ChecklistPatch(content=content))
    except DomainError as exc:
        if exc.status != 422:
            raise
        errors = page_errors(exc, LABELS)
        return await _edit_form(request, checklist_id, c.title, q, values, errors, 422)
    return see_other(f"/checklists/{checklist_id}/draft?saved={key}#q-{key}")


@post("/{checklist_id:uuid}/publish", guards=coordinator_only, status_code=303)
async def publish_post(checklist_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Any:
    form = await read_form(request, ConfirmForm, {})
    assert not isinstance(form, list)  # only the token, checked by the CSRF middleware
    published = await ops.publish(db, request, checklist_id)
    return see_other(f"/checklists/{checklist_id}?published={published.version}")


@post("/{checklist_id:uuid}/draft", guards=coordinator_only, status_code=303)
async def start_draft_post(checklist_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Any:
    # An edit that changes nothing: as PATCH /v1/checklists/{id} with {}, it starts a draft
    # from the latest version (or keeps the draft there is).
    await ops.update_draft(db, request, checklist_id, ChecklistPatch())
    return see_other(f"/checklists/{checklist_id}/draft")


@post("/{checklist_id:uuid}/retire", guards=coordinator_only, status_code=303)
async def retire_post(checklist_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Any:
    await ops.retire(db, request, checklist_id)
    return see_other(f"/checklists/{checklist_id}")


router = screens_router(
    "/checklists",
    [
        list_page,
        checklist_page,
        draft_page,
        version_page,
        export_page,
        export_version_page,
        import_page,
        import_post,
        question_page,
        question_post,
        publish_post,
        start_draft_post,
        retire_post,
    ],
)
