"""What the public reads, as Structs: a published report with its findings, the open-data
page of them, an Open311 service and request, and the organisation's public profile.

Nothing here names a person: the team is counted by perspective and history names roles.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from service.schema import Body

PUBLIC_TAG = "public open data"

STATUS_WORDS = {
    "open": "Awaiting the service's response",
    "responded": "Accepted: action plan agreed",
    "in_progress": "Accepted: in progress",
    "done_by_service": "Done, says the service: awaiting citizen verification",
    "verified": "Done and verified by citizen inspectors",
    "declined": "Declined by the service",
    "noted": "Noted (no recommendation)",
}

# The kinds of published finding (safeguarding is never one): the page's labels and the
# Open311 service list and requests all read this one table: (label, description, keywords).
SEVERITIES = {
    "positive": ("Good practice", "Good practice inspectors saw", "good practice"),
    "minor": ("Minor issue", "A minor issue, with a recommendation", "recommendation"),
    "major": ("Major issue", "A major issue, with a recommendation", "recommendation"),
}


class PublicAction(Body, kw_only=True):
    action: str
    owner: str
    target_date: dt.date
    done: bool


class PublicUpdate(Body, kw_only=True):
    kind: str
    status: str
    by: str  # a role, never a person
    note: str
    at: dt.datetime  # when it was recorded
    on: dt.date  # the date it stands for: publication is dated published_on


class PublicPhoto(Body, kw_only=True):
    display_url: str
    thumb_url: str


class PublicFinding(Body, kw_only=True):
    id: UUID
    title: str
    description: str
    domain: str | None
    severity: str
    recommendation: str | None
    status: str
    status_words: str
    due_on: dt.date | None
    overdue: bool
    responded_on: dt.date | None
    responded_on_time: bool | None
    decline_reason: str | None
    actions: list[PublicAction]
    photos: list[PublicPhoto]
    history: list[PublicUpdate]


class PublicReport(Body, kw_only=True):
    id: UUID
    organisation: str
    organisation_id: UUID
    service_id: UUID
    service_name: str
    service_kind: str
    address: str
    visit_date: dt.date
    published_on: dt.date | None
    team: dict[str, int]  # how many citizens and professionals; never who
    summary: str
    recommendations: int
    answered_on_time: int
    overdue: int
    findings: list[PublicFinding]
    url: str


class PublicReportPage(Body, kw_only=True):
    items: list[PublicReport]
    next_cursor: str | None = None


class Open311Service(Body):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class Open311Request(Body):
    """GeoReport v2 service request: a finding as civic tools read it."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    service_notice: str
    requested_datetime: dt.datetime
    updated_datetime: dt.datetime
    expected_datetime: dt.datetime | None
    address: str
    lat: float
    long: float
    media_url: str | None


class PublicProfile(Body, kw_only=True):
    """What an organisation tells the public on its public pages."""

    # How the public reaches the organisation: an email address, a web address or words
    # ("Freephone 0800 123 4567"). The organisation's, not a person's: it is public.
    public_contact: Annotated[str, Meta(min_length=3, max_length=300)] | None = None


class PublicProfilePatch(Body, kw_only=True):
    public_contact: Annotated[str, Meta(min_length=3, max_length=300)] | None | UnsetType = UNSET
