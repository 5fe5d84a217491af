"""Photo evidence over HTTP: multipart upload, presigned direct upload, reading, deleting."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
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
from inspections.checklists.queries import version_in_org
from inspections.checklists.questions import questions
from inspections.visits.queries import DOOR_RULE, may_see_visit, visit_door, visit_in_org
from inspections.visits.schemas import Visit
from media import ingest, keys
from media.schemas import (
    UPLOAD_METADATA_EXAMPLE,
    Evidence,
    EvidenceMeta,
    Location,
    PresignedPost,
    Upload,
    UploadRequest,
    Urls,
)
from media.upload import new_temp_file, receive, upload_dir
from service.auth import Principal, require_roles
from service.db import DB
from service.errors import (
    FieldError,
    Problem,
    conflict,
    forbidden,
    not_found,
    problem_response,
    problem_responses,
    unprocessable,
)

AuthedRequest = Request[Principal, Any, Any]
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


# -- checks beside the queries that load the objects -------------------------------------


async def visit_for_upload(db: asyncpg.Connection, user: Principal, meta: EvidenceMeta) -> Visit:
    """Only team members add evidence, only while the visit's door is open (DOOR_RULE)."""
    visit = await visit_in_org(db, user, meta.visit_id)
    if not any(m.user_id == user.user_id for m in visit.team):
        raise forbidden("Only members of this visit's team can add evidence to it.")
    closed = await visit_door(db, visit)
    if closed is not None:
        raise conflict(closed, "visit-closed")
    errors = []
    if meta.submission_id is not None:
        owner = await db.fetchval(
            "select user_id from submissions where id = $1 and visit_id = $2",
            meta.submission_id,
            visit.id,
        )
        if owner is not None and owner != user.user_id:
            errors.append(FieldError("$.submission_id", "not your submission"))
    if meta.question_key is not None:
        version = await version_in_org(
            db, user.organisation_id, visit.checklist_id, visit.checklist_version
        )
        if meta.question_key not in {q.key for q in questions(version.content)}:
            errors.append(FieldError("$.question_key", "no such question in this checklist"))
    if errors:
        raise unprocessable("The evidence metadata does not fit this visit.", errors)
    return visit


async def service_of(db: asyncpg.Connection, visit: Visit) -> asyncpg.Record:
    return await db.fetchrow(
        "select lat, lon, geofence_m from services where id = $1", visit.service_id
    )


async def evidence_row(db: asyncpg.Connection, user: Principal, evidence_id: UUID) -> Any:
    row = await db.fetchrow(
        "select * from evidence where id = $1 and organisation_id = $2 and deleted_at is null",
        evidence_id,
        user.organisation_id,
    )
    if row is None:
        raise not_found("evidence")
    return row


def safeguarded(caller: str, privileged: str) -> str:
    """SQL: evidence row ``e`` is hidden from the caller (parameter ``caller``; ``privileged``
    true for coordinators and safeguarding leads). A photo linked to a safeguarding concern
    is as private as the concern: only coordinators, safeguarding leads, whoever uploaded
    it and whoever raised the concern see it."""
    return f"""(exists (select 1 from findings f
                         where f.severity = 'safeguarding' and e.id = any(f.evidence_ids)
                           and f.raised_by <> {caller})
                and e.uploaded_by <> {caller} and not {privileged})"""


async def may_read_evidence(db: asyncpg.Connection, user: Principal, row: Any) -> None:
    """Coordinators and scrutiny members of the organisation, and the visit's team; a
    safeguarding concern's photos only as the concern itself (see safeguarded)."""
    lead = user.has("coordinator", "safeguarding_lead")
    guard = await db.fetchrow(
        f"""select {safeguarded("$2", "$3")} hidden,
                   exists (select 1 from findings f where f.severity = 'safeguarding'
                              and e.id = any(f.evidence_ids)) concern
              from evidence e where e.id = $1""",
        row["id"],
        user.user_id,
        lead,
    )
    if guard["hidden"]:
        raise not_found("evidence")
    if lead and guard["concern"]:
        return  # a safeguarding lead reads the concern's photos, though not on the team
    if user.has("coordinator", "scrutiny_member"):
        return
    member = await db.fetchval(
        "select 1 from visit_members where visit_id = $1 and user_id = $2",
        row["visit_id"],
        user.user_id,
    )
    if not member:
        raise forbidden("Only the visit's team, coordinators and scrutiny members see evidence.")


# -- presenting evidence -----------------------------------------------------------------

# What everyone but coordinators and the photographer learn of the distance from the service.
DISTANCE_STEP_M = 100


def location_seen_by(user: Principal, row: Any) -> Location | None:
    """Where a photo was taken, as this caller may know it: the one place that decides.

    Exact coordinates (and their accuracy) can place a resident's room or an inspector's
    home, so they go to coordinators and to the inspector who took the photo, on their own
    evidence. Everyone else (the rest of the team, scrutiny members, a safeguarding lead)
    sees the check (on_site / off_site / unverified), where it came from, and the distance
    from the service rounded to the nearest 100 m. Public outputs carry no photo location
    at all (Open311 places a finding at the service).
    """
    if row["location_source"] is None:
        return None
    if user.has("coordinator") or row["uploaded_by"] == user.user_id:
        exif = row["location_source"] == "exif"
        return Location(
            source=row["location_source"],
            check=row["location_check"],
            distance_m=row["distance_m"],
            lat=row["lat"],
            lon=row["lon"],
            accuracy_m=row["exif_h_error_m"] if exif else row["device_accuracy_m"],
        )
    distance = row["distance_m"]
    if distance is not None:
        distance = round(distance / DISTANCE_STEP_M) * float(DISTANCE_STEP_M)
    return Location(
        source=row["location_source"],
        check=row["location_check"],
        distance_m=distance,
        lat=None,
        lon=None,
        accuracy_m=None,
    )


async def present(
    state: State,
    row: Any,
    user: Principal,
    *,
    duplicate_of: UUID | None = None,
    with_original: bool = False,
) -> Evidence:
    urls = None
    if row["status"] == "ready":
        ttl = state.settings.evidence_url_ttl_s

        def url(key: str) -> str:
            return state.store.client.generate_presigned_url(
                "get_object", Params={"Bucket": state.store.bucket, "Key": key}, ExpiresIn=ttl
            )

        urls = Urls(
            display=url(row["display_key"]),
            thumb=url(row["thumb_key"]),
            original=url(row["original_key"]) if with_original else None,
            expires_in=ttl,
        )
    return Evidence(
        id=row["id"],
        visit_id=row["visit_id"],
        submission_id=row["submission_id"],
        question_key=row["question_key"],
        caption=row["caption"],
        uploaded_by=row["uploaded_by"],
        status=row["status"],
        rejected_reason=row["rejected_reason"],
        sha256=row["sha256"].hex() if row["sha256"] else None,
        size_bytes=row["size_bytes"],
        content_type=row["content_type"],
        width=row["width"],
        height=row["height"],
        taken_at=row["taken_at"],
        time_check=row["time_check"],
        location=location_seen_by(user, row),
        duplicate_of=duplicate_of,
        urls=urls,
        poll=f"/v1/evidence/{row['id']}" if row["status"] == "processing" else None,
        created_at=row["created_at"],
    )


def _base(meta: EvidenceMeta, user: Principal, status: str) -> dict[str, Any]:
    return {
        "id": meta.evidence_id,
        "organisation_id": user.organisation_id,
        "visit_id": meta.visit_id,
        "submission_id": meta.submission_id,
        "question_key": meta.question_key,
        "uploaded_by": user.user_id,
        "caption": meta.caption,
        "status": status,
        "device_lat": meta.lat,
        "device_lon": meta.lon,
        "device_accuracy_m": meta.accuracy_m,
        "device_taken_at": meta.taken_at,
    }


async def _existing(
    db: asyncpg.Connection, state: State, user: Principal, evidence_id: UUID
) -> Evidence | None:
    """A retried upload: the evidence it already made (200), never a second copy."""
    row = await db.fetchrow("select * from evidence where id = $1", evidence_id)
    if row is None:
        return None
    if row["organisation_id"] != user.organisation_id or row["uploaded_by"] != user.user_id:
        raise conflict("This evidence id is already in use.", "evidence-id-taken")
    return await present(state, row, user)


# -- routes ---------------------------------------------------------------------------------


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


def queue_full_problem(waiting: int, workers: int) -> Problem:
    # About one photo a second per image worker: come back when this backlog has gone.
    retry_after = max(5, min(300, waiting // max(1, workers)))
    return Problem(
        503,
        "photo-queue-full",
        "Too many photos waiting",
        f"{waiting} photos are waiting to be processed; send this one again in "
        f"{retry_after} seconds (the phone keeps it until then).",
        headers={"Retry-After": str(retry_after)},
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
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
async def upload_evidence(request: AuthedRequest, state: State) -> Response[Evidence]:
    # No connection is held while the body arrives or the photo is checked: a phone on
    # a slow network must not tie up the pool (and an open transaction) for minutes.
    user, settings = request.user, state.settings
    # A long queue is refused before the body is read: the phone keeps the photo and
    # sends it after Retry-After instead of waiting without end.
    async with state.pool.acquire() as db:
        waiting = await ingest.queue_full(db, settings.photo_queue_max)
    if waiting is not None:
        raise queue_full_problem(waiting, settings.image_workers)
    received = await receive(request, settings.max_photo_bytes)
    kept = False
    try:
        try:
            meta = _meta_decoder.decode(received.metadata)
        except msgspec.ValidationError as exc:
            raise unprocessable(f"metadata: {exc}") from None
        except msgspec.DecodeError:
            raise Problem(
                400, "malformed-json", "Malformed JSON", "The metadata part is not valid JSON."
            ) from None
        sha = bytes.fromhex(received.sha256)
        async with state.pool.acquire() as db:
            existing = await _existing(db, state, user, meta.evidence_id)
            if existing is not None:
                return accepted(existing)
            visit = await visit_for_upload(db, user, meta)
            dup = await ingest.duplicate_in_visit(db, visit.id, sha)
            if dup is not None:
                row = await db.fetchrow("select * from evidence where id = $1", dup)
                return Response(await present(state, row, user, duplicate_of=dup), status_code=200)
            service = await service_of(db, visit)
        checked = await ingest.checked(received.path, settings.max_photo_pixels)
        original_key = await ingest.store_original(
            state, user.organisation_id, received.sha256, received.path, checked.content_type
        )
        facts = ingest.conclusions(settings, visit, service, meta, checked.meta)
        fields = ingest.stored_fields(checked, received.sha256, received.size, original_key, facts)
        async with state.pool.acquire() as db, db.transaction():
            inserted = await ingest.insert_queued(db, _base(meta, user, "processing"), fields)
            if inserted is None:  # a racing twin of this upload finished first
                existing = await _existing(db, state, user, meta.evidence_id)
                if existing is not None:
                    return accepted(existing)
                dup = await ingest.duplicate_in_visit(db, visit.id, sha)
                if dup is None:
                    raise conflict("The same upload was being stored at the same moment; retry.")
                row = await db.fetchrow("select * from evidence where id = $1", dup)
                return Response(await present(state, row, user, duplicate_of=dup), status_code=200)
            await audit(
                db,
                request,
                "evidence.upload",
                "evidence",
                meta.evidence_id,
                {
                    "visit_id": str(visit.id),
                    "sha256": received.sha256,
                    "location_check": facts["location_check"],
                },
            )
            row = await db.fetchrow("select * from evidence where id = $1", meta.evidence_id)
        # Committed: this process's worker may process it from the received file.
        state.photo_jobs.keep(meta.evidence_id, received.path)
        kept = True
    finally:
        if not kept:
            await asyncio.to_thread(received.discard)
    return accepted(await present(state, row, user))


@post(
    "/v1/evidence/uploads",
    tags=["evidence"],
    summary="Start a direct-to-store upload: returns a presigned POST for the bytes",
    description=DOOR_RULE,
    responses=problem_responses(401, 403, 404, 409, 413, 422),
)
async def start_upload(
    data: JSONBody[UploadRequest], request: AuthedRequest, db: DB, state: State
) -> Response[Upload]:
    user, settings = request.user, state.settings
    if data.size_bytes is not None and data.size_bytes > settings.max_photo_bytes:
        raise Problem(
            413,
            "photo-too-large",
            "Photo too large",
            f"The photo is larger than the {settings.max_photo_bytes / 1e6:.0f} MB "
            "limit; send a smaller one.",
        )
    row = await db.fetchrow("select * from evidence where id = $1", data.evidence_id)
    status = 200
    if row is None:
        await visit_for_upload(db, user, data)
        base = _base(data, user, "uploading")
        base["upload_key"] = keys.incoming_key(user.organisation_id, data.evidence_id)
        base["upload_expires_at"] = dt.datetime.now(dt.UTC) + dt.timedelta(
            seconds=settings.upload_url_ttl_s
        )
        cols = list(base)
        await db.execute(
            f"""insert into evidence ({", ".join(cols)})
                values ({", ".join(f"${i}" for i in range(1, len(cols) + 1))})""",
            *base.values(),
        )
        row = await db.fetchrow("select * from evidence where id = $1", data.evidence_id)
        await audit(
            db,
            request,
            "evidence.upload_start",
            "evidence",
            data.evidence_id,
            {"visit_id": str(data.visit_id)},
        )
        status = 201
    elif row["organisation_id"] != user.organisation_id or row["uploaded_by"] != user.user_id:
        raise conflict("This evidence id is already in use.", "evidence-id-taken")
    upload = None
    if row["status"] == "uploading":
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.upload_url_ttl_s)
        post_ = state.store.client.generate_presigned_post(
            Bucket=state.store.bucket,
            Key=row["upload_key"],
            Fields={},
            Conditions=[["content-length-range", 1, settings.max_photo_bytes]],
            ExpiresIn=settings.upload_url_ttl_s,
        )
        upload = PresignedPost(
            url=post_["url"],
            fields=post_["fields"],
            max_bytes=settings.max_photo_bytes,
            expires_at=expires,
        )
    return Response(
        Upload(evidence_id=row["id"], status=row["status"], upload=upload), status_code=status
    )


@post(
    "/v1/evidence/{evidence_id:uuid}/complete",
    tags=["evidence"],
    status_code=HTTP_202_ACCEPTED,
    summary="The bytes are in the store: check them and queue them for processing",
    description="Idempotent: completing again returns the evidence as it is now (200 once "
    "ready). The door is checked again here: an upload started while it was open but "
    "completed after it closed is refused. " + PROCESSING_NOTE + " " + DOOR_RULE,
    responses=problem_responses(401, 403, 404, 409, 413, 415, 422, 503),
)
async def complete_upload(
    evidence_id: FromPath[UUID], request: AuthedRequest, db: DB, state: State
) -> Response[Evidence]:
    user, store, settings = request.user, state.store, state.settings
    await db.execute("select 1 from evidence where id = $1 for update", evidence_id)
    row = await evidence_row(db, user, evidence_id)
    if row["uploaded_by"] != user.user_id:
        raise forbidden("Only the inspector who started this upload can complete it.")
    if row["status"] != "uploading":
        if row["status"] == "rejected":
            raise Problem(
                422, f"photo-{row['rejected_kind']}", "Photo refused", row["rejected_reason"]
            )
        return accepted(await present(state, row, user))
    waiting = await ingest.queue_full(db, settings.photo_queue_max)
    if waiting is not None:
        raise queue_full_problem(waiting, settings.image_workers)
    meta = EvidenceMeta(
        evidence_id=row["id"],
        visit_id=row["visit_id"],
        submission_id=row["submission_id"],
        question_key=row["question_key"],
        caption=row["caption"],
        lat=row["device_lat"],
        lon=row["device_lon"],
        accuracy_m=row["device_accuracy_m"],
        taken_at=row["device_taken_at"],
    )
    visit = await visit_for_upload(db, user, meta)
    path, size, sha = await _download(
        store, row["upload_key"], settings.max_photo_bytes, upload_dir(settings)
    )
    kept = False
    try:
        dup = await ingest.duplicate_in_visit(db, visit.id, bytes.fromhex(sha))
        if dup is not None:
            await _reject(
                db, request, store, row, "duplicate", f"The same photo is already evidence {dup}."
            )
            existing = await db.fetchrow("select * from evidence where id = $1", dup)
            return Response(await present(state, existing, user, duplicate_of=dup))
        try:
            checked = await ingest.checked(path, settings.max_photo_pixels)
        except Problem as exc:
            # Record why and drop the bytes, answering without raising so this commits.
            await _reject(db, request, store, row, exc.kind.removeprefix("photo-"), exc.detail)
            return problem_response(request, exc)  # type: ignore[return-value]
        original_key = await ingest.store_original(
            state, user.organisation_id, sha, path, checked.content_type
        )
        facts = ingest.conclusions(settings, visit, await service_of(db, visit), meta, checked.meta)
        await ingest.update_queued(
            db, evidence_id, ingest.stored_fields(checked, sha, size, original_key, facts)
        )
        await store.call("delete_object", Bucket=store.bucket, Key=row["upload_key"])
        await audit(
            db,
            request,
            "evidence.upload",
            "evidence",
            evidence_id,
            {"visit_id": str(visit.id), "sha256": sha, "location_check": facts["location_check"]},
        )
        row = await db.fetchrow("select * from evidence where id = $1", evidence_id)
        # The worker may take the downloaded copy once this request's transaction commits.
        state.photo_jobs.keep(evidence_id, Path(path))
        kept = True
    finally:
        if not kept:
            await asyncio.to_thread(_remove, path)
    return accepted(await present(state, row, user))


async def _reject(
    db: asyncpg.Connection, request: AuthedRequest, store: Any, row: Any, kind: str, detail: str
) -> None:
    await db.execute(
        """update evidence set status = 'rejected', rejected_kind = $2, rejected_reason = $3,
                  upload_key = null, updated_at = now() where id = $1""",
        row["id"],
        kind,
        detail,
    )
    await store.call("delete_object", Bucket=store.bucket, Key=row["upload_key"])
    await audit(db, request, "evidence.reject", "evidence", row["id"], {"reason": detail})


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def _download(store: Any, key: str, max_bytes: int, directory: Path) -> tuple[str, int, str]:
    """Fetch an uploaded object to a temp file under the size cap; its type is not trusted."""

    def fetch() -> tuple[str, int, str]:
        try:
            obj = store.client.get_object(Bucket=store.bucket, Key=key)
        except store.client.exceptions.NoSuchKey:
            raise Problem(
                409,
                "upload-missing",
                "Upload not found",
                "The photo has not arrived in the store yet; send it to the "
                "presigned URL first, then complete.",
            ) from None
        if obj["ContentLength"] > max_bytes:
            raise Problem(
                413,
                "photo-too-large",
                "Photo too large",
                f"The photo is larger than the {max_bytes / 1e6:.0f} MB limit.",
            )
        fd, temp = new_temp_file(directory)  # the app's folder: a crash's leftovers are swept
        name = str(temp)
        sha, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in obj["Body"].iter_chunks(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise Problem(
                            413,
                            "photo-too-large",
                            "Photo too large",
                            f"The photo is larger than the {max_bytes / 1e6:.0f} MB limit.",
                        )
                    sha.update(chunk)
                    out.write(chunk)
        except BaseException:
            _remove(name)
            raise
        return name, size, sha.hexdigest()

    return await asyncio.to_thread(fetch)


@get(
    "/v1/evidence/{evidence_id:uuid}",
    tags=["evidence"],
    summary="Evidence metadata, location and time checks, short-lived derivative URLs",
    description="The original's URL is given to coordinators only, and each such access is "
    "audited (ask with ?original=true).",
    responses=problem_responses(401, 403, 404),
)
async def get_evidence(
    evidence_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    state: State,
    original: Annotated[bool, QueryParameter(description="include the original's URL")] = False,
) -> Evidence:
    user = request.user
    row = await evidence_row(db, user, evidence_id)
    await may_read_evidence(db, user, row)
    if original:
        if not user.has("coordinator"):
            raise forbidden("Only coordinators can see original photos.")
        await audit(db, request, "evidence.original_access", "evidence", evidence_id)
    return await present(state, row, user, with_original=original and row["status"] == "ready")


@get(
    "/v1/visits/{visit_id:uuid}/evidence",
    tags=["evidence"],
    summary="A visit's evidence (its team, coordinators)",
    responses=problem_responses(401, 403, 404),
)
async def list_visit_evidence(
    visit_id: FromPath[UUID], request: AuthedRequest, db: DB, state: State
) -> list[Evidence]:
    visit = await visit_in_org(db, request.user, visit_id)
    may_see_visit(request.user, visit)
    user = request.user
    rows = await db.fetch(
        f"""select * from evidence e where e.visit_id = $1 and e.deleted_at is null
              and not {safeguarded("$2", "$3")}
            order by e.created_at, e.id""",
        visit_id,
        user.user_id,
        user.has("coordinator", "safeguarding_lead"),
    )
    return [await present(state, r, request.user) for r in rows]


@delete(
    "/v1/evidence/{evidence_id:uuid}",
    guards=[require_roles("coordinator")],
    tags=["evidence"],
    summary="Withdraw evidence (soft: kept for the record, audited)",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_evidence(
    evidence_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    reason: Annotated[str, QueryParameter(min_length=1, max_length=1000)],
) -> None:
    await evidence_row(db, request.user, evidence_id)
    await db.execute(
        """update evidence set deleted_at = now(), deleted_by = $2, delete_reason = $3,
                  updated_at = now() where id = $1""",
        evidence_id,
        request.user.user_id,
        reason,
    )
    await audit(db, request, "evidence.delete", "evidence", evidence_id, {"reason": reason})


route_handlers = [
    upload_evidence,
    start_upload,
    complete_upload,
    get_evidence,
    list_visit_evidence,
    delete_evidence,
]
