"""Bodies of the scorecards slice."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from inspections.scorecards.maths import Band, BandRule
from service.bounds import Moment
from service.schema import Body, Page

Trend = Literal["up", "down", "steady"]
Pct = Annotated[float, Meta(ge=0, le=100)]


class Stats(Body, kw_only=True):
    """One perspective's score for a domain (or overall) in a period."""

    score: float
    lower: float | None  # 95% t-interval of the mean; none for a single submission
    upper: float | None
    submissions: int
    raters: int
    visits: int
    answers: int
    low_confidence: bool


class Combined(Body, kw_only=True):
    score: float | None
    citizen_weight: float
    single_perspective: bool


class DomainCard(Body, kw_only=True):
    domain: str
    citizen: Stats | None
    professional: Stats | None
    combined: Combined
    gap: float | None  # citizen - professional
    diverges: bool
    band: Band | None
    trend: Trend | None
    previous: float | None  # the combined score of the previous period


class QuestionCard(Body, kw_only=True):
    question_key: str
    prompt: str | None = None  # the question as inspectors read it (newest version used)
    type: str | None = None  # rating, yes_no, pass_fail
    domain: str
    max_points: float
    # Each perspective's answers in words: "3 of 4 (Good)", "2 No, 1 Yes", "Pass".
    citizen_answers: str | None = None
    professional_answers: str | None = None
    citizen_mean_points: float | None
    professional_mean_points: float | None
    gap_pct: float | None  # (citizen - professional) as percent of the maximum


class Override(Body, kw_only=True):
    """A coordinator's band for a period, with the reason (see overrides.py for the rule)."""

    band: Band
    reason: str
    by: UUID
    by_name: str | None = None
    at: dt.datetime  # when it was recorded
    period_from: dt.datetime | None = None
    period_to: dt.datetime | None = None


class BandReason(Body, kw_only=True):
    """How the computed band was reached: the score's own band and the rule that capped it."""

    score: float  # the combined overall
    score_band: Band
    rule: BandRule | None  # None when the score's band stands
    inadequate_domains: int
    requires_improvement_domains: int
    outstanding_domains: int
    words: str  # "67.6 would be Good; capped because 3 domains require improvement"


class Scorecard(Body, kw_only=True):
    service_id: UUID
    service_name: str
    kind: str
    period_from: dt.datetime
    period_to: dt.datetime
    overall: DomainCard
    band: Band | None  # after any override that applies (overrides.py)
    computed_band: Band | None
    band_reason: BandReason | None  # why computed_band; None without scores
    provisional: bool  # a perspective is missing or has fewer than min_submissions
    provisional_reason: str | None  # "Provisional: 1 citizen visit, no professional visits"
    override: Override | None  # the coordinator's band, when it applies
    override_lapsed: Override | None = None  # an override new evidence has superseded
    agreement_alpha: float | None  # Krippendorff's alpha (ordinal), citizens vs professionals
    domains: list[DomainCard]
    questions: list[QuestionCard]
    notes: list[str]  # plain-words notes: low confidence, divergence, single perspective


class OverrideRequest(Body, kw_only=True):
    period_from: Moment
    period_to: Moment
    band: Band
    reason: Annotated[str, Meta(min_length=10, max_length=2000)]


class ScoringSettings(Body, kw_only=True):
    citizen_weight: Annotated[float, Meta(ge=0, le=1)] = 0.5
    band_thresholds: Annotated[list[Pct], Meta(min_length=3, max_length=3)] = msgspec.field(
        default_factory=lambda: [39.0, 63.0, 88.0]
    )
    min_submissions: Annotated[int, Meta(ge=1, le=100)] = 3
    gap_threshold: Annotated[float, Meta(gt=0, le=100)] = 10


class ScoringSettingsPatch(Body, kw_only=True):
    citizen_weight: Annotated[float, Meta(ge=0, le=1)] | UnsetType = UNSET
    band_thresholds: Annotated[list[Pct], Meta(min_length=3, max_length=3)] | UnsetType = UNSET
    min_submissions: Annotated[int, Meta(ge=1, le=100)] | UnsetType = UNSET
    gap_threshold: Annotated[float, Meta(gt=0, le=100)] | UnsetType = UNSET


class LeagueRow(Body, kw_only=True):
    service_id: UUID
    service_name: str
    combined: float | None
    citizen: float | None
    professional: float | None
    band: Band | None  # after any override that applies, as on the service's scorecard
    computed_band: Band | None
    override: Override | None
    trend: Trend | None
    low_confidence: bool
    single_perspective: bool


class LeaguePage(Page[LeagueRow]):
    """Services of a kind side by side."""
