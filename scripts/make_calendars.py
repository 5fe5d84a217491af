"""Used once to write inspections/findings/calendars/*.json; kept to show where they came from.

The JSON files are the source of truth at runtime (``inspections.findings.workdays`` reads
them and never imports ``holidays``). This script produced them from the ``holidays`` test
dependency (``holidays.UK(subdiv=...)``), after its output had been checked by hand against
the rules: Scotland has 2 January and St Andrew's Day but no Easter Monday and its summer
bank holiday is the first Monday of August; Northern Ireland adds St Patrick's Day and
12 July; weekend holidays move to the next free weekday; the one-off days of 2020, 2022,
2023 and Scotland's 2026 World Cup day are there. Re-run it only to extend the years, and
check the new years the same way (tests/test_workdays.py compares the files with the
package):

    .venv/bin/python scripts/make_calendars.py
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import holidays

FIRST_YEAR, LAST_YEAR = 2018, 2035
OUT = Path(__file__).resolve().parent.parent / "inspections" / "findings" / "calendars"
JURISDICTIONS = {
    "england-and-wales": ("ENG", "England and Wales"),
    "scotland": ("SCT", "Scotland"),
    "northern-ireland": ("NIR", "Northern Ireland"),
}
SOURCE = (
    "GOV.UK bank holidays (https://www.gov.uk/bank-holidays): the Banking and Financial "
    "Dealings Act 1971, the St Andrew's Day Bank Holiday (Scotland) Act 2007 and royal "
    "proclamations for the one-off days. Generated once with the holidays package "
    f"{version('holidays')} (scripts/make_calendars.py) and checked by hand. Weekdays only: "
    "a holiday that falls on a weekend is listed on its substitute day."
)
# The package's names -> GOV.UK's.
TITLES = {
    "New Year's Day": "New Year's Day",
    "New Year Holiday": "2nd January",
    "Good Friday": "Good Friday",
    "Easter Monday": "Easter Monday",
    "May Day": "Early May bank holiday",
    "Spring Bank Holiday": "Spring bank holiday",
    "Late Summer Bank Holiday": "Summer bank holiday",
    "Summer Bank Holiday": "Summer bank holiday",
    "Saint Andrew's Day": "St Andrew's Day",
    "Saint Patrick's Day": "St Patrick's Day",
    "Battle of the Boyne": "Battle of the Boyne (Orangemen's Day)",
    "Christmas Day": "Christmas Day",
    "Boxing Day": "Boxing Day",
    "Platinum Jubilee of Elizabeth II": "Platinum Jubilee bank holiday",
    "State Funeral of Queen Elizabeth II": (
        "Bank holiday for the State Funeral of Queen Elizabeth II"
    ),
    "Coronation of Charles III": "Bank holiday for the coronation of King Charles III",
    "Scotland's participation in the FIFA World Cup final": (
        "Bank holiday for Scotland's participation in the FIFA World Cup"
    ),
}
OBSERVED = " (observed)"


def title(name: str, moved: set[str]) -> str:
    """GOV.UK's title; ``moved`` names the holidays whose substitute day is on another date.

    Scotland, 1 January on a Sunday: the package lists Monday 2 January as both "New Year
    Holiday" and "New Year's Day (observed)" and moves 2 January to the Tuesday; GOV.UK calls
    the Monday "New Year's Day" (substitute day) only.
    """
    parts = []
    for part in name.split("; "):
        if part in moved:
            continue
        substitute = part.endswith(OBSERVED)
        base = TITLES[part.removesuffix(OBSERVED)]  # KeyError: a name nobody has checked
        parts.append(f"{base} (substitute day)" if substitute else base)
    return "; ".join(parts)


def main() -> None:
    for slug, (subdiv, name) in JURISDICTIONS.items():
        days = holidays.UK(subdiv=subdiv, years=range(FIRST_YEAR, LAST_YEAR + 1))
        events = []
        for day in sorted(days):
            if day.weekday() >= 5:
                continue
            moved = {
                n.removesuffix(OBSERVED)
                for other in sorted(days)
                if other.year == day.year and other != day
                for n in days[other].split("; ")
                if n.endswith(OBSERVED)
            }
            events.append({"date": day.isoformat(), "title": title(days[day], moved)})
        events = [
            {**e, "title": "Early May bank holiday (VE Day)"} if e["date"] == "2020-05-08" else e
            for e in events
        ]
        head = {
            "jurisdiction": slug,
            "title": name,
            "source": SOURCE,
            "first_year": FIRST_YEAR,
            "last_year": LAST_YEAR,
        }
        lines = [
            f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()
        ]
        rows = ",\n".join(f"    {json.dumps(e, ensure_ascii=False)}" for e in events)
        text = "{\n" + "\n".join(lines) + '\n  "events": [\n' + rows + "\n  ]\n}\n"
        json.loads(text)  # well-formed
        (OUT / f"{slug}.json").write_text(text, encoding="utf-8")
        print(f"{slug}: {len(events)} bank holidays")


if __name__ == "__main__":
    main()
