"""Bodies of the accounts slice: sign-in, invites, users, training, devices."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from inspections.accounts.password_rule import PASSWORD_MAX, PASSWORD_MIN
from service.auth import Role
from service.schema import Body, DeviceName, Email, NonEmpty, Page

Roles = Annotated[list[Role], Meta(min_length=1, max_length=6)]
DisplayName = Annotated[str, Meta(min_length=1, max_length=120)]
# A password being chosen: its rule (password_rule.py) answers in words, so the type only
# describes it (msgspec's own "Expected `str` of length >= 15" is not for people).
NewPassword = Annotated[
    str,
    Meta(
        description=f"{PASSWORD_MIN} to {PASSWORD_MAX} characters, not a common password "
        "(no other rules: spaces and any characters are fine)"
    ),
]


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
    """A new invite: the code is shown this once (and emailed to the invitee as ``link``)."""

    id: UUID
    code: str
    email: str
    roles: list[str]
    expires_at: dt.datetime
    link: str


class InviteSummary(Body):
    """An invite as coordinators list it: never its code."""

    id: UUID
    email: str
    roles: list[str]
    status: Literal["open", "accepted", "expired"]
    created_at: dt.datetime
    expires_at: dt.datetime
    invited_by: UUID | None
    sent_count: int
    last_sent_at: dt.datetime | None
    accepted_at: dt.datetime | None
    accepted_user_id: UUID | None


class InvitePage(Page[InviteSummary]):
    """A page of invites, newest first."""


class PasswordResetRequest(Body):
    email: Email


class PasswordResetConfirm(Body):
    """The token from the emailed link (in the body, so it stays out of access logs)."""

    token: Annotated[str, Meta(min_length=1, max_length=200)]
    password: NewPassword


class PasswordChange(Body):
    current_password: Annotated[str, Meta(min_length=1, max_length=PASSWORD_MAX)]
    new_password: NewPassword


class Message(Body):
    detail: str


class PasswordChanged(Body):
    detail: str
    devices_signed_out: int


class InviteAccept(Body):
    display_name: DisplayName
    password: NewPassword


class User(Body):
    id: UUID
    organisation_id: UUID
    email: str
    display_name: str
    roles: list[str]
    active: bool
    created_at: dt.datetime
    # The privacy notice this person accepted (when they accepted their invite), and when.
    privacy_notice_version: str | None = None
    privacy_accepted_at: dt.datetime | None = None


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


class UserDetail(User, kw_only=True):
    """A person with what decides whether they may inspect."""

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
