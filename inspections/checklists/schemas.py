"""Bodies of the checklists slice."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from inspections.checklists.questions import Content
from inspections.services.schemas import Kind
from service.schema import Body, LongText, NonEmpty, Page

Kinds = Annotated[list[Kind], Meta(max_length=20)]


class Contributor(Body, kw_only=True):
    """Credit for the citizens and staff who co-designed a checklist."""

    name: NonEmpty
    role: Annotated[str, Meta(max_length=200)] = ""


Contributors = Annotated[list[Contributor], Meta(max_length=100)]


class ChecklistCreate(Body, kw_only=True):
    title: NonEmpty
    description: LongText = ""
    service_kinds: Kinds = []
    contributors: Contributors = []
    content: Content = msgspec.field(default_factory=Content)


class ChecklistPatch(Body, kw_only=True):
    title: NonEmpty | UnsetType = UNSET
    description: LongText | UnsetType = UNSET
    service_kinds: Kinds | UnsetType = UNSET
    contributors: Contributors | UnsetType = UNSET
    content: Content | UnsetType = UNSET


class Checklist(Body, kw_only=True):
    """A checklist with its editable draft (or, with no draft, its latest version)."""

    id: UUID
    title: str
    description: str
    service_kinds: list[str]
    contributors: list[Contributor]
    content: Content
    has_draft: bool
    latest_version: int
    retired: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class ChecklistSummary(Body, kw_only=True):
    id: UUID
    title: str
    service_kinds: list[str]
    has_draft: bool
    latest_version: int
    retired: bool
    updated_at: dt.datetime


class ChecklistPage(Page[ChecklistSummary]):
    """A page of checklists."""


class ChecklistVersion(Body, kw_only=True):
    """An immutable published version, as pinned by visits and sent to phones."""

    checklist_id: UUID
    version: int
    title: str
    description: str
    service_kinds: list[str]
    contributors: list[Contributor]
    content: Content
    published_at: dt.datetime


class Published(Body, kw_only=True):
    checklist_id: UUID
    version: int
