"""Submissions over HTTP: the phone's idempotent PUT of one inspector's answers (the
operation is inspections.submissions.operations.save_submission), and reading them back."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Response, Router, get, params, put
from litestar.openapi.spec import Example
from litestar.params import FromPath, HeaderParameter

from inspections.idempotent import put_response
from inspections.submissions import queries
from inspections.submissions.operations import save_submission
from inspections.submissions.schemas import (
    PUT_EXAMPLE,
    Submission,
    SubmissionPut,
    VisitSubmissions,
)
from inspections.submissions.side_by_side import visit_submissions
from inspections.visits.queries import visit_in_org
from service.auth import AuthedRequest, coordinator_only
from service.db import DB
from service.errors import forbidden, not_found, problem_responses, request_id_of


@put(
    "/{submission_id:uuid}",
    tags=["phone"],
    summary="Save my answers (idempotent; the phone makes the id; final locks them)",
    description=(
        "Replaying the same body returns the same result and creates nothing. Overwriting a "
        "draft with different answers needs If-Match with the draft's ETag (412 when stale, "
        "428 when missing). A final submission is validated against the visit's pinned "
        "checklist version and then locked: the same final body again is 200, another 409."
    ),
    responses=problem_responses(403, 409, 412, 428),
)
async def put_submission(
    visit_id: FromPath[UUID],
    submission_id: FromPath[UUID],
    data: Annotated[
        SubmissionPut,
        params.Body(
            examples=[Example(summary="A draft: one answer of each type", value=PUT_EXAMPLE)]
        ),
    ],
    request: AuthedRequest,
    db: DB,
    if_match: Annotated[
        str | None,
        HeaderParameter(name="If-Match", description="ETag of the draft being overwritten"),
    ] = None,
) -> Response[Submission]:
    saved = await save_submission(
        db, request.user, visit_id, submission_id, data, if_match, request_id=request_id_of(request)
    )
    return put_response(saved.submission, saved.created, saved.submission.etag)


@get(
    "/{submission_id:uuid}",
    tags=["phone"],
    summary="One submission (its inspector, or coordinators)",
    responses=problem_responses(403),
)
async def get_submission(
    visit_id: FromPath[UUID], submission_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Response[Submission]:
    await visit_in_org(db, request.user, visit_id)
    owner = await db.fetchval(
        "select user_id from submissions where id = $1 and visit_id = $2", submission_id, visit_id
    )
    if owner is None:
        raise not_found("submission")
    if owner != request.user.user_id and not request.user.has("coordinator"):
        raise forbidden("Only the inspector who made it and coordinators can read it.")
    sub = await queries.load_submission(db, submission_id)
    return Response(sub, headers={"ETag": sub.etag})


@get(
    "/",
    guards=coordinator_only,
    tags=["visits"],
    summary="Every submission of a visit, and each question's answers side by side",
)
async def list_submissions(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> VisitSubmissions:
    return await visit_submissions(db, request.user, visit_id)


# The phone's answers are tagged with the phone's other calls; the coordinator's
# side-by-side view with the visits.
router = Router(
    "/v1/visits/{visit_id:uuid}/submissions",
    route_handlers=[put_submission, get_submission, list_submissions],
)
