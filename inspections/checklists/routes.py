"""Co-designed, versioned checklists: drafts are editable, publishing freezes a version."""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Request, Response, Router, get, patch, post
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK
from litestar.types import ExceptionHandlersMap
from litestar.utils.scope.state import ScopeState
from msgspec import UNSET

from inspections.audit.log import audit
from inspections.checklists import queries as q
from inspections.checklists.questions import Content, name_the_question, questions
from inspections.checklists.schemas import (
    Checklist,
    ChecklistCreate,
    ChecklistPage,
    ChecklistPatch,
    ChecklistSummary,
    ChecklistVersion,
    Published,
)
from service.auth import AuthedRequest, require_roles
from service.bounds import Version
from service.db import DB, from_row
from service.errors import (
    FieldError,
    ProblemBody,
    conflict,
    problem_response,
    problem_responses,
    unprocessable,
    validation_problem,
)
from service.schema import Limit, cursor_after, page_of

coordinator = [require_roles("coordinator")]
readers = [require_roles("coordinator", "scrutiny_member")]


def _name_questions(request: Request, exc: ValidationException) -> Response[ProblemBody]:
    """A body that does not decode is a 422 whose reasons name each question by its key."""
    problem = validation_problem(exc)
    body = ScopeState.from_scope(request.scope).json  # the JSON Litestar decoded, if any
    problem.errors = [
        FieldError(e.field, name_the_question(body, e.field, e.reason)) for e in problem.errors
    ]
    if problem.errors:
        problem.detail = "; ".join(f"{e.field}: {e.reason}" for e in problem.errors)
    return problem_response(request, problem)


names_questions: ExceptionHandlersMap = {ValidationException: _name_questions}


@post(
    "/",
    guards=coordinator,
    exception_handlers=names_questions,
    summary="Create a checklist (as a draft)",
    responses=problem_responses(401, 403, 422),
)
async def create_checklist(
    data: JSONBody[ChecklistCreate], request: AuthedRequest, db: DB
) -> Checklist:
    q.validate_content(data.content)
    doc = q.draft_doc(
        data.title, data.description, data.service_kinds, data.contributors, data.content
    )
    checklist_id = await db.fetchval(
        """insert into checklists (organisation_id, title, description, service_kinds,
                                   contributors, draft)
           values ($1, $2, $3, $4, $5, $6) returning id""",
        request.user.organisation_id,
        data.title,
        data.description,
        data.service_kinds,
        doc["contributors"],
        doc,
    )
    assert checklist_id is not None  # insert ... returning: always a row
    await audit(db, request, "checklist.create", "checklist", checklist_id, {"title": data.title})
    return q.to_checklist(await q.checklist_row(db, request.user, checklist_id))


@get(
    "/",
    guards=readers,
    summary="Checklists of my organisation",
    responses=problem_responses(400, 401, 403),
)
async def list_checklists(
    request: AuthedRequest,
    db: DB,
    include_retired: FromQuery[bool] = False,
    cursor: FromQuery[str | None] = None,
    limit: Limit = 50,
) -> ChecklistPage:
    after = cursor_after(cursor, str, UUID)
    rows = await db.fetch(
        """select id, coalesce(draft->>'title', title) title, service_kinds,
                  draft is not null has_draft, latest_version, retired_at is not null retired,
                  updated_at, created_at
             from checklists
            where organisation_id = $1 and ($2 or retired_at is null)
              and ($3::timestamptz is null or (created_at, id) > ($3::timestamptz, $4))
            order by created_at, id limit $5""",
        request.user.organisation_id,
        include_retired,
        after[0],
        after[1],
        limit + 1,
    )
    page, nxt = page_of(rows, limit, "created_at", "id")
    return ChecklistPage(items=[from_row(ChecklistSummary, r) for r in page], next_cursor=nxt)


@get(
    "/{checklist_id:uuid}",
    guards=readers,
    summary="A checklist with its draft (or its latest version when there is no draft)",
    responses=problem_responses(401, 403, 404),
)
async def get_checklist(checklist_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Checklist:
    return q.to_checklist(await q.checklist_row(db, request.user, checklist_id))


@patch(
    "/{checklist_id:uuid}",
    guards=coordinator,
    exception_handlers=names_questions,
    summary="Edit the draft (editing a published checklist starts a new draft)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def patch_checklist(
    checklist_id: FromPath[UUID], data: JSONBody[ChecklistPatch], request: AuthedRequest, db: DB
) -> Checklist:
    row = await q.checklist_row(db, request.user, checklist_id)
    if row["retired_at"] is not None:
        raise conflict("This checklist is retired; create a new one instead.", "retired")
    doc = dict(q.current_doc(row))
    changed = []
    for field in ChecklistPatch.__struct_fields__:
        value = getattr(data, field)
        if value is not UNSET:
            if field == "content":
                q.validate_content(value)
            doc[field] = msgspec.to_builtins(value)
            changed.append(field)
    await db.execute(
        "update checklists set draft = $2, updated_at = now() where id = $1", checklist_id, doc
    )
    await audit(db, request, "checklist.edit", "checklist", checklist_id, {"fields": changed})
    return q.to_checklist(await q.checklist_row(db, request.user, checklist_id))


@post(
    "/{checklist_id:uuid}/publish",
    guards=coordinator,
    status_code=HTTP_200_OK,
    summary="Freeze the draft as the next immutable version",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def publish_checklist(
    checklist_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Published:
    # Lock the row so two publishes cannot both take version n+1.
    await db.execute("select 1 from checklists where id = $1 for update", checklist_id)
    row = await q.checklist_row(db, request.user, checklist_id)
    if row["retired_at"] is not None:
        raise conflict("This checklist is retired.", "retired")
    if row["draft"] is None:
        raise conflict("There is no draft to publish; edit the checklist first.", "no-draft")
    doc = row["draft"]
    content = msgspec.convert(doc["content"], Content)
    q.validate_content(content)
    if not questions(content):
        raise unprocessable("A checklist needs at least one question before it is published.")
    version = row["latest_version"] + 1
    await db.execute(
        """insert into checklist_versions (checklist_id, version, organisation_id, title,
               description, service_kinds, contributors, content, published_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        checklist_id,
        version,
        request.user.organisation_id,
        doc["title"],
        doc["description"],
        doc["service_kinds"],
        doc["contributors"],
        doc["content"],
        request.user.user_id,
    )
    await db.execute(
        """update checklists set latest_version = $2, draft = null, title = $3,
                  description = $4, service_kinds = $5, contributors = $6, updated_at = now()
            where id = $1""",
        checklist_id,
        version,
        doc["title"],
        doc["description"],
        doc["service_kinds"],
        doc["contributors"],
    )
    await audit(db, request, "checklist.publish", "checklist", checklist_id, {"version": version})
    return Published(checklist_id=checklist_id, version=version)


@get(
    "/{checklist_id:uuid}/versions/{version:int}",
    guards=readers,
    summary="One published, immutable version",
    responses=problem_responses(401, 403, 404),
)
async def get_version(
    checklist_id: FromPath[UUID], version: Version, request: AuthedRequest, db: DB
) -> ChecklistVersion:
    return await q.version_in_org(db, request.user.organisation_id, checklist_id, version)


@post(
    "/{checklist_id:uuid}/retire",
    guards=coordinator,
    status_code=HTTP_200_OK,
    summary="Retire: hidden from new visits (visits already planned keep their version)",
    responses=problem_responses(401, 403, 404),
)
async def retire_checklist(
    checklist_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Checklist:
    await q.checklist_row(db, request.user, checklist_id)
    await db.execute(
        """update checklists set retired_at = coalesce(retired_at, now()), updated_at = now()
            where id = $1""",
        checklist_id,
    )
    await audit(db, request, "checklist.retire", "checklist", checklist_id)
    return q.to_checklist(await q.checklist_row(db, request.user, checklist_id))


router = Router(
    "/v1/checklists",
    tags=["checklists"],
    route_handlers=[
        create_checklist,
        list_checklists,
        get_checklist,
        patch_checklist,
        publish_checklist,
        get_version,
        retire_checklist,
    ],
)
