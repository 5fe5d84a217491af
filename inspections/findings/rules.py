"""What a finding's updates may do, by whom and from which state: pure, no I/O.

open -> responded (accept) | declined (decline, terminal)
responded | in_progress -> in_progress (progress, an action done)
responded | in_progress -> done_by_service (the last action done, or done)
done_by_service -> verified (a citizen confirms) | in_progress (a citizen disputes)
safeguarding: raised -> acknowledged -> referred -> closed (leads and coordinators)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from inspections.findings.schemas import (
    Accept,
    Acknowledge,
    ActionDone,
    Close,
    Decline,
    Done,
    Progress,
    Refer,
    Update,
    Verify,
)
from inspections.wording import listing, noun
from service.errors import Refused  # a DomainError: answered as problem+json as raised

SAFEGUARDING_STATES = ("raised", "acknowledged", "referred", "closed")
# States in which a published recommendation is still the service's to act on.
WORKING = ("responded", "in_progress")


@dataclass(frozen=True)
class Actor:
    """What the caller is to this finding."""

    manages_service: bool
    coordinator: bool
    safeguarding_lead: bool
    citizen_inspector: bool


@dataclass(frozen=True)
class Outcome:
    to_status: str
    kind: str  # the history line's kind
    action_done: int | None = None  # 1-based number of the action this marks done


def _need(ok: bool, who: str) -> None:
    if not ok:
        raise Refused(403, "forbidden", f"Only {who} can do this.")


def _from(status: str, allowed: Sequence[str], what: str) -> None:
    if status not in allowed:
        raise Refused(
            409,
            "finding-state",
            f"A finding that is {status.replace('_', ' ')} cannot be {what}.",
        )


def apply(
    status: str, severity: str, update: Update, actor: Actor, actions_done: Sequence[bool]
) -> Outcome:
    """The state an update moves a finding to, or Refused saying why not."""
    safeguarding = severity == "safeguarding"
    manager = "the service's managers"
    if safeguarding != isinstance(update, Acknowledge | Refer | Close):
        raise Refused(
            409,
            "finding-state",
            "Safeguarding concerns are acknowledged, referred and closed; other findings "
            "are answered by the service."
            if safeguarding
            else "Only safeguarding concerns are acknowledged, referred or closed.",
        )
    match update:
        case Accept():
            _need(actor.manages_service, manager)
            _from(status, ("open",), "accepted")
            return Outcome("responded", "accepted")
        case Decline():
            _need(actor.manages_service, manager)
            _from(status, ("open",), "declined")
            return Outcome("declined", "declined")
        case Progress():
            _need(actor.manages_service, manager)
            _from(status, WORKING, "given progress")
            return Outcome("in_progress", "progress")
        case ActionDone(action=n):
            _need(actor.manages_service, manager)
            _from(status, WORKING, "given progress")
            if n > len(actions_done):
                raise Refused(422, "validation", f"There is no action {n}.")
            if actions_done[n - 1]:
                raise Refused(409, "action-done", f"Action {n} is already done.")
            rest = [d for i, d in enumerate(actions_done) if i != n - 1]
            return Outcome("done_by_service" if all(rest) else "in_progress", "action_done", n)
        case Done():
            _need(actor.manages_service, manager)
            _from(status, WORKING, "marked done")
            todo = [str(i + 1) for i, d in enumerate(actions_done) if not d]
            if todo:
                raise Refused(
                    409,
                    "actions-not-done",
                    f"{noun(len(todo), 'Action')} {listing(todo)} "
                    f"{noun(len(todo), 'is')} not done yet.",
                )
            return Outcome("done_by_service", "done")
        case Verify(outcome=outcome):
            # A manager cannot verify their own service's fix: that is the point.
            _need(actor.citizen_inspector and not actor.manages_service, "citizen inspectors")
            _from(status, ("done_by_service",), "verified before the service says it is done")
            if outcome == "confirmed":
                return Outcome("verified", "verified")
            return Outcome("in_progress", "not_verified")
        case Acknowledge():
            _need(actor.safeguarding_lead or actor.coordinator, "safeguarding leads")
            _from(status, ("raised",), "acknowledged")
            return Outcome("acknowledged", "acknowledged")
        case Refer():
            _need(actor.safeguarding_lead or actor.coordinator, "safeguarding leads")
            _from(status, ("raised", "acknowledged"), "referred")
            return Outcome("referred", "referred")
        case Close():
            _need(actor.safeguarding_lead or actor.coordinator, "safeguarding leads")
            _from(status, ("raised", "acknowledged", "referred"), "closed")
            return Outcome("closed", "closed")
    raise AssertionError(f"unhandled update {update!r}")  # pragma: no cover


def editable(
    severity: str, status: str, report_status: str | None, coordinator: bool, door_open: bool
) -> bool:
    """Whether a stored finding may still change. The raiser (or a coordinator) may add to
    a safeguarding concern at any time; other findings are the team's while the visit's
    door is open (visits.queries.door_closed), and the coordinator's until the report is
    published."""
    if severity == "safeguarding":
        return True
    if status != "draft":
        return False
    return report_status in (None, "draft", "factual_check") if coordinator else door_open


def is_overdue(status: str, due_on: dt.date | None, today: dt.date) -> bool:
    """A recommendation not answered by the end of its due date; derived, never stored."""
    return status == "open" and due_on is not None and today > due_on


def on_time(responded_on: dt.date | None, due_on: dt.date | None) -> bool | None:
    if responded_on is None or due_on is None:
        return None
    return responded_on <= due_on


def published_status(severity: str, recommendation: str | None) -> str:
    """What publication makes of a finding: a recommendation awaits its response."""
    if severity == "safeguarding":
        raise ValueError("safeguarding concerns are never published")
    return "open" if recommendation else "noted"
