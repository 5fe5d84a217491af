"""``/``: each person's home page, showing what their roles let them do here.

Slices add to it by registering a panel for a role (``@panel_for("coordinator")``): a
function that gets the caller and the connection and returns a template name and its
context (or None when it has nothing to show), called only for people with that role. The
coordinator's "what needs doing now" is such a panel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import get
from litestar.response import Template

from inspections.web.screens import NAV, screen, screens_router
from service.auth import AuthedRequest, Principal
from service.db import DB

Panel = Callable[[DB, Principal, AuthedRequest], Awaitable[tuple[str, dict[str, Any]] | None]]
# (who sees it, the panel), filled by the slices' pages modules at import (wiring imports
# them before building routes); shown in this order.
PANELS: list[tuple[str, Panel]] = []


def panel_for(role: str) -> Callable[[Panel], Panel]:
    """Register a home-page panel for people with ``role`` (nobody else's page asks it)."""

    def register(panel: Panel) -> Panel:
        PANELS.append((role, panel))
        return panel

    return register


# What each section is for, in a sentence, for the home page's list.
PURPOSE = {
    "/people": "Invite people, record training and safeguarding checks, manage devices.",
    "/services": "The services you inspect: addresses, locations and managers.",
    "/checklists": "Inspection checklists: view, import from a spreadsheet, publish.",
    "/visits": "Schedule visits, choose the team, see what was found.",
    "/reports": "Review findings, send for factual check and publish reports.",
    "/moderation": "Approve what was added after publication before the public sees it.",
    "/concerns": "Safeguarding concerns to acknowledge, refer and close.",
    "/my/findings": "Recommendations for the services you manage, and your responses.",
    "/scorecards": "How each service is doing, from citizens and professionals.",
    "/league": "Services of one kind side by side.",
    "/app/": "Inspect on your phone, with or without signal.",
    "/settings": "How long data is kept, findings, scorecards and the public profile.",
    "/webhooks": "Send events to your other systems; rotate their signing secrets.",
}


@get("/", name="home")
async def home(request: AuthedRequest, db: DB) -> Template:
    user = request.user
    shown = [await panel(db, user, request) for role, panel in PANELS if user.has(role)]
    panels = [p for p in shown if p is not None]
    sections = [
        {"href": i.href, "label": i.label, "purpose": PURPOSE.get(i.href, "")}
        for i in NAV
        if i.href != "/" and (not i.roles or user.has(*i.roles))
    ]
    name = await db.fetchval("select display_name from users where id = $1", user.user_id)
    return screen(request, "web/home.html", name=name, panels=panels, sections=sections)


router = screens_router("/", [home])
