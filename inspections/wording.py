"""Counts and dates in words, the same on every page, email and problem detail.

One place, so "1 problem(s)", "No professionals submissions" and a date written
"01 October" on one page and "1 October" on the next cannot come back piecemeal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

# Plurals that are not "add s".
_IRREGULAR = {"person": "people", "is": "are", "was": "were", "this": "these"}


def noun(n: float, singular: str, many: str | None = None) -> str:
    """The word for ``n`` of a thing: noun(1, "visit") "visit", noun(2, "visit") "visits"."""
    if n == 1:
        return singular
    if many is not None:
        return many
    head, _, last = singular.rpartition(" ")
    prefix = head + " " if head else ""
    if last in _IRREGULAR:
        return prefix + _IRREGULAR[last]
    if last.endswith(("s", "x", "z", "ch", "sh")):
        return prefix + last + "es"
    if last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        return prefix + last[:-1] + "ies"
    return prefix + last + "s"


def plural(n: int, singular: str, many: str | None = None) -> str:
    """A count and its noun: plural(1, "visit") "1 visit", plural(3, "visit") "3 visits"."""
    return f"{n} {noun(n, singular, many)}"


def count_words(n: int, singular: str, many: str | None = None) -> str:
    """As ``plural``, with "no" for zero: "no professional visits", "1 citizen visit"."""
    return f"no {noun(0, singular, many)}" if n == 0 else plural(n, singular, many)


def long_date(d: dt.date | dt.datetime) -> str:
    """1 October 2026: no leading zero, the month in full, the year."""
    return f"{d.day} {d:%B %Y}"


def day_month(d: dt.date | dt.datetime) -> str:
    """1 October (an email subject, where the year is plain)."""
    return f"{d.day} {d:%B}"


def weekday_date(d: dt.date | dt.datetime) -> str:
    """Thursday 1 October 2026."""
    return f"{d:%A} {long_date(d)}"


def sentences(parts: Iterable[str]) -> str:
    """Sentences joined as prose: each ends with one full stop, none gets "." + ";"."""
    out = []
    for p in parts:
        p = p.strip().rstrip(";").strip()
        if p:
            out.append(p if p.endswith((".", "!", "?")) else p + ".")
    return " ".join(out)


def listing(items: Iterable[str]) -> str:
    """dignity, safety and food: a list in words."""
    xs = list(items)
    if len(xs) <= 1:
        return "".join(xs)
    return ", ".join(xs[:-1]) + " and " + xs[-1]


def days_left(due: dt.date, today: dt.date) -> str:
    """How long until a due date, in words: "3 days left", "due today", "2 days overdue"."""
    n = (due - today).days
    if n == 0:
        return "due today"
    if n == 1:
        return "due tomorrow"
    if n > 1:
        return f"{plural(n, 'day')} left"
    return f"{plural(-n, 'day')} overdue"
