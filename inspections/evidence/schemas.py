"""Bodies of the evidence slice."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from service.schema import Body

Lat = Annotated[float, Meta(ge=-90, le=90)]
Lon = Annotated[float, Meta(ge=-180, le=180)]
Accuracy = Annotated[float, Meta(ge=0, le=100_000)]
Caption = Annotated[str, Meta(max_length=1000)]
QuestionKey = Annotated[str, Meta(min_length=1, max_length=64)]


class EvidenceMeta(Body, kw_only=True):
    """What the phone says about a photo; the location is the phone's own fix, if any."""

    evidence_id: UUID
    visit_id: UUID
    submission_id: UUID | None = None
    question_key: QuestionKey | None = None
    caption: Caption | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    accuracy_m: Accuracy | None = None
    taken_at: dt.datetime | None = None


class UploadRequest(EvidenceMeta, kw_only=True):
    size_bytes: Annotated[int, Meta(ge=1)] | None = None


class PresignedPost(Body, kw_only=True):
    """Send the file as multipart/form-data to ``url`` with ``fields`` then ``file`` last."""

    url: str
    fields: dict[str, str]
    max_bytes: int
    expires_at: dt.datetime


class Upload(Body, kw_only=True):
    evidence_id: UUID
    status: str
    upload: PresignedPost | None


class Location(Body, kw_only=True):
    """Where the photo was taken. lat, lon and accuracy_m only for coordinators and the
    inspector who took it; everyone else gets null there and distance_m rounded to the
    nearest 100 m (present.location_seen_by)."""

    source: Literal["exif", "device", "none"]
    check: Literal["on_site", "off_site", "unverified"]
    distance_m: float | None
    lat: float | None
    lon: float | None
    accuracy_m: float | None


class Urls(Body, kw_only=True):
    display: str | None
    thumb: str | None
    original: str | None = None  # coordinators only; each access is audited
    expires_in: int


class Evidence(Body, kw_only=True):
    id: UUID
    visit_id: UUID
    submission_id: UUID | None
    question_key: str | None
    caption: str | None
    uploaded_by: UUID
    # processing: stored and queued (GET ``poll`` until ready); rejected: rejected_reason
    # says why, for the phone to show (send the photo again).
    status: Literal["uploading", "processing", "ready", "rejected"]
    rejected_reason: str | None
    sha256: str | None
    size_bytes: int | None
    content_type: str | None
    width: int | None
    height: int | None
    taken_at: dt.datetime | None
    time_check: Literal["in_window", "outside_window", "unknown"] | None
    location: Location | None
    duplicate_of: UUID | None = None
    urls: Urls | None
    poll: str | None = None  # while processing: where to GET this evidence again
    created_at: dt.datetime
    # Shows a person: never public unless a coordinator recorded why (public_reason).
    shows_person: bool = False
    public_reason: str | None = None


class PersonFlag(Body, kw_only=True):
    """Whether the photo shows a person; public_reason (coordinators only) is why it may
    still be published, e.g. "the resident consented in writing on 2 March"."""

    shows_person: bool
    public_reason: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None


class DeleteRequest(Body, kw_only=True):
    reason: Annotated[str, Meta(min_length=1, max_length=1000)]


# The 'metadata' part of the upload's example in the OpenAPI document (sent with a real
# photo by tests/test_docs.py). The phone makes evidence_id; lat, lon and accuracy_m are its
# own location fix, used when the photo carries no GPS position.
UPLOAD_METADATA_EXAMPLE = {
    "evidence_id": "0b9d5c1e-5a43-4b8e-9a57-3f0f4c1f2a10",
    "visit_id": "7f3c2a9e-1d4b-4f6a-8c2e-5b9a0d1e2f34",
    "question_key": "environment_clean",
    "caption": "Corridor outside room 12",
    "lat": 51.50741,
    "lon": -0.12782,
    "accuracy_m": 12,
    "taken_at": "2026-03-02T10:20:00+00:00",
}
