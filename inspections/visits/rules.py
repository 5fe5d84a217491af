"""Team rules for a visit, as a pure function over facts loaded beforehand."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from inspections.accounts.clearance import clearance_reasons
from service.errors import FieldError


@dataclass(frozen=True)
class TeamRules:
    """Per-organisation; the defaults follow PLACE (citizens at least half the team)."""

    min_citizen_share: float = 0.5
    min_citizens_large_team: int = 2
    large_team_size: int = 4

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> TeamRules:
        return cls(**{k: settings[k] for k in cls.__dataclass_fields__ if k in settings})


@dataclass(frozen=True)
class MemberFacts:
    user_id: Any
    perspective: str
    lead: bool
    exists: bool = True  # in this organisation
    active: bool = True
    display_name: str = ""
    roles: frozenset[str] = frozenset()
    manages_service: bool = False
    training: list[Any] = field(default_factory=list)


def team_problems(
    members: list[MemberFacts], rules: TeamRules, starts: dt.date, ends: dt.date
) -> list[FieldError]:
    errors: list[FieldError] = []

    def err(i: int | None, reason: str) -> None:
        errors.append(
            FieldError(field="$.team" + (f"[{i}]" if i is not None else ""), reason=reason)
        )

    seen: set[Any] = set()
    for i, m in enumerate(members):
        if m.user_id in seen:
            err(i, "this person is listed twice")
        seen.add(m.user_id)
        if not m.exists:
            err(i, "no such person in your organisation")
            continue
        name = m.display_name or str(m.user_id)
        if not m.active:
            err(i, f"{name} is deactivated")
        if m.manages_service:
            err(i, f"{name} manages this service and cannot inspect it")
        if m.perspective == "citizen":
            if "citizen_inspector" not in m.roles:
                err(i, f"{name} is not a citizen inspector")
            else:
                for reason in clearance_reasons(["citizen_inspector"], m.training, starts, ends):
                    err(i, f"{name} is not cleared for this visit: {reason}")
        elif "professional_inspector" not in m.roles:
            err(i, f"{name} is not a professional inspector")
    if sum(m.lead for m in members) > 1:
        err(None, "a team has at most one lead")
    if not members:
        err(None, "a visit needs a team")
        return errors
    citizens = sum(m.perspective == "citizen" for m in members)
    needed = math.ceil(rules.min_citizen_share * len(members) - 1e-9)
    if len(members) >= rules.large_team_size:
        needed = max(needed, rules.min_citizens_large_team)
    if citizens < needed:
        err(
            None,
            f"the team needs at least {needed} citizen inspectors out of {len(members)} "
            f"(has {citizens}): citizens are at least "
            f"{rules.min_citizen_share:.0%} of a team in this organisation",
        )
    return errors
