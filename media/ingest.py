"""From a received file to stored evidence: check, store the original, queue, derive.

An upload is acknowledged once its original is stored: the cheap checks (``precheck``:
format by content, pixel count from the header, the container's / markers' structure,
EXIF) run first, then the original is written, then the row (``processing``) and its job
(media/jobs.py) in one transaction. The full decode and the derivatives follow from the
queue. Order matters for consistency: objects are written before the row that names them,
so a crash in between leaves objects without a row, which the sweeper removes, and a row
is only ``ready`` when all its objects exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from litestar.datastructures import State

from inspections.visits.schemas import Visit
from media import keys
from media.detect import (
    ACCEPTED_TYPES_TEXT,
    HEAD_BYTES,
    MIME_TYPES,
    ImageRejected,
    detect_format,
    heif_problem,
    open_image,
)
from media.exif import PhotoMeta, read_metadata
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


class Checked(msgspec.Struct, frozen=True, kw_only=True):
    """What the checks before the acknowledgement learnt, without decoding a pixel."""

    content_type: str
    meta: PhotoMeta
    width: int  # upright
    height: int


# JPEG frame headers (SOFn): every C0..CF but DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_problem(data: bytes | memoryview) -> str | None:
    """Why these JPEG bytes cannot hold a whole picture, or None (no pixel is decoded).

    Walks the marker segments up to the first scan: each must fit in the file, a frame
    header must come before the scan, and an end-of-image marker must follow the scan's
    data (a file cut off in transit has none). What this cannot see (damaged entropy-coded
    data, an EOI glued onto a cut file) the full decode finds later (``check_intact``).
    """
    data = bytes(data)
    n, pos, frame = len(data), 2, False
    if data[:2] != b"\xff\xd8":
        return "no start-of-image marker"
    while True:
        if pos >= n or data[pos] != 0xFF:
            return f"no marker at byte {pos}"
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return "the headers are cut off"
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return "the image ends before its scan data"
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # no length field
        if pos + 2 > n:
            return "a segment header is cut off"
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > n:
            return f"the segment at byte {pos - 2} runs past the end of the file"
        frame = frame or marker in _SOF
        if marker == 0xDA:
            if not frame:
                return "a scan before any frame header"
            if data.rfind(b"\xff\xd9", pos + length) < 0:
                return "no end-of-image marker after the scan data: the file is cut off"
            return None
        pos += length


def precheck(path: str | os.PathLike[str], max_pixels: int) -> Checked:
    """The checks worth making before acknowledging an upload (CPU-light; run in a thread).

    Raises ImageRejected: not JPEG/PNG/WebP/HEIC (415), too many pixels by the header
    (413), or a structure that cannot hold the whole picture (422): a JPEG's markers,
    a HEIF container's boxes, item extents and NAL units, a PNG's chunks and CRCs.
    """
    data = Path(path).read_bytes()
    fmt = detect_format(data[:HEAD_BYTES])
    if fmt is None:
        raise ImageRejected(
            "unsupported-type",
            f"This file is not a photo we can accept; send a {ACCEPTED_TYPES_TEXT} image.",
        )
    if fmt == "jpeg":
        problem = jpeg_problem(data)
    elif fmt == "heif":
        problem = heif_problem(data)
    else:
        problem = None
    if problem is not None:
        raise ImageRejected(
            "corrupt-image",
            "The photo file is damaged or incomplete (the upload may have been cut off). "
            "Please send it again.",
        )
    with open_image(path, max_pixels, verify=fmt == "png") as img:  # PNG: chunk CRCs only
        meta = read_metadata(img)
        w, h = img.size
    if meta.orientation in (5, 6, 7, 8):
        w, h = h, w
    return Checked(content_type=MIME_TYPES[fmt], meta=meta, width=w, height=h)


async def checked(path: str | os.PathLike[str], max_pixels: int) -> Checked:
    try:
        return await asyncio.to_thread(precheck, path, max_pixels)
    except ImageRejected as exc:
        raise rejected_problem(exc) from None


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


async def store_original(
    state: State, org: UUID, sha256: str, path: str | os.PathLike[str], content_type: str
) -> str:
    """The original, byte for byte, under its content address; returns its key.

    No HEAD first: the same bytes under the same key are the same object, so writing them
    again is harmless, and one request instead of two is what an upload's answer waits for.
    """
    store = state.store
    key = keys.original_key(org, sha256)

    def put() -> None:
        with open(path, "rb") as f:
            store.client.put_object(
                Bucket=store.bucket,
                Key=key,
                Body=f,
                ContentType=content_type,
                Metadata={"sha256": sha256},
            )

    await asyncio.to_thread(put)
    return key


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


async def duplicate_in_visit(db: asyncpg.Connection, visit_id: UUID, sha: bytes) -> UUID | None:
    return await db.fetchval(
        """select id from evidence where visit_id = $1 and sha256 = $2
              and status <> 'rejected' and deleted_at is null""",
        visit_id,
        sha,
    )


def stored_fields(
    c: Checked, sha256: str, size: int, original_key: str, facts: dict[str, Any]
) -> dict[str, Any]:
    """The row of an acknowledged photo: stored, checked cheaply, queued for processing."""
    return {
        "status": "processing",
        "sha256": bytes.fromhex(sha256),
        "size_bytes": size,
        "content_type": c.content_type,
        "width": c.width,
        "height": c.height,
        "original_key": original_key,
        **facts,
    }


async def insert_queued(
    db: asyncpg.Connection, base: dict[str, Any], fields: dict[str, Any]
) -> UUID | None:
    """Insert the row and its job (call in a transaction); None when a racing twin (same
    id or same bytes) won."""
    row = {**base, **fields}
    cols = list(row)
    inserted = await db.fetchval(
        f"""insert into evidence ({", ".join(cols)})
            values ({", ".join(f"${i}" for i in range(1, len(cols) + 1))})
            on conflict do nothing returning id""",
        *row.values(),
    )
    if inserted is not None:
        await db.execute("insert into evidence_jobs (evidence_id) values ($1)", inserted)
    return inserted


async def update_queued(db: asyncpg.Connection, evidence_id: UUID, fields: dict[str, Any]) -> None:
    """A presigned upload, completed: now stored and queued (call in a transaction)."""
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(fields, start=2))
    await db.execute(
        f"update evidence set {sets}, upload_key = null, updated_at = now() where id = $1",
        evidence_id,
        *fields.values(),
    )
    await db.execute(
        "insert into evidence_jobs (evidence_id) values ($1) on conflict do nothing", evidence_id
    )


async def queue_full(db: asyncpg.Connection, limit: int) -> int | None:
    """How many photos wait when there are at least ``limit``, else None (bounded count)."""
    n = await db.fetchval(
        "select count(*) from (select 1 from evidence_jobs limit $1) j", max(limit, 1)
    )
    return n if n >= limit else None
