"""Bodies of the accounts slice: sign-in, invites, users, training, devices."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from service.schema import Body, DeviceName, Email, NonEmpty, Page, Password

Role = Literal[
    "citizen_inspector",
    "professional_inspector",
    "coordinator",
    "scrutiny_member",
    "service_manager",
    "safeguarding_lead",
]
Roles = Annotated[list[Role], Meta(min_length=1, max_length=6)]
DisplayName = Annotated[str, Meta(min_length=1, max_length=120)]


class SignIn(Body):
    email: Email
    password: Annotated[str, Meta(min_length=1, max_length=256)]
    device: DeviceName


class RefreshRequest(Body):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=200)]


class TokenPair(Body):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int
    refresh_token: str
    device_id: UUID


class InviteCreate(Body):
    email: Email
    roles: Roles


class Invite(Body):
    id: UUID
    code: str
    email: str
    roles: list[str]
    expires_at: dt.datetime


class InviteAccept(Body):
    display_name: DisplayName
    password: Password


class User(Body):
    id: UUID
    organisation_id: UUID
    email: str
    display_name: str
    roles: list[str]
    active: bool
    created_at: dt.datetime


class UserPage(Page[User]):
    """A page of people."""


class UserPatch(Body):
    display_name: DisplayName | UnsetType = UNSET
    roles: Roles | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class TrainingCreate(Body):
    course: NonEmpty
    completed_on: dt.date
    expires_on: dt.date | None = None
    kind: Literal["course", "safeguarding_check"] = "course"


class TrainingRecord(Body):
    id: UUID
    kind: str
    course: str
    completed_on: dt.date
    expires_on: dt.date | None
    created_at: dt.datetime


class Me(Body):
    id: UUID
    email: str
    display_name: str
    organisation_id: UUID
    roles: list[str]
    cleared_to_inspect: bool
    clearance_reasons: list[str]
    training: list[TrainingRecord]


class UserDetail(Body):
    id: UUID
    organisation_id: UUID
    email: str
    display_name: str
    roles: list[str]
    active: bool
    created_at: dt.datetime
    cleared_to_inspect: bool
    clearance_reasons: list[str]
    training: list[TrainingRecord]


class Device(Body):
    id: UUID
    name: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_reason: str | None
