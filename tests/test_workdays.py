"""Working-day due dates and the shipped bank-holiday calendars (pure: no database).

The calendars are checked three ways: hand-computed due dates, the UK rules re-derived here
from the statutes and proclamations, and the ``holidays`` package (a test dependency only).
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import holidays as holidays_package
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inspections.findings.workdays import (
    JURISDICTIONS,
    add_working_days,
    holidays,
    is_working_day,
    working_days_between,
)

D = dt.date
EW, SCT, NI = JURISDICTIONS
YEARS = range(2018, 2036)
SUBDIV = {EW: "ENG", SCT: "SCT", NI: "NIR"}


def _load(jurisdiction: str) -> dict:
    path = resources.files("inspections.findings") / "calendars" / f"{jurisdiction}.json"
    return json.loads(path.read_text(encoding="utf-8"))


# --- hand-computed due dates -------------------------------------------------------------


def test_published_before_christmas_skips_christmas_boxing_day_and_new_year() -> None:
    # Mon 15 Dec 2025: 16-19, 22-24, 29-31, 2 Jan, 5-9, 12-15 Jan = 20 working days.
    assert add_working_days(D(2025, 12, 15), 20, EW) == D(2026, 1, 15)
    assert add_working_days(D(2025, 12, 15), 20, NI) == D(2026, 1, 15)
    # Scotland also has Fri 2 January off.
    assert add_working_days(D(2025, 12, 15), 20, SCT) == D(2026, 1, 16)
    # Weekends alone would give four weeks later, Monday 12 January.
    weekdays = [D(2025, 12, 15) + dt.timedelta(days=i) for i in range(1, 40)]
    assert [d for d in weekdays if d.weekday() < 5][19] == D(2026, 1, 12)
    assert working_days_between(D(2025, 12, 15), D(2026, 1, 15), EW) == 20


def test_easter_2026_differs_between_england_and_scotland() -> None:
    # Wed 1 April 2026; Good Friday 3 April everywhere, Easter Monday 6 April not in Scotland.
    assert add_working_days(D(2026, 4, 1), 5, EW) == D(2026, 4, 10)  # 2, 7, 8, 9, 10
    assert add_working_days(D(2026, 4, 1), 5, SCT) == D(2026, 4, 9)  # 2, 6, 7, 8, 9
    assert add_working_days(D(2026, 4, 1), 5, NI) == D(2026, 4, 10)
    assert not is_working_day(D(2026, 4, 6), EW)
    assert is_working_day(D(2026, 4, 6), SCT)


def test_friday_start() -> None:
    assert add_working_days(D(2025, 6, 6), 1, EW) == D(2025, 6, 9)
    assert add_working_days(D(2025, 6, 6), 5, EW) == D(2025, 6, 13)
    # Fri 22 Aug 2025, then the summer bank holiday (last Monday in England, first in Scotland).
    assert add_working_days(D(2025, 8, 22), 1, EW) == D(2025, 8, 26)
    assert add_working_days(D(2025, 8, 22), 1, SCT) == D(2025, 8, 25)


def test_start_on_a_bank_holiday_or_a_weekend() -> None:
    # Mon 5 May 2025 is the early May bank holiday: the start never counts anyway.
    assert add_working_days(D(2025, 5, 5), 1, EW) == D(2025, 5, 6)
    # Sat 3 May 2025, then Sunday and the bank holiday.
    assert add_working_days(D(2025, 5, 3), 1, EW) == D(2025, 5, 6)
    assert add_working_days(D(2025, 6, 7), 1, EW) == D(2025, 6, 9)  # a plain Saturday
    assert add_working_days(D(2025, 6, 7), 0, EW) == D(2025, 6, 7)
    # A working-day start does not count either.
    assert add_working_days(D(2025, 6, 9), 1, EW) == D(2025, 6, 10)


def test_boxing_day_2026_substitute_monday() -> None:
    # Boxing Day 2026 is a Saturday; Monday 28 December is the bank holiday instead.
    for jurisdiction in JURISDICTIONS:
        assert D(2026, 12, 28) in holidays(jurisdiction)
        assert D(2026, 12, 26) not in holidays(jurisdiction)  # weekend dates are not listed
        assert not is_working_day(D(2026, 12, 28), jurisdiction)
        assert add_working_days(D(2026, 12, 24), 1, jurisdiction) == D(2026, 12, 29)


def test_second_of_january_in_scotland() -> None:
    assert not is_working_day(D(2025, 1, 2), SCT)
    assert is_working_day(D(2025, 1, 2), EW)
    assert add_working_days(D(2024, 12, 31), 1, EW) == D(2025, 1, 2)
    assert add_working_days(D(2024, 12, 31), 1, SCT) == D(2025, 1, 3)
    # 2 Jan 2027 is a Saturday: Scotland has Monday 4 January off instead.
    assert not is_working_day(D(2027, 1, 4), SCT)
    assert is_working_day(D(2027, 1, 4), EW)


def test_one_off_bank_holidays() -> None:
    for jurisdiction in JURISDICTIONS:
        days = holidays(jurisdiction)
        assert D(2020, 5, 8) in days and D(2020, 5, 4) not in days  # VE Day moved early May
        assert {D(2022, 6, 2), D(2022, 6, 3)} <= days and D(2022, 5, 30) not in days
        assert D(2022, 9, 19) in days  # State Funeral
        assert D(2023, 5, 8) in days  # Coronation
    assert D(2026, 6, 15) in holidays(SCT)  # Scotland at the 2026 World Cup
    assert D(2026, 6, 15) not in holidays(EW)


def test_northern_ireland_days_and_their_substitutes() -> None:
    days = holidays(NI)
    assert D(2025, 3, 17) in days and D(2025, 7, 14) in days  # Sat 12 July 2025 -> Monday
    assert D(2024, 3, 18) in days  # Sun 17 March 2024 -> Monday
    assert D(2025, 3, 17) not in holidays(EW) and D(2025, 7, 14) not in holidays(SCT)


# --- the shipped data ----------------------------------------------------------------------


@pytest.mark.parametrize("jurisdiction", JURISDICTIONS)
def test_calendar_file_shape(jurisdiction: str) -> None:
    data = _load(jurisdiction)
    assert data["jurisdiction"] == jurisdiction
    assert data["title"] and data["source"]
    assert (data["first_year"], data["last_year"]) == (2018, 2035)
    dates = [D.fromisoformat(event["date"]) for event in data["events"]]
    assert dates == sorted(set(dates))
    assert all(event["title"] for event in data["events"])
    assert all(day.weekday() < 5 for day in dates)
    assert {day.year for day in dates} == set(YEARS)
    assert holidays(jurisdiction) == frozenset(dates)


@pytest.mark.parametrize("jurisdiction", JURISDICTIONS)
def test_calendars_agree_with_the_holidays_package(jurisdiction: str) -> None:
    """Every year 2018-2035, exactly, on weekdays.

    The one systematic difference: for a holiday on a weekend the package lists both the
    nominal date (Sat 26 Dec 2026, "Boxing Day") and the substitute (Mon 28 Dec, "Boxing Day
    (observed)"). Like GOV.UK, the shipped files list only the substitute, the day that is
    actually off; a weekend is never a working day either way. No weekday differs.
    """
    package = holidays_package.UK(subdiv=SUBDIV[jurisdiction], years=YEARS)
    expected = {day for day in package if day.weekday() < 5}
    assert holidays(jurisdiction) == expected


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (Meeus/Jones/Butcher), independent of the holidays package."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return D(year, month, day + 1)


def _monday(year: int, month: int, which: int) -> dt.date:
    """The first (which=1) or last (which=-1) Monday of a month."""
    if which == 1:
        first = D(year, month, 1)
        return first + dt.timedelta(days=(7 - first.weekday()) % 7)
    last = D(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=last.weekday())


def _rules(jurisdiction: str, year: int) -> set[dt.date]:
    """The bank holidays from the Banking and Financial Dealings Act 1971 (as amended), the
    St Andrew's Day Bank Holiday (Scotland) Act 2007 and the proclamations for one-off days.

    A fixed-date holiday on a weekend moves to the next weekday that is not already off.
    """
    easter = _easter(year)
    early_may = D(2020, 5, 8) if year == 2020 else _monday(year, 5, 1)
    spring = D(2022, 6, 2) if year == 2022 else _monday(year, 5, -1)
    movable = {easter - dt.timedelta(days=2), early_may, spring}
    fixed = [D(year, 1, 1)]
    if jurisdiction == SCT:
        fixed.append(D(year, 1, 2))
        movable.add(_monday(year, 8, 1))
        fixed.append(D(year, 11, 30))
    else:
        movable |= {easter + dt.timedelta(days=1), _monday(year, 8, -1)}
    if jurisdiction == NI:
        fixed += [D(year, 3, 17), D(year, 7, 12)]
    fixed += [D(year, 12, 25), D(year, 12, 26)]
    one_off = {
        2022: {D(2022, 6, 3), D(2022, 9, 19)},
        2023: {D(2023, 5, 8)},
    }
    days = movable | one_off.get(year, set()) | {d for d in fixed if d.weekday() < 5}
    if jurisdiction == SCT and year == 2026:
        days.add(D(2026, 6, 15))
    for day in fixed:
        if day.weekday() >= 5:
            while day.weekday() >= 5 or day in days:
                day += dt.timedelta(days=1)
            days.add(day)
    return days


@pytest.mark.parametrize("jurisdiction", JURISDICTIONS)
def test_calendars_follow_the_rules(jurisdiction: str) -> None:
    for year in YEARS:
        shipped = {day for day in holidays(jurisdiction) if day.year == year}
        assert shipped == _rules(jurisdiction, year), year


# --- properties -----------------------------------------------------------------------------

starts = st.dates(min_value=D(2017, 12, 31), max_value=D(2035, 6, 30))
counts = st.integers(min_value=0, max_value=60)
jurisdictions = st.sampled_from(JURISDICTIONS)


@given(starts, st.integers(min_value=1, max_value=100), jurisdictions)
def test_due_date_is_a_later_working_day_and_the_count_inverts(
    start: dt.date, n: int, jurisdiction: str
) -> None:
    due = add_working_days(start, n, jurisdiction)
    assert due > start
    assert is_working_day(due, jurisdiction)
    assert working_days_between(start, due, jurisdiction) == n
    # Naively, day by day.
    day, left = start, n
    while left:
        day += dt.timedelta(days=1)
        left -= is_working_day(day, jurisdiction)
    assert due == day


@given(starts, counts, jurisdictions)
def test_monotonic_in_n(start: dt.date, n: int, jurisdiction: str) -> None:
    assert add_working_days(start, n, jurisdiction) < add_working_days(start, n + 1, jurisdiction)


@given(starts, counts, counts, jurisdictions)
def test_adding_n_then_m_is_adding_n_plus_m(
    start: dt.date, n: int, m: int, jurisdiction: str
) -> None:
    then = add_working_days(add_working_days(start, n, jurisdiction), m, jurisdiction)
    assert then == add_working_days(start, n + m, jurisdiction)


@given(starts, st.integers(min_value=-10, max_value=120), jurisdictions)
def test_count_then_add_lands_on_the_last_working_day_up_to_end(
    start: dt.date, offset: int, jurisdiction: str
) -> None:
    end = start + dt.timedelta(days=offset)
    count = working_days_between(start, end, jurisdiction)
    if end <= start:
        assert count == 0
        return
    back = add_working_days(start, count, jurisdiction)
    assert back <= end
    assert all(
        not is_working_day(back + dt.timedelta(days=i), jurisdiction)
        for i in range(1, (end - back).days + 1)
    )


# --- refusals ---------------------------------------------------------------------------------


def test_outside_the_calendar_years_raises() -> None:
    with pytest.raises(ValueError, match="outside the england-and-wales"):
        is_working_day(D(2036, 1, 2), EW)
    with pytest.raises(ValueError, match="2017"):
        is_working_day(D(2017, 12, 29), SCT)
    with pytest.raises(ValueError, match="after the end"):
        add_working_days(D(2035, 12, 20), 20, EW)
    with pytest.raises(ValueError, match="outside"):
        add_working_days(D(2017, 6, 1), 20, EW)
    with pytest.raises(ValueError, match="outside"):
        working_days_between(D(2035, 12, 1), D(2036, 1, 31), NI)
    with pytest.raises(ValueError, match="outside"):
        working_days_between(D(2017, 6, 1), D(2018, 1, 31), NI)
    # The edges themselves are fine: from 31 Dec 2017 only 2018 days are counted.
    assert add_working_days(D(2017, 12, 31), 1, EW) == D(2018, 1, 2)
    assert add_working_days(D(2017, 12, 31), 1, SCT) == D(2018, 1, 3)
    assert working_days_between(D(2017, 12, 31), D(2018, 1, 3), EW) == 2
    assert add_working_days(D(2035, 12, 27), 1, EW) == D(2035, 12, 28)
    with pytest.raises(ValueError, match="after the end"):
        add_working_days(D(2035, 12, 31), 1, EW)


def test_negative_n_raises() -> None:
    with pytest.raises(ValueError, match="n must be"):
        add_working_days(D(2025, 6, 9), -1, EW)


@pytest.mark.parametrize("name", ["england", "England and Wales", "wales", "ENG", ""])
def test_unknown_jurisdiction_raises(name: str) -> None:
    with pytest.raises(ValueError, match="unknown jurisdiction"):
        holidays(name)
    with pytest.raises(ValueError, match="unknown jurisdiction"):
        is_working_day(D(2025, 6, 9), name)
    with pytest.raises(ValueError, match="unknown jurisdiction"):
        add_working_days(D(2025, 6, 9), 1, name)
    with pytest.raises(ValueError, match="unknown jurisdiction"):
        working_days_between(D(2025, 6, 9), D(2025, 6, 1), name)
