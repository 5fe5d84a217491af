"""The retention schedule (an organisation setting) and what the privacy operations report."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from service.errors import DomainError
from service.schema import Body

Days = Annotated[int, Meta(ge=1, le=36_500)]


class Acting(msgspec.Struct, frozen=True, kw_only=True):
    """Who erases or exports a person: whose organisation the person must be in, and what
    the audit row records (the API, the /people screen or the command line)."""

    organisation_id: UUID
    actor_id: UUID | None  # None: the command line
    request_id: str | None = None
    via: str = "api"


class RetentionSettings(Body, kw_only=True):
    """How long each kind of data is kept, in days, before the retention job deletes or
    anonymises it. Defaults: originals (with GPS and camera metadata) go first; the
    derivatives (no metadata) and the scored record are kept six years, like the
    published reports they support."""

    photo_originals_days: Days = 90
    photo_derivatives_days: Days = 2190
    submissions_days: Days = 2190  # then free-text comments and the device name are cleared
    # Closed ones: then notes, action owners and a concern's description are cleared.
    findings_days: Days = 2190
    outbox_email_body_days: Days = 1  # invite and reset links: cleared once sent or failed
    outbox_days: Days = 90  # sent or failed notifications, then deleted
    revoked_devices_days: Days = 30
    signin_attempts_days: Days = 1  # after their window ends; also used/expired reset links
    expired_invites_days: Days = 90  # never accepted; hold an email address
    audit_days: Days = 2190
    # An erased person's photos: keep the derivatives (evidence behind reports) or not.
    keep_erased_evidence: bool = True


class RetentionSettingsPatch(Body, kw_only=True):
    photo_originals_days: Days | UnsetType = UNSET
    photo_derivatives_days: Days | UnsetType = UNSET
    submissions_days: Days | UnsetType = UNSET
    findings_days: Days | UnsetType = UNSET
    outbox_email_body_days: Days | UnsetType = UNSET
    outbox_days: Days | UnsetType = UNSET
    revoked_devices_days: Days | UnsetType = UNSET
    signin_attempts_days: Days | UnsetType = UNSET
    expired_invites_days: Days | UnsetType = UNSET
    audit_days: Days | UnsetType = UNSET
    keep_erased_evidence: bool | UnsetType = UNSET


# Each pair: the kind that must be kept at least as long as the other, and why.
_KEPT_LONGER = (
    (
        "photo_derivatives_days",
        "photo_originals_days",
        ": the originals (with GPS) are deleted first",
    ),
    ("outbox_days", "outbox_email_body_days", ""),
)


def check_retention(s: RetentionSettings) -> None:
    """Derivatives outlive originals (the originals are the first to go), and an email's
    outbox row outlives its body."""
    for longer, shorter, why in _KEPT_LONGER:
        if getattr(s, longer) < getattr(s, shorter):
            raise DomainError(
                422,
                "invalid",
                "Invalid retention schedule",
                f"{longer} must be at least {shorter}{why}.",
            )


class KindCount(Body, kw_only=True):
    kind: str
    days: int
    count: int


class OrgRetention(Body, kw_only=True):
    organisation_id: str
    kinds: list[KindCount]
    objects_deleted: int = 0


class RetentionReport(Body, kw_only=True):
    organisations: list[OrgRetention] = msgspec.field(default_factory=list)
    signin_attempts_deleted: int = 0
    skipped_locked: bool = False


class Erasure(Body, kw_only=True):
    """What erasing a person did."""

    user_id: str
    devices_deleted: int
    training_records_deleted: int
    submissions_kept: int
    upcoming_visits_left: int  # teams of planned visits they no longer join
    photos: int
    originals_deleted: int
    derivatives_deleted: int
    objects_deleted: int
