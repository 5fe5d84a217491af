"""From a received file to stored evidence: check, derive, store objects, then the row.

Order matters for consistency: objects are written first and the row last (in the
request's transaction), so a row is only ``ready`` when all its objects exist. A crash in
between leaves objects without a row, which the sweeper removes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from litestar.datastructures import State

from inspections.visits.schemas import Visit
from media import keys
from media.detect import HEAD_BYTES, MIME_TYPES, ImageRejected, detect_format
from media.geo import location_check, time_check
from media.pipeline import Processed
from media.schemas import EvidenceMeta
from service.errors import Problem
from service.settings import Settings

EVIDENCE_COLS = "*"


def rejected_problem(exc: ImageRejected) -> Problem:
    titles = {
        "unsupported-type": "Not a photo we accept",
        "corrupt-image": "Damaged photo",
        "too-many-pixels": "Photo has too many pixels",
        "too-large": "Photo too large",
    }
    return Problem(exc.status, f"photo-{exc.kind}", titles[exc.kind], exc.detail)


async def process(state: State, path: str) -> Processed:
    try:
        return await state.images.process(path, state.settings.max_photo_pixels)
    except ImageRejected as exc:
        raise rejected_problem(exc) from None


def conclusions(
    settings: Settings, visit: Visit, service: Any, meta: EvidenceMeta, p: Processed
) -> dict[str, Any]:
    """Where and when the photo was taken, and whether that fits the visit (pure)."""
    m = p.meta
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


class StoredOriginal(msgspec.Struct, frozen=True):
    key: str
    created: bool  # False when the same bytes were already kept for this organisation


async def store_original(
    state: State, org: UUID, sha256: str, path: str | os.PathLike[str]
) -> StoredOriginal:
    """The original, byte for byte, under its content address (written once)."""
    store = state.store
    key = keys.original_key(org, sha256)

    def put() -> bool:
        try:
            store.client.head_object(Bucket=store.bucket, Key=key)
            return False
        except store.client.exceptions.ClientError:
            pass
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            f.seek(0)
            fmt = detect_format(head)
            store.client.put_object(
                Bucket=store.bucket,
                Key=key,
                Body=f,
                ContentType=MIME_TYPES[fmt] if fmt else "application/octet-stream",
                Metadata={"sha256": sha256},
            )
        return True

    return StoredOriginal(key, await asyncio.to_thread(put))


async def undo_original(state: State, original: StoredOriginal) -> None:
    if original.created:
        store = state.store
        await store.call("delete_object", Bucket=store.bucket, Key=original.key)


async def store_derivatives(
    state: State, org: UUID, evidence_id: UUID, p: Processed
) -> dict[str, str]:
    store = state.store
    display = keys.derivative_key(org, evidence_id, "display")
    thumb = keys.derivative_key(org, evidence_id, "thumb")
    await asyncio.gather(
        store.call(
            "put_object",
            Bucket=store.bucket,
            Key=display,
            Body=p.derivatives.display,
            ContentType="image/jpeg",
        ),
        store.call(
            "put_object",
            Bucket=store.bucket,
            Key=thumb,
            Body=p.derivatives.thumb,
            ContentType="image/jpeg",
        ),
    )
    return {"display_key": display, "thumb_key": thumb}


async def store_objects(
    state: State, org: UUID, evidence_id: UUID, sha256: str, path: str, p: Processed
) -> dict[str, str]:
    """Original and both derivatives; returns their keys."""
    original, derived = await asyncio.gather(
        store_original(state, org, sha256, path), store_derivatives(state, org, evidence_id, p)
    )
    return {"original_key": original.key, **derived}


async def duplicate_in_visit(db: asyncpg.Connection, visit_id: UUID, sha: bytes) -> UUID | None:
    return await db.fetchval(
        """select id from evidence where visit_id = $1 and sha256 = $2
              and status <> 'rejected' and deleted_at is null""",
        visit_id,
        sha,
    )


def ready_fields(
    p: Processed, sha256: str, size: int, object_keys: dict[str, str], facts: dict[str, Any]
) -> dict[str, Any]:
    w, h = p.derivatives.source_size
    return {
        "status": "ready",
        "sha256": bytes.fromhex(sha256),
        "size_bytes": size,
        "content_type": p.content_type,
        "width": w,
        "height": h,
        **object_keys,
        **facts,
    }


async def insert_ready(
    db: asyncpg.Connection, base: dict[str, Any], fields: dict[str, Any]
) -> UUID | None:
    """Insert the finished row; None when a racing twin (same id or same bytes) won."""
    row = {**base, **fields}
    cols = list(row)
    return await db.fetchval(
        f"""insert into evidence ({", ".join(cols)})
            values ({", ".join(f"${i}" for i in range(1, len(cols) + 1))})
            on conflict do nothing returning id""",
        *row.values(),
    )


async def update_ready(db: asyncpg.Connection, evidence_id: UUID, fields: dict[str, Any]) -> None:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(fields, start=2))
    await db.execute(
        f"update evidence set {sets}, upload_key = null, updated_at = now() where id = $1",
        evidence_id,
        *fields.values(),
    )
