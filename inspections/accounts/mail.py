"""Emails of the accounts slice (invites, password resets) into the notifications outbox.

They go through the same outbox and delivery worker as every other email, written in the
transaction of the change, so a rolled-back request sends nothing. Unlike findings'
notices they are written here rather than through ``outbox.enqueue``: they are for one
person, carry a secret link, and must never reach an organisation's webhooks. The secret
is only in the body (which no API lists), never in the subject or the payload.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from service.settings import Settings

_json = msgspec.json.Encoder()

# Outbox events of this slice (email only; webhooks cannot subscribe to them).
INVITE_SENT = "invite.sent"
RESET_REQUESTED = "password.reset_requested"


def link_base(settings: Settings) -> str:
    """Where links in emails point: PUBLIC_BASE_URL, else the address serve listens on.

    Never the request's Host header: anyone can send a forged one, and a password-reset
    email pointing at their site would hand them the token.
    """
    return (settings.public_base_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def one_line(text: str) -> str:
    """A name fit for a subject line (no line breaks, which would also be refused)."""
    return re.sub(r"\s+", " ", text).strip()


def when(settings: Settings, moment: dt.datetime) -> str:
    """A time as people read it where the service runs: "14 May 2026 at 10:00 BST"."""
    try:
        zone = ZoneInfo(settings.site_timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = moment.astimezone(zone)
    return f"{local.day} {local:%B %Y} at {local:%H:%M %Z}"


async def enqueue_email(
    db: asyncpg.Connection,
    organisation_id: UUID,
    event: str,
    key: str,
    to: str,
    subject: str,
    text: str,
    facts: dict[str, Any],
) -> None:
    """One outbox email row; the same key again is a no-op (a retried request)."""
    await db.execute(
        """insert into outbox (organisation_id, event, event_key, channel, recipient,
                               subject, body, payload)
           values ($1, $2, $3, 'email', lower($4), $5, $6, $7::text::jsonb)
           on conflict (event_key, channel, recipient) do nothing""",
        organisation_id,
        event,
        key,
        to,
        one_line(subject),
        text,
        _json.encode({"event": event, "key": key, "data": facts}).decode(),
    )
