"""Is this person cleared to inspect? A pure function, so visits can ask it for any window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import msgspec


class TrainingFact(Protocol):
    # Read-only: frozen Structs and database rows both answer.
    @property
    def kind(self) -> str: ...
    @property
    def course(self) -> str: ...
    @property
    def completed_on(self) -> dt.date: ...
    @property
    def expires_on(self) -> dt.date | None: ...


class Training(msgspec.Struct, frozen=True):
    kind: str
    course: str
    completed_on: dt.date
    expires_on: dt.date | None


def from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Training]:
    """Training facts from database rows (kind, course, completed_on, expires_on)."""
    return [Training(r["kind"], r["course"], r["completed_on"], r["expires_on"]) for r in rows]


def _check(records: list[TrainingFact], what: str, on: dt.date, through: dt.date) -> str | None:
    held = [r for r in records if r.completed_on <= on]
    if not held:
        return f"No {what} recorded."
    if any(r.expires_on is None or r.expires_on >= through for r in held):
        return None
    latest = max(r.expires_on for r in held if r.expires_on is not None)
    if latest < on:
        return f"{what.capitalize()} expired on {latest.isoformat()}."
    return f"{what.capitalize()} expires on {latest.isoformat()}, before {through.isoformat()}."


def clearance_reasons(
    roles: Iterable[str],
    records: Iterable[TrainingFact],
    on: dt.date,
    through: dt.date | None = None,
) -> list[str]:
    """Why this person may not inspect from ``on`` through ``through``; empty when cleared.

    Professional inspectors are vetted by their employer. Citizen inspectors need an
    in-date inspector training course and an in-date safeguarding check (DBS in England).
    """
    roles = set(roles)
    if "professional_inspector" in roles:
        return []
    if "citizen_inspector" not in roles:
        return ["Does not hold an inspector role."]
    through = max(through or on, on)
    records = list(records)
    reasons = []
    for kind, what in (
        ("course", "inspector training"),
        ("safeguarding_check", "safeguarding check"),
    ):
        reason = _check([r for r in records if r.kind == kind], what, on, through)
        if reason:
            reasons.append(reason)
    return reasons
