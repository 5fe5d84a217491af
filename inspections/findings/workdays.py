"""Working days in the UK's three bank-holiday jurisdictions, for response due dates.

A provider must answer a published report's recommendations within a number of working
days (20 in Healthwatch Enter and View practice): weekends and the bank holidays of the
organisation's jurisdiction do not count. The bank holidays are shipped as data in
``calendars/<jurisdiction>.json`` (weekdays only: a holiday that falls on a weekend is
listed on its substitute day) and cover a fixed range of years; a date outside that range
raises ``ValueError`` rather than being computed with holidays we do not know.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

JURISDICTIONS: tuple[str, ...] = ("england-and-wales", "scotland", "northern-ireland")


@dataclass(frozen=True, slots=True)
class _Calendar:
    jurisdiction: str
    first_day: dt.date  # 1 January of the first year covered
    last_day: dt.date  # 31 December of the last year covered
    holidays: frozenset[dt.date]
    workdays: tuple[dt.date, ...]  # every working day first_day..last_day, ascending


@lru_cache(maxsize=len(JURISDICTIONS))
def _calendar(jurisdiction: str) -> _Calendar:
    """Load one shipped calendar once; unknown names fail here, before any file is read."""
    if jurisdiction not in JURISDICTIONS:
        raise ValueError(
            f"unknown jurisdiction {jurisdiction!r}: expected one of {', '.join(JURISDICTIONS)}"
        )
    text = (
        resources.files("inspections.findings") / "calendars" / f"{jurisdiction}.json"
    ).read_text(encoding="utf-8")
    data = json.loads(text)
    if data["jurisdiction"] != jurisdiction:
        raise ValueError(f"calendars/{jurisdiction}.json is for {data['jurisdiction']!r}")
    first_day = dt.date(int(data["first_year"]), 1, 1)
    last_day = dt.date(int(data["last_year"]), 12, 31)
    days = frozenset(dt.date.fromisoformat(event["date"]) for event in data["events"])
    if any(not first_day <= day <= last_day for day in days):
        raise ValueError(f"calendars/{jurisdiction}.json has a date outside its years")
    workdays = tuple(
        day
        for day in (
            first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)
        )
        if day.weekday() < 5 and day not in days
    )
    return _Calendar(jurisdiction, first_day, last_day, days, workdays)


def _out_of_range(cal: _Calendar, day: dt.date) -> ValueError:
    return ValueError(
        f"{day.isoformat()} is outside the {cal.jurisdiction} bank-holiday calendar "
        f"({cal.first_day.year}-{cal.last_day.year}); its holidays are not known"
    )


def holidays(jurisdiction: str) -> frozenset[dt.date]:
    """The jurisdiction's bank holidays (weekdays only) over the calendar's years."""
    return _calendar(jurisdiction).holidays


def is_working_day(day: dt.date, jurisdiction: str) -> bool:
    """Monday to Friday and not a bank holiday; ValueError outside the calendar's years."""
    cal = _calendar(jurisdiction)
    if not cal.first_day <= day <= cal.last_day:
        raise _out_of_range(cal, day)
    return day.weekday() < 5 and day not in cal.holidays


def add_working_days(start: dt.date, n: int, jurisdiction: str) -> dt.date:
    """The n-th working day after ``start`` (which never counts itself): the due date.

    A report published on a Monday with 20 working days to respond is due on the 20th
    working day after that Monday. ``n`` = 0 returns ``start``. ValueError when a day to
    be counted lies outside the calendar's years, so unknown holidays are never skipped.
    """
    cal = _calendar(jurisdiction)
    if n < 0:
        raise ValueError(f"n must be 0 or more, not {n}")
    if n == 0:
        return start
    if start < cal.first_day - dt.timedelta(days=1):
        raise _out_of_range(cal, start + dt.timedelta(days=1))
    index = bisect.bisect_right(cal.workdays, start) + n - 1
    if index >= len(cal.workdays):
        raise ValueError(
            f"{n} working days after {start.isoformat()} falls after the end of the "
            f"{cal.jurisdiction} bank-holiday calendar ({cal.last_day.isoformat()}); "
            "its holidays are not known"
        )
    return cal.workdays[index]


def working_days_between(start: dt.date, end: dt.date, jurisdiction: str) -> int:
    """How many working days d have start < d <= end (0 when end <= start).

    The inverse of ``add_working_days``: how many of the allowed days have been used.
    ValueError when a day to be counted lies outside the calendar's years.
    """
    cal = _calendar(jurisdiction)
    if end <= start:
        return 0
    if start < cal.first_day - dt.timedelta(days=1):
        raise _out_of_range(cal, start + dt.timedelta(days=1))
    if end > cal.last_day:
        raise _out_of_range(cal, end)
    return bisect.bisect_right(cal.workdays, end) - bisect.bisect_right(cal.workdays, start)
