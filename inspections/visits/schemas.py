"""Bodies of the visits slice, including the phone's offline bundle."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from inspections.checklists.schemas import ChecklistVersion
from service.schema import Body, Page

Perspective = Literal["citizen", "professional"]
Status = Literal["planned", "in_progress", "submitted", "cancelled"]


class TeamMemberIn(Body, kw_only=True):
    user_id: UUID
    perspective: Perspective
    lead: bool = False


Team = Annotated[list[TeamMemberIn], Meta(min_length=1, max_length=30)]


class VisitCreate(Body, kw_only=True):
    service_id: UUID
    checklist_id: UUID
    checklist_version: Annotated[int, Meta(ge=1)] | None = None  # default: the latest
    starts_at: dt.datetime
    ends_at: dt.datetime
    announced: bool = True
    team: Team


class VisitPatch(Body, kw_only=True):
    starts_at: dt.datetime | UnsetType = UNSET
    ends_at: dt.datetime | UnsetType = UNSET
    announced: bool | UnsetType = UNSET
    team: Team | UnsetType = UNSET


class CancelRequest(Body, kw_only=True):
    reason: Annotated[str, Meta(min_length=1, max_length=1000)]


class TeamMember(Body, kw_only=True):
    user_id: UUID
    display_name: str
    perspective: Perspective
    lead: bool


class Visit(Body, kw_only=True):
    id: UUID
    service_id: UUID
    service_name: str
    checklist_id: UUID
    checklist_version: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    announced: bool
    status: Status
    cancelled_reason: str | None
    closed_at: dt.datetime | None = None  # a coordinator closed it: the door is closed
    team: list[TeamMember]
    created_at: dt.datetime
    updated_at: dt.datetime


class VisitPage(Page[Visit]):
    """A page of visits."""


class BundleVisit(Body, kw_only=True):
    id: UUID
    starts_at: dt.datetime
    ends_at: dt.datetime
    announced: bool
    status: Status


class BundleService(Body, kw_only=True):
    id: UUID
    name: str
    kind: str
    address: str
    lat: float
    lon: float
    geofence_m: int


class BundleMember(Body, kw_only=True):
    display_name: str
    perspective: Perspective
    lead: bool


class Bundle(Body, kw_only=True):
    """Everything a phone needs to inspect offline."""

    visit: BundleVisit
    service: BundleService
    checklist: ChecklistVersion
    team: list[BundleMember]


class MySubmission(Body, kw_only=True):
    id: UUID
    state: Literal["draft", "final"]


class MyVisit(Body, kw_only=True):
    id: UUID
    service_id: UUID
    service_name: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: Status
    perspective: Perspective
    lead: bool
    bundle_etag: str
    submission: MySubmission | None


class MyVisitPage(Page[MyVisit]):
    """A page of my visits, soonest first."""
