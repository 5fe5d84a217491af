"""/webhooks: the organisation's webhooks as a screen (coordinators).

List them (URL, events, active, the latest notification, a previous secret's overlap), add
one, deactivate one and rotate its secret: each through the function the JSON route calls
(``routes.register_webhook``, ``webhook_items``, ``deactivate_webhook``, ``rotate_secret``),
behind the same guard, so the URL rules, the refusal of private addresses, the 404 for
another organisation's webhook and the audit lines are the API's own.

A new or rotated secret is shown once, on the page that answers the form's POST: never in
a URL (no redirect carries it), never stored for a later page, and like every page it is
sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from inspections.accounts.mail import when
from inspections.notifications.outbox import EVENTS
from inspections.notifications.pages import EVENT_WORDS
from inspections.notifications.routes import (
    Notification,
    WebhookCreate,
    WebhookCreated,
    WebhookListed,
    WebhookSecretRotated,
    deactivate_webhook,
    register_webhook,
    rotate_secret,
    webhook_items,
)
from inspections.web.screens import (
    Refused,
    form_screen,
    read_form,
    screen,
    screens_router,
    see_other,
    submit,
)
from inspections.wording import long_date, plural
from service.auth import AuthedRequest, coordinator_only
from service.db import DB
from service.schema import cursor_after
from service.settings import Settings
from service.state import AppState

# The form is read as the API's body itself (WebhookCreate): the same fields and rules.
LABELS = {"url": "URL", "events": "Events"}
PLAIN = {
    "url": "Enter the URL that receives the notifications, like https://example.org/hook",
    "events": "Choose at least one event",
}


def _event_words(event: str) -> str:
    return EVENT_WORDS.get(event, event)


def _last_words(n: Notification | None, settings: Settings) -> str:
    """The latest notification's outcome, worded as the /notifications page words it."""
    if n is None:
        return "Nothing sent to it yet."
    what = _event_words(n.event)
    if n.status == "delivered" and n.delivered_at:
        return f"Last notification ({what}) delivered on {when(settings, n.delivered_at)}."
    tries = plural(n.attempts, "try")
    error = f": {n.last_error}" if n.last_error else ""
    if n.status == "failed" and n.failed_at:
        failed = when(settings, n.failed_at)
        return f"Last notification ({what}) failed on {failed} after {tries}{error}."
    if n.attempts:
        return f"Last notification ({what}) waiting to send, after {tries}{error}."
    return f"Last notification ({what}) waiting to send."


def _row(hook: WebhookListed, settings: Settings) -> dict[str, Any]:
    until, last = hook.previous_secret_valid_until, hook.last_notification
    return {
        "hook": hook,
        "events": [_event_words(e) for e in hook.events],
        "added": long_date(hook.created_at),
        "last": _last_words(last, settings),
        "failed": last is not None and last.status == "failed",
        "overlap": when(settings, until) if until else "",
    }


async def _list_page(
    request: AuthedRequest,
    db: DB,
    settings: Settings,
    *,
    cursor: str | None = None,
    errors: list[dict[str, str]] | None = None,
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Template:
    items, nxt = await webhook_items(db, request.user, cursor_after(cursor, dt.datetime, UUID), 50)
    return form_screen(
        request,
        "notifications/webhooks.html",
        status=status,
        errors=errors,
        values=values or {"url": "", "events": []},
        rows=[_row(h, settings) for h in items],
        events=[(e, _event_words(e)) for e in EVENTS],
        deactivated=request.query_params.get("deactivated") == "1",
        next_url="/webhooks?" + urlencode({"cursor": nxt}) if nxt else None,
    )


def _secret_page(
    request: AuthedRequest, settings: Settings, hook: WebhookCreated | WebhookSecretRotated
) -> Template:
    """The one page that shows a secret (the answer to the POST that made it)."""
    rotated = isinstance(hook, WebhookSecretRotated)
    return screen(
        request,
        "notifications/webhook_secret.html",
        hook=hook,
        rotated=rotated,
        events=[_event_words(e) for e in hook.events],
        until=when(settings, hook.previous_secret_valid_until) if rotated else "",
    )


@get("/", guards=coordinator_only)
async def webhooks_page(
    request: AuthedRequest, db: DB, state: AppState, cursor: FromQuery[str | None] = None
) -> Template:
    return await _list_page(request, db, state.settings, cursor=cursor)


@post("/", guards=coordinator_only, status_code=200)
async def add_webhook(request: AuthedRequest, db: DB, state: AppState) -> Template:
    raw = await request.form()
    values = {"url": raw.get("url", ""), "events": raw.getall("events", [])}
    made = await submit(
        db,
        await read_form(request, WebhookCreate, LABELS, PLAIN),
        lambda d: register_webhook(db, request, state.settings, d),
        LABELS,
    )
    if isinstance(made, Refused):
        return await _list_page(
            request, db, state.settings, errors=made.errors, values=values, status=made.status
        )
    return _secret_page(request, state.settings, made)


@post("/{webhook_id:uuid}/rotate-secret", guards=coordinator_only, status_code=200)
async def rotate_webhook_secret_page(
    webhook_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Template:
    # A refusal (404 another organisation's, 409 deactivated) is the error page, in the
    # API's words: the screen offers the button only on active webhooks.
    rotated = await rotate_secret(db, request, state.settings, webhook_id)
    return _secret_page(request, state.settings, rotated)


@post("/{webhook_id:uuid}/deactivate", guards=coordinator_only)
async def deactivate_webhook_page(
    webhook_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Response[None]:
    await deactivate_webhook(db, request, webhook_id)
    return see_other("/webhooks?deactivated=1")


router = screens_router(
    "/webhooks",
    [webhooks_page, add_webhook, rotate_webhook_secret_page, deactivate_webhook_page],
)
