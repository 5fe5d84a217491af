"""Evidence as a caller sees it: the one place that decides who learns where a photo was
taken, and short-lived links to its derivatives."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from inspections.evidence.context import EvidenceContext
from inspections.evidence.schemas import Evidence, Location, Urls
from service.auth import Principal
from service.db import from_row

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
    source = row["location_source"]
    if source is None:
        return None
    if user.has("coordinator") or row["uploaded_by"] == user.user_id:
        accuracy = row["exif_h_error_m"] if source == "exif" else row["device_accuracy_m"]
        return from_row(
            Location, row, source=source, check=row["location_check"], accuracy_m=accuracy
        )
    distance = row["distance_m"]
    if distance is not None:
        distance = round(distance / DISTANCE_STEP_M) * float(DISTANCE_STEP_M)
    return Location(
        source=source,
        check=row["location_check"],
        distance_m=distance,
        lat=None,
        lon=None,
        accuracy_m=None,
    )


def present(
    ctx: EvidenceContext,
    row: Any,
    user: Principal,
    *,
    duplicate_of: UUID | None = None,
    with_original: bool = False,
) -> Evidence:
    urls = None
    # A photo past retention (or erased) is ready with no objects left to link to.
    if row["status"] == "ready" and row["display_key"]:
        ttl, store = ctx.settings.evidence_url_ttl_s, ctx.store

        def url(key: str) -> str:
            return store.client.generate_presigned_url(
                "get_object", Params={"Bucket": store.bucket, "Key": key}, ExpiresIn=ttl
            )

        urls = Urls(
            display=url(row["display_key"]),
            thumb=url(row["thumb_key"]),
            original=url(row["original_key"]) if with_original and row["original_key"] else None,
            expires_in=ttl,
        )
    return from_row(
        Evidence,
        row,
        sha256=row["sha256"].hex() if row["sha256"] else None,
        location=location_seen_by(user, row),
        duplicate_of=duplicate_of,
        urls=urls,
        poll=f"/v1/evidence/{row['id']}" if row["status"] == "processing" else None,
    )
