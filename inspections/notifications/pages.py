"""/notifications: what the organisation's outbox sent, and what it could not (coordinators).

The page lists what ``GET /v1/notifications`` lists (``routes.outbox_items``), behind the
same guard; failed ones first, since the home panel sends coordinators here to see them.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

from litestar import get
from litestar.params import FromQuery
from litestar.response import Template

from inspections.notifications.routes import outbox_items
from inspections.web.screens import screen, screens_router
from inspections.wording import long_date
from service.auth import AuthedRequest, coordinator_only
from service.db import DB
from service.schema import cursor_after

# What each kind of notification is, in words (invite emails and the findings' events).
EVENT_WORDS = {
    "invite.sent": "Invite",
    "password.reset_requested": "Password reset link",
    "report.factual_check": "Report sent for a factual check",
    "report.published": "Report published",
    "response.due_soon": "Response due soon",
    "response.overdue": "Response overdue",
    "response.posted": "Response posted",
    "verification.requested": "Verification requested",
    "safeguarding.raised": "Safeguarding concern raised",
}
Shown = Literal["failed", "pending", "delivered", "all"]


@get("/", guards=coordinator_only)
async def notifications_page(
    request: AuthedRequest,
    db: DB,
    status: FromQuery[Shown] = "failed",
    cursor: FromQuery[str | None] = None,
) -> Template:
    (before,) = cursor_after(cursor, int)
    items, nxt = await outbox_items(
        db, request.user, None if status == "all" else status, before, 50
    )
    return screen(
        request,
        "notifications/notifications.html",
        items=[
            {
                "n": n,
                "what": EVENT_WORDS.get(n.event, n.event.replace(".", " ").replace("_", " ")),
                "to": n.recipient if n.channel == "email" else "a webhook",
                "when": long_date(n.failed_at or n.delivered_at or n.created_at),
            }
            for n in items
        ],
        which=status,
        next_url="/notifications?" + urlencode({"status": status, "cursor": nxt}) if nxt else None,
    )


router = screens_router("/notifications", [notifications_page])
