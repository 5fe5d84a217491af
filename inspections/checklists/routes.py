"""Co-designed, versioned checklists: drafts are editable, publishing freezes a version."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Request, Response, Router, get, patch, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body as BodyParam
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK
from litestar.types import ExceptionHandlersMap
from litestar.utils.scope.state import ScopeState

from inspections.checklists import operations as ops
from inspections.checklists.questions import name_the_question
from inspections.checklists.schemas import (
    Checklist,
    ChecklistCreate,
    ChecklistPage,
    ChecklistPatch,
    ChecklistVersion,
    Published,
)
from inspections.checklists.spreadsheet import MEDIA_TYPE as XLSX
from inspections.checklists.spreadsheet import read_checklist
from service.auth import AuthedRequest, coordinator_only, require_roles
from service.bounds import Version
from service.db import DB
from service.errors import (
    FieldError,
    ProblemBody,
    problem_response,
    problem_responses,
    validation_problem,
)
from service.schema import Body, Paging

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
    guards=coordinator_only,
    exception_handlers=names_questions,
    summary="Create a checklist (as a draft)",
)
async def create_checklist(
    data: JSONBody[ChecklistCreate], request: AuthedRequest, db: DB
) -> Checklist:
    return await ops.create_draft(db, request, data)


class WorkbookUpload(Body, kw_only=True):
    """An .xlsx workbook laid out as an export is (README: "Checklists as spreadsheets")."""

    file: UploadFile


@post(
    "/import",
    guards=coordinator_only,
    summary="Create a checklist (as a draft) from an .xlsx workbook",
    description=(
        "Multipart, part `file`: a workbook laid out as `GET .../export.xlsx` makes one. "
        "A bad workbook is a 422 whose `errors` name each problem by sheet, row and column."
    ),
    responses=problem_responses(413),
)
async def import_checklist(
    data: Annotated[WorkbookUpload, BodyParam(media_type=RequestEncodingType.MULTI_PART)],
    request: AuthedRequest,
    db: DB,
) -> Checklist:
    return await ops.create_draft(db, request, read_checklist(await data.file.read()))


def workbook_response(name: str, data: bytes) -> Response[bytes]:
    return Response(
        data,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


XLSX_OK = {
    HTTP_200_OK: ResponseSpec(
        data_container=bytes, media_type=XLSX, description="The checklist as .xlsx"
    )
}


@get(
    "/{checklist_id:uuid}/export.xlsx",
    guards=readers,
    summary="The draft (or, with none, the latest version) as an .xlsx workbook",
    media_type=XLSX,
    responses=XLSX_OK,
)
async def export_checklist(
    checklist_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Response[bytes]:
    return workbook_response(*await ops.export_current(db, request.user, checklist_id))


@get(
    "/{checklist_id:uuid}/versions/{version:int}/export.xlsx",
    guards=readers,
    summary="One published version as an .xlsx workbook",
    media_type=XLSX,
    responses=XLSX_OK,
)
async def export_version(
    checklist_id: FromPath[UUID], version: Version, request: AuthedRequest, db: DB
) -> Response[bytes]:
    return workbook_response(*await ops.export_version(db, request.user, checklist_id, version))


@get(
    "/",
    guards=readers,
    summary="Checklists of my organisation",
)
async def list_checklists(
    request: AuthedRequest,
    db: DB,
    *,
    include_retired: FromQuery[bool] = False,
    paging: Paging,
) -> ChecklistPage:
    after = paging.after(str, UUID)
    rows = await ops.list_checklists(db, request.user, include_retired, after, paging.fetch)
    page, nxt = paging.page(rows, "created_at", "id")
    return ChecklistPage(items=ops.summaries(list(page)), next_cursor=nxt)


@get(
    "/{checklist_id:uuid}",
    guards=readers,
    summary="A checklist with its draft (or its latest version when there is no draft)",
)
async def get_checklist(checklist_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Checklist:
    return await ops.get_checklist(db, request.user, checklist_id)


@patch(
    "/{checklist_id:uuid}",
    guards=coordinator_only,
    exception_handlers=names_questions,
    summary="Edit the draft (editing a published checklist starts a new draft)",
    responses=problem_responses(409),
)
async def patch_checklist(
    checklist_id: FromPath[UUID], data: JSONBody[ChecklistPatch], request: AuthedRequest, db: DB
) -> Checklist:
    return await ops.update_draft(db, request, checklist_id, data)


@post(
    "/{checklist_id:uuid}/publish",
    guards=coordinator_only,
    status_code=HTTP_200_OK,
    summary="Freeze the draft as the next immutable version",
    responses=problem_responses(409, 422),
)
async def publish_checklist(
    checklist_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Published:
    return await ops.publish(db, request, checklist_id)


@get(
    "/{checklist_id:uuid}/versions/{version:int}",
    guards=readers,
    summary="One published, immutable version",
)
async def get_version(
    checklist_id: FromPath[UUID], version: Version, request: AuthedRequest, db: DB
) -> ChecklistVersion:
    return await ops.get_version(db, request.user, checklist_id, version)


@post(
    "/{checklist_id:uuid}/retire",
    guards=coordinator_only,
    status_code=HTTP_200_OK,
    summary="Retire: hidden from new visits (visits already planned keep their version)",
)
async def retire_checklist(
    checklist_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Checklist:
    return await ops.retire(db, request, checklist_id)


router = Router(
    "/v1/checklists",
    tags=["checklists"],
    route_handlers=[
        create_checklist,
        import_checklist,
        export_checklist,
        export_version,
        list_checklists,
        get_checklist,
        patch_checklist,
        publish_checklist,
        get_version,
        retire_checklist,
    ],
)
