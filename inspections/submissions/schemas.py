"""Bodies of the submissions slice: one inspector's answers at one visit."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from inspections.visits.schemas import Perspective
from service.schema import Body

# The value's JSON type depends on the question: rating -> int, pass_fail -> str,
# yes_no -> bool, choice -> str or [str], number -> number, text -> str.
AnswerValue = bool | int | float | str | list[str] | None
State = Literal["draft", "final"]


class AnswerIn(Body, kw_only=True):
    question_key: Annotated[str, Meta(min_length=1, max_length=64)]
    value: AnswerValue = None
    na: bool = False
    comment: Annotated[str, Meta(max_length=4000)] | None = None


class SubmissionPut(Body, kw_only=True):
    state: State
    answers: Annotated[list[AnswerIn], Meta(max_length=1000)] = []
    started_at: dt.datetime | None = None  # the phone's clock
    updated_at: dt.datetime | None = None  # the phone's clock
    device: Annotated[str, Meta(max_length=100)] | None = None


class AnswerOut(Body, kw_only=True):
    question_key: str
    value: AnswerValue
    na: bool
    comment: str | None
    points: float | None
    max_points: float | None


class Submission(Body, kw_only=True):
    id: UUID
    visit_id: UUID
    user_id: UUID
    display_name: str
    perspective: Perspective
    state: State
    answers: list[AnswerOut]
    started_at: dt.datetime | None
    updated_at: dt.datetime | None
    device: str | None
    created_at: dt.datetime
    saved_at: dt.datetime
    finalised_at: dt.datetime | None
    etag: str


class QuestionRow(Body, kw_only=True):
    """One question with every submission's answer to it, for side-by-side reading."""

    question_key: str
    prompt: str
    domain: str
    answers: dict[str, AnswerValue]  # submission id -> value (null for N/A or unanswered)


class VisitSubmissions(Body, kw_only=True):
    submissions: list[Submission]
    side_by_side: list[QuestionRow]


# The request example of the phone's PUT in the OpenAPI document: a draft of the starter
# "care home visit" checklist with one answer of every question type (rating: a whole
# number 1..n; pass_fail: pass, qualified_pass or fail; yes_no: true or false; choice: an
# option's value, or a list of them when the question takes several; number; text) and
# one N/A. tests/test_docs.py sends it to the real endpoint.
PUT_EXAMPLE = {
    "state": "draft",
    "started_at": "2026-03-02T10:05:00+00:00",
    "updated_at": "2026-03-02T10:41:00+00:00",
    "device": "Ann's phone",
    "answers": [
        {"question_key": "dignity_privacy", "value": 3, "comment": "Doors closed for care"},
        {"question_key": "environment_accessible", "value": "qualified_pass"},
        {"question_key": "dignity_personal_appearance", "value": True},
        {"question_key": "food_support_seen", "value": ["finger_food", "snacks_between_meals"]},
        {"question_key": "safety_longest_call_bell_wait", "value": 4},
        {"question_key": "overall_comments", "value": "A warm welcome; the garden was locked."},
        {"question_key": "dignity_rooms_personalised", "na": True},
    ],
}
