"""Checklist content: question types as a tagged union, and the pure rules on answers.

Scoring follows DESIGN.md: an answer earns points out of its question's maximum
(rating k of n earns k of n; pass / qualified pass / fail earn 2 / 1 / 0 of 2; yes/no
earns 2 or 0 of 2 by the good answer). N/A and unanswered count neither points nor maximum.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from msgspec import Meta

from service.errors import FieldError
from service.schema import Body, LongText, NonEmpty

Key = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="stable question key")]
DOMAIN_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
Domain = Annotated[str, Meta(pattern=DOMAIN_PATTERN, examples=["dignity"])]
# What a scorecard calls its overall band; a domain named like it would read as the band.
_OVERALL_NAMES = {"overall", "overallband", "overallrating", "overallscore", "overallgrade"}
Weight = Annotated[float, Meta(gt=0, le=100)]
Label = Annotated[str, Meta(min_length=1, max_length=80)]
Prompt = Annotated[str, Meta(min_length=1, max_length=500)]
PASS_FAIL_POINTS = {"pass": 2.0, "qualified_pass": 1.0, "fail": 0.0}


class EvidenceRule(Body, kw_only=True):
    """When a photo must be attached: always, or when the answer earns at most ``points``."""

    when: Literal["always", "points_at_or_below"] = "always"
    points: float | None = None


class QuestionBase(Body, tag_field="type", kw_only=True):
    key: Key
    prompt: Prompt
    help: LongText | None = None
    easy_read: LongText | None = None
    domain: Domain
    weight: Weight = 1.0
    required: bool = True
    allow_na: bool = False
    evidence: EvidenceRule | None = None


class Rating(QuestionBase, tag="rating", kw_only=True):
    """Scale of n points, 1..n, with a label per point (lowest first)."""

    labels: Annotated[list[Label], Meta(min_length=2, max_length=10)]


class PassFail(QuestionBase, tag="pass_fail", kw_only=True):
    """PLACE-style: pass, qualified_pass, fail."""


class YesNo(QuestionBase, tag="yes_no", kw_only=True):
    good_answer: bool = True


class Option(Body, kw_only=True):
    value: Key
    label: Label


class Choice(QuestionBase, tag="choice", kw_only=True):
    options: Annotated[list[Option], Meta(min_length=1, max_length=50)]
    multiple: bool = False


class Number(QuestionBase, tag="number", kw_only=True):
    min: float | None = None
    max: float | None = None
    unit: Annotated[str, Meta(max_length=20)] | None = None


class Text(QuestionBase, tag="text", kw_only=True):
    max_length: Annotated[int, Meta(ge=1, le=10_000)] = 2000


Question = Rating | PassFail | YesNo | Choice | Number | Text


class Section(Body, kw_only=True):
    title: NonEmpty
    questions: Annotated[list[Question], Meta(min_length=1, max_length=500)]


class Content(Body, kw_only=True):
    sections: Annotated[list[Section], Meta(max_length=50)] = []


def questions(content: Content) -> list[Question]:
    return [q for s in content.sections for q in s.questions]


def content_problems(content: Content) -> list[FieldError]:
    """Rules msgspec's types cannot say, each naming the question."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for si, section in enumerate(content.sections):
        for qi, q in enumerate(section.questions):
            where = f"$.content.sections[{si}].questions[{qi}]"

            def err(reason: str, where: str = where, key: str = q.key) -> None:
                errors.append(FieldError(field=where, reason=f"question '{key}': {reason}"))

            if q.key in seen:
                err("duplicate key; keys must be unique in a checklist")
            seen.add(q.key)
            if (why := domain_problem(q.domain)) is not None:
                err(why, f"{where}.domain")
            match q:
                case Rating(labels=labels) if len(set(labels)) != len(labels):
                    err("rating labels must differ")
                case Choice(options=options) if len({o.value for o in options}) != len(options):
                    err("option values must be unique")
                case Number(min=lo, max=hi) if lo is not None and hi is not None and lo > hi:
                    err("min is greater than max")
                case _:
                    pass
            rule = q.evidence
            if rule is not None and rule.when == "points_at_or_below":
                if max_points(q) is None:
                    err("an evidence rule on points needs a scored question type")
                elif rule.points is None:
                    err("evidence rule 'points_at_or_below' needs points")
    return errors


def domain_problem(domain: object) -> str | None:
    """Why ``domain`` cannot name a domain (None when it can)."""
    if not isinstance(domain, str):
        return "the domain must be text"
    if re.sub(r"[^a-z]", "", domain.lower()) in _OVERALL_NAMES:
        return (
            f"the domain cannot be called {domain!r}: that is the scorecard's overall band; "
            "name what the questions are about"
        )
    if not re.match(DOMAIN_PATTERN, domain):
        return (
            f"the domain {domain!r} must be lower-case letters, digits and _, starting with "
            "a letter, at most 40 characters"
        )
    return None


_IN_QUESTION = re.compile(r"^\$\.content\.sections\[(\d+)\]\.questions\[(\d+)\](?:\.(\w+))?")
_TYPES = "rating, pass_fail, yes_no, choice, number, text"


def name_the_question(body: object, field: str, reason: str) -> str:
    """A decoding error's reason, naming the question it is in by its key.

    msgspec reports where a value failed as a JSON path; people know questions by key.
    ``body`` is the request's decoded JSON, ``field`` the error's JSON path.
    """
    m = _IN_QUESTION.match(field)
    if m is None:
        return reason
    try:
        content: Any = body["content"]  # type: ignore[index]
        question = content["sections"][int(m[1])]["questions"][int(m[2])]
    except (KeyError, IndexError, TypeError):
        return reason
    key = question.get("key") if isinstance(question, dict) else None
    name = (
        f"question {key!r}"
        if isinstance(key, str) and key
        else (f"question {int(m[2]) + 1} of section {int(m[1]) + 1} (it has no key)")
    )
    match m[3]:
        case "type" if reason.startswith("Invalid value"):
            reason = f"unknown type {question.get('type')!r}; one of {_TYPES}"
        case "type":
            reason = f"needs a type: one of {_TYPES}"
        case "domain":
            reason = domain_problem(question.get("domain")) or reason
        case None:
            pass
        case attribute:
            reason = f"{attribute}: {reason}"
    return f"{name}: {reason}"


def max_points(q: Question) -> float | None:
    """The question's maximum, or None for unscored types."""
    match q:
        case Rating(labels=labels):
            return float(len(labels))
        case PassFail() | YesNo():
            return 2.0
        case _:
            return None


def answer_problem(q: Question, value: Any) -> str | None:
    """Why ``value`` is not a valid answer to ``q`` (None when it is)."""
    match q:
        case Rating(labels=labels):
            if type(value) is not int or not 1 <= value <= len(labels):
                return f"must be a whole number from 1 to {len(labels)}"
        case PassFail():
            if value not in PASS_FAIL_POINTS or not isinstance(value, str):
                return "must be one of pass, qualified_pass, fail"
        case YesNo():
            if type(value) is not bool:
                return "must be true or false"
        case Choice(options=options, multiple=multiple):
            allowed = {o.value for o in options}
            if multiple:
                if not isinstance(value, list) or not value or not set(value) <= allowed:
                    return f"must be a non-empty list of: {', '.join(sorted(allowed))}"
                if len(set(value)) != len(value):
                    return "lists an option twice"
            elif not isinstance(value, str) or value not in allowed:
                return f"must be one of: {', '.join(sorted(allowed))}"
        case Number(min=lo, max=hi):
            if type(value) not in (int, float):
                return "must be a number"
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                return f"must be between {lo if lo is not None else '-inf'} and " + (
                    f"{hi if hi is not None else 'inf'}"
                )
        case Text(max_length=n):
            if not isinstance(value, str):
                return "must be text"
            if len(value) > n:
                return f"must be at most {n} characters"
    return None


def points(q: Question, value: Any) -> float | None:
    """Points a valid, non-N/A answer earns (None for unscored types)."""
    match q:
        case Rating():
            return float(value)
        case PassFail():
            return PASS_FAIL_POINTS[value]
        case YesNo(good_answer=good):
            return 2.0 if value is good else 0.0
        case _:
            return None


def needs_photo(q: Question, value: Any, na: bool) -> bool:
    rule = q.evidence
    if rule is None or na or value is None:
        return False
    if rule.when == "always":
        return True
    earned = points(q, value)
    return earned is not None and rule.points is not None and earned <= rule.points
