"""Pure unit tests of who is cleared to inspect."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from inspections.accounts.clearance import clearance_reasons

TODAY = dt.date(2026, 11, 23)


@dataclass
class Rec:
    kind: str
    course: str
    completed_on: dt.date
    expires_on: dt.date | None


def both(expires: dt.date | None) -> list[Rec]:
    return [
        Rec("course", "c", TODAY - dt.timedelta(days=5), expires),
        Rec("safeguarding_check", "dbs", TODAY - dt.timedelta(days=5), expires),
    ]


def test_roles() -> None:
    assert clearance_reasons(["professional_inspector"], [], TODAY) == []
    assert clearance_reasons(["scrutiny_member"], [], TODAY) == ["Does not hold an inspector role."]
    assert clearance_reasons(["citizen_inspector"], both(None), TODAY) == []


def test_expired_and_expiring_within_the_window() -> None:
    assert clearance_reasons(["citizen_inspector"], both(TODAY - dt.timedelta(days=1)), TODAY) == [
        "Inspector training expired on 2026-11-22.",
        "Safeguarding check expired on 2026-11-22.",
    ]
    through = TODAY + dt.timedelta(days=10)
    reasons = clearance_reasons(
        ["citizen_inspector"], both(TODAY + dt.timedelta(days=3)), TODAY, through
    )
    assert reasons[0] == "Inspector training expires on 2026-11-26, before 2026-12-03."
    # Expiring on the last day of the window is still cleared.
    assert clearance_reasons(["citizen_inspector"], both(through), TODAY, through) == []


def test_training_completed_in_the_future_does_not_count() -> None:
    recs = [
        Rec("course", "c", TODAY + dt.timedelta(days=1), None),
        Rec("safeguarding_check", "d", TODAY, None),
    ]
    assert clearance_reasons(["citizen_inspector"], recs, TODAY) == [
        "No inspector training recorded."
    ]


@given(
    st.lists(
        st.builds(
            Rec,
            kind=st.sampled_from(["course", "safeguarding_check"]),
            course=st.just("c"),
            completed_on=st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)),
            expires_on=st.none() | st.dates(dt.date(2020, 1, 1), dt.date(2032, 1, 1)),
        )
    ),
    st.integers(0, 400),
)
def test_cleared_iff_both_kinds_valid_through_window(recs: list[Rec], days: int) -> None:
    through = TODAY + dt.timedelta(days=days)

    def ok(kind: str) -> bool:
        return any(
            r.kind == kind
            and r.completed_on <= TODAY
            and (r.expires_on is None or r.expires_on >= through)
            for r in recs
        )

    reasons = clearance_reasons(["citizen_inspector"], recs, TODAY, through)
    assert (reasons == []) == (ok("course") and ok("safeguarding_check"))
    # A longer window never clears someone a shorter one refused.
    if clearance_reasons(["citizen_inspector"], recs, TODAY):
        assert reasons
