"""Bodies of the findings slice: findings, their updates (a tagged union), reports."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from service.schema import Body, LongText, NonEmpty, Page

Severity = Literal["positive", "minor", "major", "safeguarding"]
Status = Literal[
    "draft",
    "open",
    "responded",
    "in_progress",
    "done_by_service",
    "verified",
    "declined",
    "noted",
    "raised",
    "acknowledged",
    "referred",
    "closed",
]
ReportStatus = Literal["draft", "factual_check", "published"]
DomainKey = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
Keys = Annotated[list[Annotated[str, Meta(min_length=1, max_length=100)]], Meta(max_length=50)]
EvidenceIds = Annotated[list[UUID], Meta(max_length=20)]
Note = Annotated[str, Meta(max_length=5_000)]
Text = Annotated[str, Meta(min_length=1, max_length=5_000)]
Jurisdiction = Literal["england-and-wales", "scotland", "northern-ireland"]


class FindingPut(Body, kw_only=True):
    """What an inspector saw. Good practice is a finding too (severity positive)."""

    title: NonEmpty
    description: LongText = ""
    domain: DomainKey | None = None
    question_keys: Keys = []
    severity: Severity
    evidence_ids: EvidenceIds = []
    recommendation: Annotated[str, Meta(min_length=1, max_length=5_000)] | None = None


class Action(Body, kw_only=True):
    action: Text
    owner: NonEmpty  # a job title or team, not necessarily a user of this system
    target_date: dt.date


Moderation = Literal["pending", "approved", "rejected"]


class ActionOut(Body, kw_only=True):
    number: int  # 1-based, as action_done refers to it
    action: str
    owner: str
    target_date: dt.date
    done_at: dt.datetime | None
    # Written after publication: public once a coordinator approves it (moderation.py).
    moderation: Moderation = "approved"


# The updates a finding takes, one type each; `type` is the tag.
class Accept(Body, tag="accept", kw_only=True):
    """The service accepts the recommendation, with its action plan."""

    actions: Annotated[list[Action], Meta(min_length=1, max_length=20)]
    note: Note = ""


class Decline(Body, tag="decline", kw_only=True):
    """Declining is allowed, silence is not: the reason is published."""

    reason: Text


class Progress(Body, tag="progress", kw_only=True):
    note: Text
    evidence_ids: EvidenceIds = []


class ActionDone(Body, tag="action_done", kw_only=True):
    action: Annotated[int, Meta(ge=1, le=20)]
    note: Note = ""


class Done(Body, tag="done", kw_only=True):
    """The service says it has done what it accepted (every action done)."""

    note: Note = ""


class Verify(Body, tag="verify", kw_only=True):
    """A citizen inspector confirms or disputes that the change really happened."""

    outcome: Literal["confirmed", "disputed"]
    note: Note = ""
    evidence_ids: EvidenceIds = []


class Acknowledge(Body, tag="acknowledge", kw_only=True):
    note: Note = ""


class Refer(Body, tag="refer", kw_only=True):
    """Referred to the local authority's safeguarding team, with their reference."""

    reference: NonEmpty
    note: Note = ""


class Close(Body, tag="close", kw_only=True):
    note: Note = ""


Update = Accept | Decline | Progress | ActionDone | Done | Verify | Acknowledge | Refer | Close


class HistoryEntry(Body, kw_only=True):
    """One line of a finding's history: who in role terms, when, what."""

    id: UUID
    kind: str
    from_status: Status | None
    to_status: Status
    actor_role: str
    note: str
    evidence_ids: list[UUID]
    at: dt.datetime
    # Text or photos added after publication: public once a coordinator approves them.
    moderation: Moderation = "approved"


class Finding(Body, kw_only=True):
    id: UUID
    visit_id: UUID
    service_id: UUID
    service_name: str
    raised_as: str
    raised_by: UUID
    title: str
    description: str
    domain: str | None
    question_keys: list[str]
    severity: Severity
    evidence_ids: list[UUID]
    recommendation: str | None
    in_report: bool
    status: Status
    due_on: dt.date | None
    overdue: bool  # derived at read time from due_on, never stored
    responded_at: dt.datetime | None
    responded_on_time: bool | None
    decline_reason: str | None
    safeguarding_reference: str | None
    actions: list[ActionOut]
    history: list[HistoryEntry]
    etag: str
    created_at: dt.datetime
    updated_at: dt.datetime


class FindingPage(Page[Finding]):
    pass


class ReportPut(Body, kw_only=True):
    """The coordinator's review: a summary, and the findings left out of the report."""

    summary: LongText = ""
    excluded_finding_ids: Annotated[list[UUID], Meta(max_length=500)] = []


class Publish(Body, kw_only=True):
    # The publication date the due dates count from: today unless the report was published
    # on paper earlier. Never in the future.
    published_on: dt.date | None = None


class CommentPut(Body, kw_only=True):
    """The provider's factual-accuracy comment on the report (or one finding)."""

    comment: Text
    finding_id: UUID | None = None


class Comment(Body, kw_only=True):
    id: UUID
    finding_id: UUID | None
    comment: str
    author_role: str
    created_at: dt.datetime


class Report(Body, kw_only=True):
    id: UUID
    visit_id: UUID
    service_id: UUID
    service_name: str
    status: ReportStatus
    summary: str
    visit_date: dt.date
    team: dict[str, int]  # members per perspective; no names
    sent_at: dt.datetime | None
    published_at: dt.datetime | None
    published_on: dt.date | None
    findings: list[Finding]
    comments: list[Comment]


class FindingSettings(Body, kw_only=True):
    """How response deadlines are counted (Healthwatch: 20 working days)."""

    jurisdiction: Jurisdiction = "england-and-wales"
    response_working_days: Annotated[int, Meta(ge=1, le=120)] = 20
    reminder_working_days: Annotated[int, Meta(ge=1, le=30)] = 5


class FindingSettingsPatch(Body, kw_only=True):
    jurisdiction: Jurisdiction | UnsetType = UNSET
    response_working_days: Annotated[int, Meta(ge=1, le=120)] | UnsetType = UNSET
    reminder_working_days: Annotated[int, Meta(ge=1, le=30)] | UnsetType = UNSET


class ServiceSummary(Body, kw_only=True):
    """For committees: what was recommended to a service and what became of it."""

    service_id: UUID
    service_name: str
    recommendations: int
    answered: int
    answered_on_time: int
    declined: int
    overdue: int
    awaiting_response: int
    done_by_service: int
    verified: int


class SummaryPage(Body, kw_only=True):
    period_from: dt.date
    period_to: dt.date
    items: list[ServiceSummary]


# The request example of the phone's finding PUT in the OpenAPI document (sent to the real
# endpoint by tests/test_docs.py). question_keys name questions of the visit's checklist
# (here the starter care-home visit); evidence_ids name photos already uploaded.
PUT_EXAMPLE = {
    "title": "Call bells out of reach",
    "description": "In three of the five rooms we saw, the call bell was behind the bed.",
    "domain": "safety",
    "question_keys": ["safety_call_bells_answered"],
    "severity": "major",
    "evidence_ids": [],
    "recommendation": "Check that every resident can reach their call bell on each round.",
}
