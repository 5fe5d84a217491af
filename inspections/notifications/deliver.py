"""Sending what the outbox holds: emails over SMTP, signed webhook POSTs.

Delivery is at least once. A worker claims a small batch of due rows with
``FOR UPDATE SKIP LOCKED`` in one transaction, sends them, records each outcome and
commits: several app processes (and ``python -m service deliver`` beside them) never send
the same row at the same time, and the row locks vanish with a crashed process's
connection. A crash after sending but before the commit sends that batch again, so every
message carries an id that stays the same on a resend (email ``Message-ID``, webhook
``webhook-id``) and receivers can drop the duplicate.

Webhooks follow the Standard Webhooks convention (https://www.standardwebhooks.com):
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with
the base64-decoded part of the ``whsec_`` secret, so receivers can use its libraries.
After a rotation, and until the overlap ends, the header carries two such values separated
by a space (the new secret's first), as the convention allows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import hashlib
import hmac
import logging
import random
import secrets
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec

from inspections.notifications.addresses import checked_addresses
from inspections.notifications.webhook_secrets import (
    SecretKeyError,
    UndecryptableSecret,
    signing_secrets,
)
from service.settings import Settings
from service.state import app_state

log = logging.getLogger("inspections.notifications")

CHANNEL = "coassess_outbox"  # NOTIFYed by the outbox trigger (migration 0007)
BATCH = 10  # rows locked per transaction: a crash resends at most this many
SMTP_TIMEOUT_S = 30.0
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 6 * 3600.0
SECRET_PREFIX = "whsec_"
USER_AGENT = "coassess-webhooks/1"

_json = msgspec.json.Encoder()


class DeliveryReport(msgspec.Struct):
    """What one pass did: rows claimed, sent, to be retried, given up on."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, other: DeliveryReport) -> None:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.failed += other.failed


class _Outcome(NamedTuple):
    ok: bool
    error: str | None = None
    give_up: bool = False  # no retry can help (webhook gone, unusable message)


# Pure parts.


def new_secret() -> str:
    """A webhook secret in the Standard Webhooks form: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    # Standard Webhooks libraries key the HMAC with the base64-decoded part after whsec_;
    # a secret not in that form (none we issue) is used as its UTF-8 bytes.
    if secret.startswith(SECRET_PREFIX):
        with contextlib.suppress(binascii.Error, ValueError):
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff_s(attempts: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1, 2, ...).

    30 s doubling each time, capped at 6 h, with "equal jitter" (half fixed, half random)
    so that many rows failing together (a receiver down) do not all come back at once.
    """
    base = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(max(attempts, 1) - 1, 30))
    return base / 2 + rand() * base / 2


def message_id(outbox_id: int, event_key: str) -> str:
    """A stable Message-ID: the same row always has the same one, a resend included.

    The hash of the event key keeps ids from two databases (a restore, staging) apart.
    """
    tag = hashlib.sha256(event_key.encode()).hexdigest()[:12]
    return f"<outbox-{outbox_id}.{tag}@coassess>"


def compose_email(settings: Settings, row: Mapping[str, Any]) -> EmailMessage:
    msg = EmailMessage()  # policy.default refuses CR/LF in headers (no header injection)
    msg["From"] = settings.mail_from
    msg["To"] = row["recipient"]
    msg["Subject"] = row["subject"]
    msg["Message-ID"] = message_id(row["id"], row["event_key"])
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to us
    msg.set_content(row["body"])
    return msg


def _error(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:500]


# Sending.


def _smtp_send(settings: Settings, messages: Sequence[EmailMessage]) -> list[str | None]:
    """Send over one SMTP session (in a thread); an error per message, None when sent."""
    errors: list[str | None] = [None] * len(messages)
    done = 0
    try:
        assert settings.smtp_host
        cls = smtplib.SMTP_SSL if settings.smtp_port == 465 else smtplib.SMTP
        with cls(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            if settings.smtp_starttls and cls is smtplib.SMTP:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            for i, msg in enumerate(messages):
                try:
                    smtp.send_message(msg)
                except smtplib.SMTPServerDisconnected:
                    raise
                except (smtplib.SMTPException, OSError) as e:
                    errors[i] = _error(e)  # this message only (e.g. a refused recipient)
                done = i + 1
    except (smtplib.SMTPException, OSError) as e:
        for i in range(done, len(messages)):
            errors[i] = errors[i] or _error(e)
    return errors


async def _send_emails(settings: Settings, rows: Sequence[Mapping[str, Any]]) -> list[_Outcome]:
    outcomes: list[_Outcome | None] = [None] * len(rows)
    messages: list[EmailMessage] = []
    positions: list[int] = []
    for i, row in enumerate(rows):
        try:
            messages.append(compose_email(settings, row))
            positions.append(i)
        except (ValueError, TypeError) as e:  # e.g. a line break in the subject
            outcomes[i] = _Outcome(False, "unusable message: " + _error(e), give_up=True)
    if messages:
        errors = await asyncio.to_thread(_smtp_send, settings, messages)
        for i, err in zip(positions, errors, strict=True):
            outcomes[i] = _Outcome(err is None, err)
    return [o for o in outcomes if o is not None]


async def _post_webhook(
    http: httpx.AsyncClient, settings: Settings, row: Mapping[str, Any]
) -> _Outcome:
    if row["url"] is None or not row["active"]:
        return _Outcome(False, "webhook deactivated or deleted; not sent", give_up=True)
    parts = urlsplit(row["url"])
    hostname = parts.hostname or ""
    why, addresses = await checked_addresses(
        hostname,
        parts.port or (443 if parts.scheme == "https" else 80),
        settings.webhook_allow_private,
    )
    if why:
        return _Outcome(False, why)
    try:
        signing = signing_secrets(settings, row)
    except (UndecryptableSecret, SecretKeyError) as e:
        # Retried with backoff like any failure: restoring the key delivers it.
        return _Outcome(False, str(e))
    # Connect to the address just checked, not to the name (which DNS may answer
    # differently a moment later); Host and TLS SNI still name the host, and TLS still
    # verifies the certificate against that name (httpcore's server_hostname is the SNI).
    url = httpx.URL(row["url"]).copy_with(host=addresses[0].split("%", 1)[0])
    extensions = {"sni_hostname": hostname} if parts.scheme == "https" else {}
    body = _json.encode(row["payload"])
    msg_id, ts = str(row["id"]), int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        # Standard Webhooks: space-separated signatures, one per valid secret (the new and,
        # during a rotation's overlap, the previous one); a receiver accepts any match.
        "webhook-signature": " ".join(sign(s, msg_id, ts, body) for s in signing),
        "host": parts.netloc.rpartition("@")[2],
    }
    try:
        # One deadline for the whole exchange: httpx's own timeouts are per read, which a
        # receiver trickling bytes could stretch forever. The body is never read.
        async with asyncio.timeout(settings.webhook_timeout_s):
            async with http.stream(
                "POST",
                url,
                content=body,
                headers=headers,
                follow_redirects=False,
                extensions=extensions,
            ) as r:
                status = r.status_code
    except TimeoutError:
        return _Outcome(False, f"no answer within {settings.webhook_timeout_s:g} s")
    except Exception as e:  # network errors, bad URLs: this row fails, the batch goes on
        return _Outcome(False, _error(e))
    if 200 <= status < 300:
        return _Outcome(True)
    if 300 <= status < 400:
        return _Outcome(False, f"HTTP {status}: redirects are not followed")
    return _Outcome(False, f"HTTP {status}")


# Claiming and recording.

CLAIM_SQL = """
    select o.id, o.event_key, o.channel, o.recipient, o.subject, o.body, o.payload,
           o.attempts, w.id as webhook_id, w.url, w.active, w.secret, w.secret_encrypted,
           w.previous_secret_encrypted, w.previous_secret_until > now() as previous_valid
      from outbox o
      left join webhooks w on o.channel = 'webhook' and w.id::text = o.recipient
                          and w.organisation_id = o.organisation_id
     where o.delivered_at is null and o.failed_at is null and o.next_attempt_at <= now()
       and (o.channel = 'webhook' or $1)
     order by o.next_attempt_at, o.id
     limit $2
       for update of o skip locked"""

# clock_timestamp(), not now(): the transaction began before the sends.
MARK_SQL = """
    update outbox o
       set attempts = o.attempts + 1,
           delivered_at = case when r.ok then clock_timestamp() end,
           last_error = coalesce(r.error, o.last_error),
           next_attempt_at = case when r.ok then o.next_attempt_at
                                  else clock_timestamp() + make_interval(secs => r.delay) end,
           failed_at = case when not r.ok and (r.give_up or o.attempts + 1 >= $6)
                            then clock_timestamp() end
      from unnest($1::bigint[], $2::bool[], $3::text[], $4::float8[], $5::bool[])
           as r(id, ok, error, delay, give_up)
     where o.id = r.id
    returning o.id, o.delivered_at is not null as delivered, o.failed_at is not null as failed"""


async def _deliver_batch(
    pool: asyncpg.Pool, settings: Settings, http: httpx.AsyncClient, size: int
) -> DeliveryReport:
    report = DeliveryReport()
    async with pool.acquire() as conn, conn.transaction():
        # Email rows are left alone (pending, not failed) until an SMTP host is configured.
        rows = await conn.fetch(CLAIM_SQL, settings.smtp_host is not None, size)
        if not rows:
            return report
        emails = [r for r in rows if r["channel"] == "email"]
        hooks = [r for r in rows if r["channel"] == "webhook"]
        sent_emails, sent_hooks = await asyncio.gather(
            _send_emails(settings, emails),
            asyncio.gather(*(_post_webhook(http, settings, r) for r in hooks)),
        )
        outcomes = list(zip(emails, sent_emails, strict=True)) + list(
            zip(hooks, sent_hooks, strict=True)
        )
        marked = await conn.fetch(
            MARK_SQL,
            [r["id"] for r, _ in outcomes],
            [o.ok for _, o in outcomes],
            [o.error for _, o in outcomes],
            [0.0 if o.ok else backoff_s(r["attempts"] + 1) for r, o in outcomes],
            [o.give_up for _, o in outcomes],
            settings.deliver_max_attempts,
        )
    report.claimed = len(rows)
    report.delivered = sum(m["delivered"] for m in marked)
    report.failed = sum(m["failed"] for m in marked)
    report.retrying = report.claimed - report.delivered - report.failed
    for row, outcome in outcomes:
        if not outcome.ok:
            log.warning(
                "notification not delivered",
                extra={
                    "outbox_id": row["id"],
                    "channel": row["channel"],
                    "attempt": row["attempts"] + 1,
                    "error": outcome.error,
                },
            )
    return report


async def deliver_once(
    pool: asyncpg.Pool, settings: Settings, http: httpx.AsyncClient, limit: int = 50
) -> DeliveryReport:
    """Send up to ``limit`` due rows, ``BATCH`` at a time, and record each outcome."""
    report = DeliveryReport()
    while report.claimed < limit:
        size = min(BATCH, limit - report.claimed)
        batch = await _deliver_batch(pool, settings, http, size)
        report.add(batch)
        if batch.claimed < size:  # nothing more is due (or others hold it)
            break
    return report


# Running continuously: woken by NOTIFY, and polling in case a notification is missed.


class _Listener:
    """LISTEN on the outbox channel over a dedicated connection, reconnecting when lost."""

    def __init__(self, dsn: str, wake: asyncio.Event) -> None:
        self.dsn, self.wake = dsn, wake
        self._conn: asyncpg.Connection | None = None
        self._warned = False

    async def ensure(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        try:
            conn = await asyncpg.connect(self.dsn, timeout=10)
            await conn.add_listener(CHANNEL, self._on_notify)
            conn.add_termination_listener(lambda _c: self.wake.set())
        except Exception:  # any failure to listen only delays delivery until the next poll
            if not self._warned:
                log.warning("outbox listener unavailable; polling only until it reconnects")
                self._warned = True
            return
        self._conn, self._warned = conn, False

    def _on_notify(self, *_: object) -> None:
        self.wake.set()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()


async def _wait(wake: asyncio.Event, stop: asyncio.Event, interval_s: float) -> None:
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def run_worker(
    pool: asyncpg.Pool,
    settings: Settings,
    http: httpx.AsyncClient,
    dsn: str,
    stop: asyncio.Event,
    interval_s: float,
    limit: int = 50,
) -> DeliveryReport:
    """Deliver whenever woken or every ``interval_s`` until ``stop`` is set; totals."""
    total = DeliveryReport()
    wake = asyncio.Event()
    listener = _Listener(dsn, wake)
    try:
        while not stop.is_set():
            await listener.ensure()
            wake.clear()  # before the pass: a NOTIFY during it wakes the next one
            try:
                while not stop.is_set():
                    report = await deliver_once(pool, settings, http, limit)
                    total.add(report)
                    if report.claimed < limit:  # else more may be due: go on at once
                        break
            except Exception:  # a failed pass must not end the worker; the next one retries
                log.exception("notification delivery failed")
            await _wait(wake, stop, interval_s)
    finally:
        await listener.close()
    return total


async def deliver_forever(app: Any, stop: asyncio.Event | None = None) -> None:
    """The in-app worker (notifications_lifespan starts it): until ``stop`` or cancelled."""
    state = app_state(app)
    settings = state.settings
    assert settings.database_url  # the app's pool was made from it
    await run_worker(
        state.pool,
        settings,
        state.http,
        settings.database_url,
        stop or asyncio.Event(),
        settings.deliver_interval_s,
    )


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The client webhooks are posted with: no redirects, the webhook timeout, and no
    proxy or certificate settings read from the environment (HTTP(S)_PROXY would send
    every webhook, and what we checked, through someone else's host)."""
    return httpx.AsyncClient(
        trust_env=False,
        timeout=settings.webhook_timeout_s,
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
    )
