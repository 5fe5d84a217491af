"""Webhooks an organisation registers, and what its outbox has sent (coordinators only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import asyncpg
from litestar import Router, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta

from inspections.audit.log import audit
from inspections.notifications.addresses import refusal
from inspections.notifications.deliver import new_secret
from inspections.notifications.outbox import EVENTS, Event
from inspections.notifications.webhook_secrets import seal
from service.auth import AuthedRequest, Principal, coordinator_only
from service.db import DB, from_row
from service.errors import FieldError, conflict, not_found, problem_responses, unprocessable
from service.schema import Body, Page, Paging, page_of
from service.settings import Settings
from service.state import AppState

Status = Literal["pending", "delivered", "failed"]
# http is for a receiver on this machine (development, tests); anything else needs TLS.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class WebhookCreate(Body, kw_only=True):
    url: Annotated[str, Meta(min_length=1, max_length=2000, examples=["https://example.org/hook"])]
    events: Annotated[list[Event], Meta(min_length=1, max_length=len(EVENTS))]


class Webhook(Body, kw_only=True):
    id: UUID
    url: str
    events: list[str]
    active: bool
    created_at: dt.datetime


class WebhookCreated(Webhook, kw_only=True):
    secret: Annotated[
        str,
        Meta(
            description="Verifies the webhook-signature header (Standard Webhooks). "
            "Shown only in this response: store it now."
        ),
    ]


class WebhookSecretRotated(Webhook, kw_only=True):
    secret: Annotated[
        str,
        Meta(description="The new signing secret. Shown only in this response: store it now."),
    ]
    previous_secret_valid_until: Annotated[
        dt.datetime,
        Meta(
            description="Until then deliveries also carry a signature made with the "
            "secret this one replaced (WEBHOOK_SECRET_OVERLAP_S after the rotation)."
        ),
    ]


class Notification(Body, kw_only=True):
    id: int
    event: str
    channel: str
    recipient: str  # an email address, or a webhook id
    subject: str
    status: Status
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None
    failed_at: dt.datetime | None
    last_error: str | None


# An outbox row as a Notification: the page's list, the API's and each webhook's latest.
NOTIFICATION_COLUMNS = """id, event, channel, recipient, subject, attempts, created_at,
       next_attempt_at, delivered_at, failed_at, last_error,
       case when delivered_at is not null then 'delivered'
            when failed_at is not null then 'failed'
            else 'pending' end as status"""


class NotificationPage(Page[Notification]):
    """Outbox rows, newest first."""


class WebhookListed(Webhook, kw_only=True):
    previous_secret_valid_until: Annotated[
        dt.datetime | None,
        Meta(
            description="After a rotation, until when deliveries also carry a signature "
            "made with the previous secret; null when none does."
        ),
    ] = None
    last_notification: Annotated[
        Notification | None,
        Meta(description="The latest notification for it (as GET /v1/notifications lists it)."),
    ] = None


class WebhookPage(Page[WebhookListed]):
    """The organisation's webhooks, newest first (deactivated ones too)."""


def check_url(url: str) -> str:
    """https anywhere; http only to this machine. No credentials or fragment in the URL."""
    reason = None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts, host, reason = None, "", "is not a URL"
    if parts is not None:
        if parts.scheme not in ("https", "http") or not host:
            reason = "must be an https:// URL"
        elif parts.scheme == "http" and host not in LOCAL_HOSTS:
            reason = "must use https (http only for localhost)"
        elif parts.username is not None or parts.password is not None:
            reason = "must not carry credentials; verify deliveries by their signature"
        elif parts.fragment:
            reason = "must not have a #fragment"
        elif any(c.isspace() for c in url):
            reason = "must not contain spaces"
    if reason:
        raise unprocessable(f"url {reason}.", [FieldError(field="$.url", reason=reason)])
    return url


# --- what the routes and the /webhooks screen both do (webhook_pages.py) ------------------


async def register_webhook(
    db: asyncpg.Connection, request: AuthedRequest, settings: Settings, data: WebhookCreate
) -> WebhookCreated:
    """Register a webhook for the caller's organisation: the URL's rules, then where its host
    resolves (refused when private, unless allowed); the new secret is in the answer only."""
    url = check_url(data.url)
    parts = urlsplit(url)
    why = await refusal(
        parts.hostname or "",
        parts.port or (443 if parts.scheme == "https" else 80),
        settings.webhook_allow_private,
    )
    if why:
        raise unprocessable(f"url {why}.", [FieldError(field="$.url", reason=why)])
    events = list(dict.fromkeys(data.events))
    secret = new_secret()
    webhook_id = uuid4()  # made here: the stored secret is sealed to it
    row = await db.fetchrow(
        """insert into webhooks (id, organisation_id, url, secret_encrypted, events, created_by)
           values ($1, $2, $3, $4, $5, $6)
        returning id, url, events, active, created_at""",
        webhook_id,
        request.user.organisation_id,
        url,
        seal(settings, webhook_id, secret),
        events,
        request.user.user_id,
    )
    assert row is not None  # insert ... returning: always a row
    await audit(db, request, "webhook.create", "webhook", row["id"], {"url": url, "events": events})
    return WebhookCreated(**dict(row), secret=secret)


async def webhook_items(
    db: asyncpg.Connection,
    caller: Principal,
    after: tuple[Any, ...] = (None, None),
    limit: int = 50,
) -> tuple[list[WebhookListed], str | None]:
    """The caller's organisation's webhooks, newest first, each with its latest notification
    and, while it lasts, the end of its previous secret's overlap."""
    rows = await db.fetch(
        """select id, url, events, active, created_at,
                  case when previous_secret_until > now()
                        and previous_secret_encrypted is not null
                       then previous_secret_until end as previous_secret_valid_until
             from webhooks
            where organisation_id = $1
              and ($2::timestamptz is null or (created_at, id) < ($2, $3))
            order by created_at desc, id desc
            limit $4""",
        caller.organisation_id,
        *after,
        limit + 1,
    )
    page, nxt = page_of(rows, limit, "created_at", "id")
    # Each one's newest row only: walks the organisation's outbox index from its end.
    latest = await db.fetch(
        f"""select n.* from unnest($2::text[]) as w(recipient)
             cross join lateral (
                   select {NOTIFICATION_COLUMNS} from outbox o
                    where o.organisation_id = $1 and o.channel = 'webhook'
                      and o.recipient = w.recipient
                    order by o.id desc
                    limit 1) n""",
        caller.organisation_id,
        [str(r["id"]) for r in page],
    )
    last = {r["recipient"]: from_row(Notification, r) for r in latest}
    items = [from_row(WebhookListed, r, last_notification=last.get(str(r["id"]))) for r in page]
    return items, nxt


async def _own_webhook(db: asyncpg.Connection, caller: Principal, webhook_id: UUID) -> bool:
    """Lock one of the caller's organisation's webhooks; whether it is active. Another
    organisation's webhook is not found, as one that does not exist (the router's guard
    has already let only coordinators through)."""
    active = await db.fetchval(
        """select active from webhooks where id = $1 and organisation_id = $2 for update""",
        webhook_id,
        caller.organisation_id,
    )
    if active is None:
        raise not_found("webhook")
    return active


async def deactivate_webhook(
    db: asyncpg.Connection, request: AuthedRequest, webhook_id: UUID
) -> None:
    """Stop sending to one of the caller's organisation's webhooks (again: nothing changes)."""
    was_active = await _own_webhook(db, request.user, webhook_id)
    if was_active:
        await db.execute("update webhooks set active = false where id = $1", webhook_id)
        await audit(db, request, "webhook.deactivate", "webhook", webhook_id)


async def rotate_secret(
    db: asyncpg.Connection, request: AuthedRequest, settings: Settings, webhook_id: UUID
) -> WebhookSecretRotated:
    """A new signing secret for an active webhook; the one it replaces keeps signing for
    WEBHOOK_SECRET_OVERLAP_S. The new secret is in the answer only."""
    if not await _own_webhook(db, request.user, webhook_id):
        raise conflict(
            "The webhook is deactivated: nothing is sent to it, so it has no secret to rotate."
        )
    secret = new_secret()
    # The current sealed secret moves as it is: the webhook's id, its associated data, is
    # the same, so it needs no decrypting here.
    row = await db.fetchrow(
        """update webhooks
              set previous_secret_encrypted = coalesce(secret_encrypted, $2),
                  previous_secret_until = now() + make_interval(secs => $3),
                  secret_encrypted = $4,
                  secret = null
            where id = $1
        returning id, url, events, active, created_at,
                  previous_secret_until as previous_secret_valid_until""",
        webhook_id,
        # A row still in plain text (sealed at the next start): its secret becomes the
        # previous one, sealed now.
        await _sealed_plaintext(db, settings, webhook_id),
        settings.webhook_secret_overlap_s,
        seal(settings, webhook_id, secret),
    )
    assert row is not None  # locked by _own_webhook
    await audit(
        db,
        request,
        "webhook.rotate_secret",
        "webhook",
        webhook_id,
        {"previous_valid_until": row["previous_secret_valid_until"].isoformat()},
    )
    return WebhookSecretRotated(**dict(row), secret=secret)


async def _sealed_plaintext(
    db: asyncpg.Connection, settings: Settings, webhook_id: UUID
) -> bytes | None:
    plain = await db.fetchval("select secret from webhooks where id = $1", webhook_id)
    return None if plain is None else seal(settings, webhook_id, plain)


# --- the JSON routes ------------------------------------------------------------------


@post(
    "/webhooks",
    summary="Register a webhook; its signing secret is shown only in this response",
    description="The organisation's events are POSTed to the URL as JSON, signed as "
    "Standard Webhooks are (webhook-id, webhook-timestamp, webhook-signature: "
    "v1,<base64 HMAC-SHA256 of id.timestamp.body>). A 2xx answer is a delivery; "
    "anything else is retried with growing delays. Redirects are not followed.",
)
async def create_webhook(
    data: JSONBody[WebhookCreate], request: AuthedRequest, db: DB, state: AppState
) -> WebhookCreated:
    return await register_webhook(db, request, state.settings, data)


@get(
    "/webhooks",
    summary="The organisation's webhooks (without their secrets)",
    description="Each with its latest notification (delivered, failed or still being "
    "tried) and, after a rotation, until when the previous secret still signs.",
)
async def list_webhooks(request: AuthedRequest, db: DB, paging: Paging) -> WebhookPage:
    after = paging.after(dt.datetime, UUID)
    items, nxt = await webhook_items(db, request.user, after, paging.limit)
    return WebhookPage(items=items, next_cursor=nxt)


@delete(
    "/webhooks/{webhook_id:uuid}",
    summary="Deactivate a webhook: nothing more is sent to it",
    description="Notifications still waiting for it are marked failed when their turn comes.",
)
async def delete_webhook(webhook_id: FromPath[UUID], request: AuthedRequest, db: DB) -> None:
    await deactivate_webhook(db, request, webhook_id)


@post(
    "/webhooks/{webhook_id:uuid}/rotate-secret",
    summary="Give a webhook a new signing secret, shown only in this response",
    description="The previous secret stays valid for WEBHOOK_SECRET_OVERLAP_S (a day by "
    "default): until then each delivery's webhook-signature header carries two values, "
    "space-separated, the new secret's first (v1,<new> v1,<previous>), so the receiver can "
    "switch when it is ready; after it, only the new one. Rotating again within the overlap "
    "drops the oldest secret: only the two newest sign.",
    status_code=200,
    responses=problem_responses(409),
)
async def rotate_webhook_secret(
    webhook_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> WebhookSecretRotated:
    return await rotate_secret(db, request, state.settings, webhook_id)


@get(
    "/notifications",
    summary="What the organisation's outbox holds: pending, delivered and failed notifications",
    description="Nothing is deleted: a notification that could not be delivered after the "
    "last attempt stays here as failed, with its last error.",
)
async def list_notifications(
    request: AuthedRequest,
    db: DB,
    *,
    status: FromQuery[Status | None] = None,
    paging: Paging,
) -> NotificationPage:
    (before,) = paging.after(int)
    items, nxt = await outbox_items(db, request.user, status, before, paging.limit)
    return NotificationPage(items=items, next_cursor=nxt)


async def outbox_items(
    db: asyncpg.Connection,
    caller: Principal,
    status: Status | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[Notification], str | None]:
    """The caller's organisation's outbox, newest first (the API's list and the page's)."""
    rows = await db.fetch(
        f"""select {NOTIFICATION_COLUMNS}
             from outbox
            where organisation_id = $1
              and ($2::bigint is null or id < $2)
              and case $3::text
                      when 'pending' then delivered_at is null and failed_at is null
                      when 'delivered' then delivered_at is not null
                      when 'failed' then failed_at is not null
                      else true end
            order by id desc
            limit $4""",
        caller.organisation_id,
        before,
        status,
        limit + 1,
    )
    page, nxt = page_of(rows, limit, "id")
    return [from_row(Notification, r) for r in page], nxt


router = Router(
    "/v1",
    tags=["notifications"],
    guards=coordinator_only,
    route_handlers=[
        create_webhook,
        list_webhooks,
        delete_webhook,
        rotate_webhook_secret,
        list_notifications,
    ],
)
