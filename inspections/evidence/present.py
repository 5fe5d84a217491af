"""Evidence as a caller sees it: the one place that decides who learns where a photo was
taken, and short-lived links to its derivatives."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from inspections.evidence.context import EvidenceContext
from inspections.evidence.schemas import Evidence, Location, Urls
from service.auth import Principal

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


def present(
    ctx: EvidenceContext,
    row: Any,
    user: Principal,
    *,
    duplicate_of: UUID | None = None,
    with_original: bool = False,
) -> Evidence:
    urls = None
    if row["status"] == "ready":
        ttl, store = ctx.settings.evidence_url_ttl_s, ctx.store

        def url(key: str) -> str:
            return store.client.generate_presigned_url(
                "get_object", Params={"Bucket": store.bucket, "Key": key}, ExpiresIn=ttl
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
