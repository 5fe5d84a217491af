"""Photo evidence over HTTP: parse, call the operation, present. Multipart upload,
presigned direct upload, reading, deleting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Response, delete, get, post, put
from litestar.openapi.spec import (
    Encoding,
    Example,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from inspections.audit.log import audit
from inspections.evidence import operations as ops
from inspections.evidence import queries as q
from inspections.evidence.context import EvidenceContext
from inspections.evidence.present import present
from inspections.evidence.schemas import (
    UPLOAD_METADATA_EXAMPLE,
    Evidence,
    EvidenceMeta,
    PersonFlag,
    Upload,
    UploadRequest,
)
from inspections.evidence.upload import receive
from inspections.idempotent import put_response
from inspections.visits.operations import visit_for
from inspections.visits.queries import DOOR_RULE
from service.auth import AuthedRequest, coordinator_only
from service.db import DB
from service.errors import (
    DomainError,
    forbidden,
    problem_responses,
    request_id_of,
    unprocessable,
)
from service.generation import WATCHED_TABLES_UNTOUCHED
from service.state import AppState

_meta_decoder = msgspec.json.Decoder(EvidenceMeta)


@dataclass
class MultipartUploadOperation(Operation):
    """Documents the multipart body the upload route streams itself."""

    def __post_init__(self) -> None:
        meta = {
            "type": "object",
            "required": ["evidence_id", "visit_id"],
            "properties": {
                "evidence_id": {"type": "string", "format": "uuid"},
                "visit_id": {"type": "string", "format": "uuid"},
                "submission_id": {"type": "string", "format": "uuid"},
                "question_key": {"type": "string"},
                "caption": {"type": "string"},
                "lat": {"type": "number"},
                "lon": {"type": "number"},
                "accuracy_m": {"type": "number"},
                "taken_at": {"type": "string", "format": "date-time"},
            },
        }
        self.request_body = RequestBody(
            required=True,
            description="Part 'metadata' (JSON, first) and part 'file' (the photo's bytes).",
            content={
                "multipart/form-data": OpenAPIMediaType(
                    examples={
                        "photo": Example(
                            summary="A photo with the phone\x27s location fix",
                            value={"metadata": UPLOAD_METADATA_EXAMPLE, "file": "(the bytes)"},
                        )
                    },
                    encoding={"metadata": Encoding(content_type="application/json")},
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["metadata", "file"],
                        properties={
                            "metadata": Schema(
                                type=OpenAPIType.STRING,
                                description="JSON: " + msgspec.json.encode(meta).decode(),
                            ),
                            "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
                        },
                    ),
                )
            },
        )


PROCESSING_NOTE = (
    "A photo is answered 202 with status 'processing' as soon as its original is safely "
    "stored and the checks that need no full decode have passed (the type by content, the "
    "pixel count, the file's structure: JPEG markers, HEIC boxes and NAL units, PNG chunks); "
    "the Location header (and 'poll') is where to GET it until status is 'ready' (with "
    "derivative URLs) or 'rejected'. A photo rejected after the 202 (damage only a full "
    "decode finds) has rejected_reason saying why, for the phone to show: send it again. "
    "A photo that is 'processing' already counts for a final submission's evidence rules. "
    "When too many photos wait to be processed, uploads get 503 with Retry-After: send the "
    "same upload again then (same evidence_id)."
)


def accepted(ev: Evidence) -> Response[Evidence]:
    """202 with where to poll, for a photo still processing; 200 otherwise."""
    if ev.status != "processing":
        return Response(ev, status_code=HTTP_200_OK)
    return Response(ev, status_code=HTTP_202_ACCEPTED, headers={"Location": ev.poll or ""})


@post(
    "/v1/evidence",
    tags=["evidence"],
    summary="Upload a photo (multipart: 'metadata' JSON part, then 'file')",
    description=(
        "Idempotent on metadata.evidence_id: the same id again returns the existing evidence "
        "(200, or 202 while it is still processing). The same bytes already in this visit "
        "return that evidence with duplicate_of. The file is recognised by content (JPEG, "
        "PNG, WebP, HEIC); anything else, a damaged or incomplete file (422 "
        "photo-corrupt-image: send it again) or too many pixels is refused and leaves "
        "nothing behind. " + PROCESSING_NOTE + " " + DOOR_RULE
    ),
    request_max_body_size=None,  # capped while streaming, by MAX_PHOTO_BYTES
    operation_class=MultipartUploadOperation,
    status_code=HTTP_202_ACCEPTED,
    responses=problem_responses(400, 403, 404, 409, 413, 415, 422, 503),
    # Writes evidence and its job only: phones' remembered bundles stay valid meanwhile.
    opt={WATCHED_TABLES_UNTOUCHED: True},
)
async def upload_evidence(request: AuthedRequest, state: AppState) -> Response[Evidence]:
    # No connection is held while the body arrives or the photo is checked: a phone on
    # a slow network must not tie up the pool (and an open transaction) for minutes.
    settings = state.settings
    # A long queue is refused before the body is read.
    async with q.connection(state.pool) as db:
        await ops.refuse_when_queue_full(db, settings)
    # Uploads first: this process's photo workers start nothing new meanwhile (jobs.py).
    with state.photo_jobs.receiving():
        received = await receive(request, settings.max_photo_bytes)
        try:
            meta = _meta_decoder.decode(received.metadata)
        except msgspec.DecodeError as exc:
            received.photo.discard()
            if isinstance(exc, msgspec.ValidationError):
                raise unprocessable(f"metadata: {exc}") from None
            raise DomainError(
                400, "malformed-json", "Malformed JSON", "The metadata part is not valid JSON."
            ) from None
        ev = await ops.upload_evidence(
            state.pool,
            EvidenceContext.of(state),
            request.user,
            meta,
            received.photo,
            request_id=request_id_of(request),
        )
    if ev.duplicate_of is not None:
        return Response(ev, status_code=HTTP_200_OK)
    return accepted(ev)


@post(
    "/v1/evidence/uploads",
    tags=["evidence"],
    summary="Start a direct-to-store upload: returns a presigned POST for the bytes",
    description=DOOR_RULE,
    responses=problem_responses(403, 404, 409, 413),
)
async def start_upload(
    data: JSONBody[UploadRequest], request: AuthedRequest, db: DB, state: AppState
) -> Response[Upload]:
    started = await ops.start_upload(
        db, EvidenceContext.of(state), request.user, data, request_id=request_id_of(request)
    )
    return put_response(started.upload, started.created)


@post(
    "/v1/evidence/{evidence_id:uuid}/complete",
    tags=["evidence"],
    status_code=HTTP_202_ACCEPTED,
    summary="The bytes are in the store: check them and queue them for processing",
    description="Idempotent: completing again returns the evidence as it is now (200 once "
    "ready). The door is checked again here: an upload started while it was open but "
    "completed after it closed is refused. " + PROCESSING_NOTE + " " + DOOR_RULE,
    responses=problem_responses(403, 409, 413, 415, 422, 503),
)
async def complete_upload(
    evidence_id: FromPath[UUID], request: AuthedRequest, state: AppState
) -> Response[Evidence]:
    ev = await ops.complete_upload(
        state.pool,
        EvidenceContext.of(state),
        request.user,
        evidence_id,
        request_id=request_id_of(request),
    )
    if ev.duplicate_of is not None:
        return Response(ev)  # the route's status, as before (202)
    return accepted(ev)


@get(
    "/v1/evidence/{evidence_id:uuid}",
    tags=["evidence"],
    summary="Evidence metadata, location and time checks, short-lived derivative URLs",
    description="The original's URL is given to coordinators only, and each such access is "
    "audited (ask with ?original=true).",
    responses=problem_responses(403),
)
async def get_evidence(
    evidence_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    state: AppState,
    original: Annotated[bool, QueryParameter(description="include the original's URL")] = False,
) -> Evidence:
    user = request.user
    row = await q.evidence_in_org(db, user, evidence_id)
    await q.may_read_evidence(db, user, row)
    if original:
        if not user.has("coordinator"):
            raise forbidden("Only coordinators can see original photos.")
        await audit(db, request, "evidence.original_access", "evidence", evidence_id)
    ready = row["status"] == "ready"
    return present(EvidenceContext.of(state), row, user, with_original=original and ready)


@get(
    "/v1/visits/{visit_id:uuid}/evidence",
    tags=["evidence"],
    summary="A visit's evidence (its team, coordinators)",
    responses=problem_responses(403),
)
async def list_visit_evidence(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> list[Evidence]:
    await visit_for(db, request.user, visit_id)
    ctx = EvidenceContext.of(state)
    return [
        present(ctx, r, request.user) for r in await q.visit_evidence(db, request.user, visit_id)
    ]


@delete(
    "/v1/evidence/{evidence_id:uuid}",
    guards=coordinator_only,
    tags=["evidence"],
    summary="Withdraw evidence (soft: kept for the record, audited)",
    responses=problem_responses(422),
)
async def delete_evidence(
    evidence_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    reason: Annotated[str, QueryParameter(min_length=1, max_length=1000)],
) -> None:
    await q.evidence_in_org(db, request.user, evidence_id)
    await q.withdraw(db, evidence_id, request.user.user_id, reason)
    await audit(db, request, "evidence.delete", "evidence", evidence_id, {"reason": reason})


@put(
    "/v1/evidence/{evidence_id:uuid}/person",
    tags=["evidence"],
    summary="Mark whether a photo shows a person (and, coordinators, why it may be public)",
    description="The uploader and coordinators may set shows_person; a photo showing a person "
    "is never on the public pages or Open311 unless a coordinator gives public_reason. "
    "Audited.",
    responses=problem_responses(403),
)
async def put_person(
    evidence_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    state: AppState,
    data: JSONBody[PersonFlag],
) -> Evidence:
    row = await ops.mark_person(
        db, request.user, evidence_id, data, request_id=request_id_of(request)
    )
    return present(EvidenceContext.of(state), row, request.user)


route_handlers = [
    put_person,
    upload_evidence,
    start_upload,
    complete_upload,
    get_evidence,
    list_visit_evidence,
    delete_evidence,
]
