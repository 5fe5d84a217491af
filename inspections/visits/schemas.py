"""Bodies of the visits slice, including the phone's offline bundle."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from inspections.checklists.schemas import ChecklistVersion
from inspections.services.schemas import BundleService
from service.bounds import Moment
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
    starts_at: Moment
    ends_at: Moment
    announced: bool = True
    team: Team


class VisitPatch(Body, kw_only=True):
    starts_at: Moment | UnsetType = UNSET
    ends_at: Moment | UnsetType = UNSET
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

    def member(self, user_id: UUID) -> TeamMember | None:
        """The person's place on this visit's team, or None when they are not on it."""
        return next((m for m in self.team if m.user_id == user_id), None)


class VisitPage(Page[Visit]):
    """A page of visits."""


class BundleVisit(Body, kw_only=True):
    id: UUID
    starts_at: dt.datetime
    ends_at: dt.datetime
    announced: bool
    status: Status


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
    # What the phone's list shows before a bundle is downloaded.
    address: str = ""
    team: list[BundleMember] = []


class MyVisitPage(Page[MyVisit]):
    """A page of my visits, soonest first."""


# The bundle's response example in the OpenAPI document (tests/test_docs.py checks that it
# has the real bundle's fields). A real checklist has many sections and questions. No null
# values: the OpenAPI document would leave them out.
BUNDLE_EXAMPLE = {
    "visit": {
        "id": "7f3c2a9e-1d4b-4f6a-8c2e-5b9a0d1e2f34",
        "starts_at": "2026-03-02T10:00:00Z",
        "ends_at": "2026-03-02T13:00:00Z",
        "announced": True,
        "status": "planned",
    },
    "service": {
        "id": "2c8e4f6a-9b1d-4e3f-a5c7-d9e1f3a5b7c9",
        "name": "Elm House",
        "kind": "care_home",
        "address": "1 Elm Road, Northshire",
        "lat": 51.5074,
        "lon": -0.1278,
        "geofence_m": 150,
    },
    "checklist": {
        "checklist_id": "5d7f9b1c-3e5a-4c7e-9a1b-3c5d7e9f1a2b",
        "version": 1,
        "title": "Care home visit",
        "description": "What it is like to live here, seen with residents and their families.",
        "service_kinds": ["care_home"],
        "contributors": [{"name": "Northshire residents' relatives group", "role": "co-designers"}],
        "content": {
            "sections": [
                {
                    "title": "Dignity and respect",
                    "questions": [
                        {
                            "type": "rating",
                            "key": "dignity_privacy",
                            "prompt": "Is residents' privacy respected?",
                            "help": "Watch for knocking before entering and doors closed for care.",
                            "easy_read": "Do staff keep people's private things private?",
                            "domain": "dignity",
                            "weight": 1.0,
                            "required": True,
                            "allow_na": False,
                            "evidence": {"when": "points_at_or_below", "points": 2},
                            "labels": ["Poor", "Needs improvement", "Good", "Excellent"],
                        },
                        {
                            "type": "pass_fail",
                            "key": "environment_clean",
                            "prompt": "Are the areas you saw clean?",
                            "help": "Floors, furniture, bathrooms; note any smell.",
                            "easy_read": "Is it clean?",
                            "domain": "environment",
                            "weight": 1.0,
                            "required": True,
                            "allow_na": False,
                            "evidence": {"when": "points_at_or_below", "points": 1},
                        },
                    ],
                }
            ]
        },
        "published_at": "2026-01-15T09:00:00Z",
    },
    "team": [
        {"display_name": "Ann", "perspective": "citizen", "lead": True},
        {"display_name": "Dr Pat", "perspective": "professional", "lead": False},
    ],
}
