"""Deleting stored photos: only keys no evidence row still refers to (originals are
content-addressed, so one object can be the original of two rows), in batches, off the
event loop (ObjectStore.call runs boto3 in a thread)."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from service.storage import ObjectStore

UNREFERENCED_SQL = """
    select k from unnest($1::text[]) k
     where not exists (select 1 from evidence e
                        where e.original_key = k or e.display_key = k or e.thumb_key = k)"""

# Columns that locate or identify a photo's camera: they go with the original.
STRIP_ORIGINAL = """original_key = null, exif_lat = null, exif_lon = null,
    exif_altitude_m = null, exif_h_error_m = null, device_lat = null, device_lon = null,
    device_accuracy_m = null, lat = null, lon = null, camera_make = null,
    camera_model = null, updated_at = now()"""


async def unreferenced(conn: asyncpg.Connection, keys: Iterable[str | None]) -> list[str]:
    """Of ``keys``, those no evidence row refers to any more (call after the rows commit)."""
    wanted = sorted({k for k in keys if k})
    if not wanted:
        return []
    return [r["k"] for r in await conn.fetch(UNREFERENCED_SQL, wanted)]


async def delete_keys(store: ObjectStore, keys: list[str]) -> int:
    """Delete the objects; a failure raises (the orphan sweep removes what is left, since
    no row refers to these keys any more)."""
    for i in range(0, len(keys), 1000):
        batch = keys[i : i + 1000]
        out = await store.call(
            "delete_objects",
            Bucket=store.bucket,
            Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
        )
        if out.get("Errors"):
            raise RuntimeError(f"store refused to delete {len(out['Errors'])} objects")
    return len(keys)
