"""What inspectors do with photo evidence, callable without HTTP: a pool (or connection),
the acting person and a body in, an Evidence (or Upload) out or a DomainError raised, with
every permission check. A photo's bytes arrive as an upload.Photo in a local file."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import asyncpg
import msgspec

from inspections.audit.log import record
from inspections.evidence import keys
from inspections.evidence import queries as q
from inspections.evidence.context import EvidenceContext
from inspections.evidence.ingest import as_it_is, ingest, meta_of, new_row
from inspections.evidence.present import present
from inspections.evidence.schemas import (
    Evidence,
    EvidenceMeta,
    PersonFlag,
    PresignedPost,
    Upload,
    UploadRequest,
)
from inspections.evidence.upload import Photo, fetch_upload, owned, upload_dir
from media.detect import too_large
from service.auth import Principal
from service.errors import DomainError, FieldError, forbidden, unprocessable
from service.settings import Settings


def queue_full_problem(waiting: int, workers: int) -> DomainError:
    # About one photo a second per image worker: come back when this backlog has gone.
    retry_after = max(5, min(300, waiting // max(1, workers)))
    return DomainError(
        503,
        "photo-queue-full",
        "Too many photos waiting",
        f"{waiting} photos are waiting to be processed; send this one again in "
        f"{retry_after} seconds (the phone keeps it until then).",
        headers={"Retry-After": str(retry_after)},
    )


async def refuse_when_queue_full(db: asyncpg.Connection, settings: Settings) -> None:
    """503 with Retry-After when too many photos wait: the phone keeps the photo and sends
    it again then, instead of waiting without end."""
    waiting = await q.queue_full(db, settings.photo_queue_max)
    if waiting is not None:
        raise queue_full_problem(waiting, settings.image_workers)


async def upload_evidence(
    pool: asyncpg.Pool,
    ctx: EvidenceContext,
    user: Principal,
    meta: EvidenceMeta,
    photo: Photo,
    *,
    request_id: str | None = None,
) -> Evidence:
    """Add a received photo to a visit (idempotent on ``meta.evidence_id``: the same id
    again is the evidence it made; the same bytes in the visit are that evidence, with
    ``duplicate_of``). Takes ``photo``: its file is removed unless the queue keeps it."""
    async with owned(photo):
        async with q.connection(pool) as db:
            existing = await q.evidence_by_id(db, meta.evidence_id)
            if existing is not None:
                q.check_mine(existing, user)
                return present(ctx, existing, user)
            visit, site = await q.upload_target(db, user, meta, bytes.fromhex(photo.sha256))
        return await ingest(pool, ctx, user, meta, visit, photo, site=site, request_id=request_id)


async def complete_upload(
    pool: asyncpg.Pool,
    ctx: EvidenceContext,
    user: Principal,
    evidence_id: UUID,
    *,
    request_id: str | None = None,
) -> Evidence:
    """The bytes of a presigned upload are in the store: check, store and queue them like
    an uploaded photo. Completing again is the evidence as it is now. The door is checked
    again: an upload started while it was open but completed after it closed is refused."""
    settings = ctx.settings
    async with q.connection(pool) as db:
        row = await q.evidence_in_org(db, user, evidence_id)
        if row["uploaded_by"] != user.user_id:
            raise forbidden("Only the inspector who started this upload can complete it.")
        if row["status"] != "uploading":
            return as_it_is(ctx, row, user)
        await refuse_when_queue_full(db, settings)
        meta = meta_of(row)
        visit = await q.visit_for_upload(db, user, meta)
    photo = await fetch_upload(
        ctx.store, row["upload_key"], settings.max_photo_bytes, upload_dir(settings)
    )
    async with owned(photo):
        return await ingest(pool, ctx, user, meta, visit, photo, started=row, request_id=request_id)


class Started(msgspec.Struct, frozen=True):
    upload: Upload
    created: bool  # 201 rather than 200


async def start_upload(
    db: asyncpg.Connection,
    ctx: EvidenceContext,
    user: Principal,
    data: UploadRequest,
    *,
    request_id: str | None = None,
) -> Started:
    """Where the phone sends a large photo's bytes itself: a presigned POST to the store
    (idempotent on ``data.evidence_id``; the post is signed again while it waits)."""
    settings, store = ctx.settings, ctx.store
    if data.size_bytes is not None and data.size_bytes > settings.max_photo_bytes:
        raise too_large(settings.max_photo_bytes)
    row = await q.evidence_by_id(db, data.evidence_id)
    created = row is None
    if row is None:
        await q.visit_for_upload(db, user, data)
        base = new_row(data, user, "uploading")
        base["upload_key"] = keys.incoming_key(user.organisation_id, data.evidence_id)
        base["upload_expires_at"] = dt.datetime.now(dt.UTC) + dt.timedelta(
            seconds=settings.upload_url_ttl_s
        )
        await q.insert_uploading(db, base)
        row = await q.evidence_by_id(db, data.evidence_id)
        await record(
            db,
            user.organisation_id,
            user.user_id,
            "evidence.upload_start",
            "evidence",
            data.evidence_id,
            {"visit_id": str(data.visit_id)},
            request_id,
        )
    else:
        q.check_mine(row, user)
    upload = None
    if row["status"] == "uploading":
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.upload_url_ttl_s)
        post = store.client.generate_presigned_post(
            Bucket=store.bucket,
            Key=row["upload_key"],
            Fields={},
            Conditions=[["content-length-range", 1, settings.max_photo_bytes]],
            ExpiresIn=settings.upload_url_ttl_s,
        )
        upload = PresignedPost(
            url=post["url"],
            fields=post["fields"],
            max_bytes=settings.max_photo_bytes,
            expires_at=expires,
        )
    return Started(Upload(evidence_id=row["id"], status=row["status"], upload=upload), created)


async def mark_person(
    db: asyncpg.Connection,
    user: Principal,
    evidence_id: UUID,
    data: PersonFlag,
    *,
    request_id: str | None = None,
) -> asyncpg.Record:
    """Mark whether a photo shows a person (the uploader or a coordinator); only a
    coordinator records why a photo of a person may still be public. Audited; the API's
    PUT .../person and the visit page's form both mark photos this way."""
    row = await q.evidence_in_org(db, user, evidence_id)
    coordinator = user.has("coordinator")
    if not coordinator and row["uploaded_by"] != user.user_id:
        raise forbidden("Only the person who took the photo or a coordinator can mark it.")
    if data.public_reason is not None and not coordinator:
        raise forbidden("Only a coordinator can record why a photo of a person may be public.")
    if data.public_reason is not None and not data.shows_person:
        raise unprocessable(
            "A reason is only needed for a photo that shows a person.",
            [FieldError(field="$.public_reason", reason="Only with shows_person true.")],
        )
    # Each marking is a new decision: a reason is kept only when given with it.
    row = await db.fetchrow(
        """update evidence set shows_person = $2,
                  public_reason = case when $2 then $3 else null end
            where id = $1 returning *""",
        evidence_id,
        data.shows_person,
        data.public_reason,
    )
    assert row is not None  # evidence_in_org found it; an update ... returning gives it back
    await record(
        db,
        user.organisation_id,
        user.user_id,
        "evidence.person",
        "evidence",
        evidence_id,
        {"shows_person": data.shows_person, "public_reason": data.public_reason},
        request_id,
    )
    return row
