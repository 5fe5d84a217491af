"""Counts and dates in words: one helper for every page, email and problem."""

from __future__ import annotations

import datetime as dt

from inspections.checklists.questions import questions
from inspections.checklists.starter import load_starters
from inspections.scorecards.page import nice
from inspections.wording import count_words, long_date, noun, plural, sentences, weekday_date


def test_plurals() -> None:
    assert plural(1, "visit") == "1 visit" and plural(2, "visit") == "2 visits"
    assert plural(0, "problem") == "0 problems" and plural(1, "problem") == "1 problem"
    assert plural(2, "citizen inspector") == "2 citizen inspectors"
    assert plural(3, "person") == "3 people" and plural(2, "policy") == "2 policies"
    assert count_words(0, "professional submission") == "no professional submissions"
    assert count_words(1, "citizen visit") == "1 citizen visit"
    assert noun(2, "Action") == "Actions" and noun(1, "is") == "is" and noun(2, "is") == "are"


def test_one_way_to_write_a_date() -> None:
    assert long_date(dt.date(2026, 10, 1)) == "1 October 2026"
    assert long_date(dt.datetime(2026, 10, 11, 9, tzinfo=dt.UTC)) == "11 October 2026"
    assert weekday_date(dt.date(2026, 10, 1)) == "Thursday 1 October 2026"


def test_reasons_read_as_sentences() -> None:
    joined = sentences(["Ann: No inspector training recorded.", "Bob is deactivated"])
    assert joined == "Ann: No inspector training recorded. Bob is deactivated."
    assert ".;" not in joined


def test_no_starter_domain_is_named_like_the_overall_band() -> None:
    domains = {q.domain for c in load_starters() for q in questions(c.content)}
    assert "overall" not in domains and "overall_impressions" in domains
    assert nice("overall_impressions") == "Overall impressions"


def test_days_left_in_words() -> None:
    from inspections.wording import days_left

    today = dt.date(2027, 1, 10)
    said = [days_left(today + dt.timedelta(days=n), today) for n in (12, 1, 0, -1, -5)]
    assert said == ["12 days left", "due tomorrow", "due today", "1 day overdue", "5 days overdue"]
