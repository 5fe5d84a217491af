"""Writing notifications into the outbox, in the transaction of the change they announce.

Nothing is sent here: a worker (deliver.py) sends rows after their transaction commits, so
a rolled-back change announces nothing, and a committed one is never lost. The unique key
(event_key, channel, recipient) makes enqueueing the same event twice a no-op, so a retried
request or a second reminder scan cannot send anything twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args
from uuid import UUID

import asyncpg
import msgspec

# Encoded here rather than by a connection's codec: enqueue works on any connection.
_json = msgspec.json.Encoder()

# The events an organisation's webhooks can subscribe to.
Event = Literal[
    "report.factual_check",  # a draft report sent to the service to check its facts
    "report.published",  # findings published to the service's managers
    "response.due_soon",  # a response is due in 5 working days
    "response.overdue",
    "response.posted",
    "verification.requested",
    "safeguarding.raised",
]
EVENTS: tuple[Event, ...] = get_args(Event)


class Notice(msgspec.Struct, kw_only=True, frozen=True):
    """One event to announce: an email to people, and a JSON payload to webhooks."""

    event: str
    key: str  # unique per event occurrence, e.g. "report.published:<report id>"
    subject: str
    text: str  # the email body, plain text
    payload: dict[str, Any]  # the webhook body's "data" (and nothing personal)


async def enqueue(
    db: asyncpg.Connection, organisation_id: UUID, notice: Notice, emails: Sequence[str]
) -> int:
    """One outbox row per email address and per active webhook subscribed to the event.

    Returns how many rows were new (0 when this event was already enqueued).
    """
    if notice.event not in EVENTS:
        raise ValueError(f"unknown event {notice.event!r}")
    payload = {"event": notice.event, "key": notice.key, "data": notice.payload}
    added = await db.fetchval(
        """with recipients as (
               select 'email' channel, e recipient from unnest($3::text[]) e
               union
               select 'webhook', w.id::text from webhooks w
                where w.organisation_id = $1 and w.active and $2 = any(w.events)),
           added as (
               insert into outbox (organisation_id, event, event_key, channel, recipient,
                                   subject, body, payload)
               select $1, $2, $4, channel, recipient, $5, $6, $7::text::jsonb from recipients
               on conflict (event_key, channel, recipient) do nothing
               returning 1)
           select count(*)::int from added""",
        organisation_id,
        notice.event,
        sorted({e.lower() for e in emails}),
        notice.key,
        notice.subject,
        notice.text,
        _json.encode(payload).decode(),
    )
    assert added is not None  # count(*): always a row
    return added
