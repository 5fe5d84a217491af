"""From a photo in a local file to stored evidence: check, store the original, queue.

``ingest`` serves both upload paths (multipart POST /v1/evidence, and a presigned upload
then POST /v1/evidence/{id}/complete). An upload is acknowledged once its original is
stored: the cheap checks (media.pipeline.precheck: format by content, pixel count from the
header, the container's / markers' structure, EXIF) run first, then the original is
written, then the row (``processing``) and its job (jobs.py) in one transaction. The full
decode and the derivatives follow from the queue. Order matters for consistency: objects
are written before the row that names them, so a crash in between leaves objects without a
row, which the sweeper removes, and a row is only ``ready`` when all its objects exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from inspections.audit.log import Entry, record
from inspections.evidence import keys
from inspections.evidence import queries as q
from inspections.evidence.context import EvidenceContext
from inspections.evidence.present import present
from inspections.evidence.schemas import Evidence, EvidenceMeta
from inspections.evidence.upload import Photo
from inspections.visits.schemas import Visit
from media.detect import ImageRejected
from media.exif import PhotoMeta
from media.geo import location_check, time_check
from media.pipeline import Checked, Processed, precheck
from service.auth import Principal
from service.db import from_row
from service.errors import DomainError, conflict
from service.settings import Settings
from service.storage import ObjectStore


async def ingest(
    pool: asyncpg.Pool,
    ctx: EvidenceContext,
    user: Principal,
    meta: EvidenceMeta,
    visit: Visit,
    photo: Photo,
    *,
    started: Any = None,
    site: q.Site | None = None,
    request_id: str | None = None,
) -> Evidence:
    """Check, store and queue ``photo`` as evidence ``meta.evidence_id`` of ``visit`` (its
    door and the caller's place on its team already checked). ``site`` is the
    visit's ``q.Site`` when the caller has it already (``q.upload_target``: one query fewer).
    ``started`` is the row of a presigned upload being completed, else a new row is made.
    Raises ImageRejected (the error handler answers it) after recording a presigned upload
    as rejected.

    No connection is held while the photo is checked or stored. ``photo`` stays the
    caller's (see upload.owned) unless handed to this process's queue worker.
    """
    settings = ctx.settings
    sha = bytes.fromhex(photo.sha256)
    if site is None:
        async with q.connection(pool) as db:
            site = await q.site_for_ingest(db, visit, sha)
    if site.duplicate is not None:
        async with q.connection(pool) as db:
            if started is not None:
                detail = f"The same photo is already evidence {site.duplicate}."
                await _refuse(db, ctx, user, started, "duplicate", detail, request_id)
            row = await q.evidence_by_id(db, site.duplicate)
        return present(ctx, row, user, duplicate_of=site.duplicate)
    service = site.service
    try:
        checked, original_key = await asyncio.to_thread(
            check_and_store, ctx.store, user.organisation_id, photo, settings.max_photo_pixels
        )
    except ImageRejected as exc:
        if started is not None:  # the phone reads why when it polls
            async with q.connection(pool) as db:
                await _refuse(db, ctx, user, started, exc.kind, exc.detail, request_id)
        raise
    facts = conclusions(settings, visit, service, meta, checked.meta)
    fields = stored_fields(checked, photo, original_key, facts)
    entry = Entry(
        user.organisation_id,
        user.user_id,
        "evidence.upload",
        "evidence",
        {
            "visit_id": str(visit.id),
            "sha256": photo.sha256,
            "location_check": facts["location_check"],
        },
        request_id,
    )
    async with q.connection(pool) as db:  # one statement each: no transaction of its own
        if started is None:
            row = await q.insert_queued(db, {**new_row(meta, user, "processing"), **fields}, entry)
        else:
            row = await q.update_queued(db, meta.evidence_id, fields, entry)
        if row is None and started is not None:  # a racing complete got there first
            return as_it_is(ctx, await q.evidence_by_id(db, meta.evidence_id), user)
        if row is None:  # a racing twin of this upload (same id or same bytes) got there first
            return await _twin(db, ctx, user, meta, visit, sha)
    if started is not None:
        # Committed: a failure here leaves the object to the sweeper, not the phone.
        with contextlib.suppress(Exception):
            await ctx.store.call(
                "delete_object", Bucket=ctx.store.bucket, Key=started["upload_key"]
            )
    photo.kept = ctx.hand_over(meta.evidence_id, photo.path)
    return present(ctx, row, user)


def new_row(meta: EvidenceMeta, user: Principal, status: str) -> dict[str, Any]:
    """The columns of a new evidence row that the phone's metadata and the caller give."""
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


def meta_of(row: Any) -> EvidenceMeta:
    """What the phone said when it started a presigned upload."""
    device = {f: row[f"device_{f}"] for f in ("lat", "lon", "accuracy_m", "taken_at")}
    return from_row(EvidenceMeta, row, evidence_id=row["id"], **device)


def as_it_is(ctx: EvidenceContext, row: Any, user: Principal) -> Evidence:
    """An upload already past its bytes, asked again: as it is now, or why it was refused."""
    if row["status"] == "rejected":
        raise DomainError(
            422, f"photo-{row['rejected_kind']}", "Photo refused", row["rejected_reason"]
        )
    return present(ctx, row, user)


async def _twin(
    db: asyncpg.Connection,
    ctx: EvidenceContext,
    user: Principal,
    meta: EvidenceMeta,
    visit: Visit,
    sha: bytes,
) -> Evidence:
    row = await q.evidence_by_id(db, meta.evidence_id)
    if row is not None:
        q.check_mine(row, user)
        return present(ctx, row, user)
    dup = (await q.site_for_ingest(db, visit, sha)).duplicate
    if dup is None:
        raise conflict("The same upload was being stored at the same moment; retry.")
    return present(ctx, await q.evidence_by_id(db, dup), user, duplicate_of=dup)


async def _refuse(
    db: asyncpg.Connection,
    ctx: EvidenceContext,
    user: Principal,
    started: Any,
    kind: str,
    detail: str,
    request_id: str | None,
) -> None:
    """A presigned upload's bytes refused: the row says why, the bytes go."""
    async with db.transaction():
        if not await q.reject_upload(db, started["id"], kind, detail):
            return  # a racing complete decided first
        await record(
            db,
            user.organisation_id,
            user.user_id,
            "evidence.reject",
            "evidence",
            started["id"],
            {"reason": detail},
            request_id,
        )
    store = ctx.store
    with contextlib.suppress(Exception):  # else the sweeper removes it later
        await store.call("delete_object", Bucket=store.bucket, Key=started["upload_key"])


def conclusions(
    settings: Settings, visit: Visit, service: Any, meta: EvidenceMeta, m: PhotoMeta
) -> dict[str, Any]:
    """Where and when the photo was taken, and whether that fits the visit (pure)."""
    if m.lat is not None and m.lon is not None:
        source, lat, lon, accuracy = "exif", m.lat, m.lon, m.h_error_m
    elif meta.lat is not None and meta.lon is not None:
        source, lat, lon, accuracy = "device", meta.lat, meta.lon, meta.accuracy_m
    else:
        source, lat, lon, accuracy = "none", None, None, None
    check, distance = location_check(
        lat,
        lon,
        accuracy,
        service["lat"],
        service["lon"],
        service["geofence_m"],
        max_accuracy_m=settings.max_location_accuracy_m,
    )
    tz = ZoneInfo(settings.site_timezone)
    taken = m.taken_at or meta.taken_at
    when = time_check(
        taken,
        visit.starts_at,
        visit.ends_at,
        dt.timedelta(minutes=settings.photo_time_tolerance_min),
        site_tz=tz,
    )
    if taken is not None and taken.tzinfo is None:
        taken = taken.replace(tzinfo=tz)
    exif_taken = (
        m.taken_at.replace(tzinfo=tz) if m.taken_at and not m.taken_at.tzinfo else (m.taken_at)
    )
    return {
        "lat": lat,
        "lon": lon,
        "location_source": source,
        "location_check": check,
        "distance_m": distance,
        "taken_at": taken,
        "time_check": when,
        "exif_taken_at": exif_taken,
        "exif_lat": m.lat,
        "exif_lon": m.lon,
        "exif_altitude_m": m.altitude_m,
        "exif_h_error_m": m.h_error_m,
        "camera_make": m.make,
        "camera_model": m.model,
    }


def check_and_store(
    store: ObjectStore, org: UUID, photo: Photo, max_pixels: int
) -> tuple[Checked, str]:
    """The checks before the acknowledgement (``precheck``: raises ImageRejected), then the
    original, byte for byte, under its content address. Blocking (run it in a thread): the
    file is read once for both, and an upload's answer waits on one thread hop, not two.

    No HEAD first: the same bytes under the same key are the same object, so writing them
    again is harmless, and one request instead of two is what an upload's answer waits for.
    Returns what the checks learnt and the original's key.
    """
    data = photo.path.read_bytes()
    checked = precheck(data, max_pixels)
    key = keys.original_key(org, photo.sha256)
    digest = bytes.fromhex(photo.sha256)
    store.put(key, data, checked.content_type, sha256=digest, metadata={"sha256": photo.sha256})
    return checked, key


async def store_derivatives(
    store: ObjectStore, org: UUID, evidence_id: UUID, p: Processed
) -> dict[str, str]:
    display = keys.derivative_key(org, evidence_id, "display")
    thumb = keys.derivative_key(org, evidence_id, "thumb")
    await asyncio.gather(
        *(
            asyncio.to_thread(store.put, key, body, "image/jpeg")
            for key, body in ((display, p.derivatives.display), (thumb, p.derivatives.thumb))
        ),
    )
    return {"display_key": display, "thumb_key": thumb}


def stored_fields(
    c: Checked, photo: Photo, original_key: str, facts: dict[str, Any]
) -> dict[str, Any]:
    """The row of an acknowledged photo: stored, checked cheaply, queued for processing."""
    return {
        "status": "processing",
        "sha256": bytes.fromhex(photo.sha256),
        "size_bytes": photo.size,
        "content_type": c.content_type,
        "width": c.width,
        "height": c.height,
        "original_key": original_key,
        **facts,
    }
