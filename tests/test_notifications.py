"""Notifications: the outbox delivered to a real SMTP server and a real webhook receiver.

aiosmtpd stands in for the mail relay and a small stdlib HTTP server for an organisation's
webhook receiver, both on 127.0.0.1; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from inspections.notifications.deliver import (
    BACKOFF_CAP_S,
    backoff_s,
    message_id,
    sign,
)
from inspections.notifications.outbox import Notice, enqueue
from service import db
from service.app import create_app
from service.devstack import SeaweedFS, free_port
from service.settings import Settings
from tests.conftest import ROOT, Mailbox, Receiver, Worker, make_settings
from tests.helpers import Api, assert_problem, deliver_once
from tests.scenes import org_with_webhook, signed_with

# Mailbox and receiver.


# The app sends mail to the test's SMTP server and webhooks to its receiver.
@pytest.fixture
def settings(mail_settings: Settings) -> Settings:
    return mail_settings


NOTICE = Notice(
    event="report.published",
    key="report.published:7d1d7b1e-0000-4000-8000-000000000001",
    subject="Report published: Rosewood care home",
    text="The report of the visit on 3 March is published.\nPlease respond by 31 March.",
    payload={"report_id": "7d1d7b1e-0000-4000-8000-000000000001", "service": "Rosewood"},
)
EMAILS = ["manager@rosewood.example", "deputy@rosewood.example"]
EVENTS = ("report.published", "response.overdue")  # what the tests' webhooks ask for


async def _enqueue(api: Api, org: str, notice: Notice, emails: list[str]) -> int:
    """Through outbox.enqueue in a committed transaction, as a domain slice would."""
    await db._init_connection(api.conn)  # the pool's jsonb codec
    async with api.conn.transaction():
        return await enqueue(api.conn, UUID(org), notice, emails)


async def _coordinator(api: Api, org: str) -> dict[str, str]:
    return await api.login(await api.user(org, "coordinator"))


async def _rows(api: Api) -> list[dict[str, Any]]:
    return [dict(r) for r in await api.conn.fetch("select * from outbox order by id")]


# Registering webhooks.


async def test_coordinators_register_webhooks(api: Api) -> None:
    org, other_org = await api.org(), await api.org("Southshire Healthwatch")
    coord = await _coordinator(api, org)
    r = await api.client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.org/coassess", "events": ["report.published"]},
        headers=coord,
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert set(hook) == {"id", "url", "events", "active", "created_at", "secret"}
    assert hook["secret"].startswith("whsec_")
    assert len(base64.b64decode(hook["secret"].removeprefix("whsec_"))) == 32
    assert hook["events"] == ["report.published"] and hook["active"] is True

    listed = (await api.client.get("/v1/webhooks", headers=coord)).json()
    assert [h["id"] for h in listed["items"]] == [hook["id"]]
    assert "secret" not in listed["items"][0]
    assert hook["secret"] not in json.dumps(listed)

    citizen = await api.login(await api.user(org, "citizen_inspector"))
    body = {"url": "https://x.example.org/", "events": ["report.published"]}
    assert_problem(await api.client.post("/v1/webhooks", json=body, headers=citizen), 403)
    assert_problem(await api.client.get("/v1/webhooks", headers=citizen), 403)
    assert_problem(await api.client.get("/v1/notifications", headers=citizen), 403)
    assert_problem(await api.client.delete(f"/v1/webhooks/{hook['id']}", headers=citizen), 403)

    stranger = await _coordinator(api, other_org)
    r = await api.client.delete(f"/v1/webhooks/{hook['id']}", headers=stranger)
    assert_problem(r, 404, "not-found")
    assert (await api.client.get("/v1/webhooks", headers=stranger)).json()["items"] == []

    r = await api.client.delete(f"/v1/webhooks/{hook['id']}", headers=coord)
    assert r.status_code == 204, r.text
    listed = (await api.client.get("/v1/webhooks", headers=coord)).json()
    assert listed["items"][0]["active"] is False
    assert (await api.client.delete(f"/v1/webhooks/{hook['id']}", headers=coord)).status_code == 204

    actions = await api.conn.fetch(
        "select action, summary from audit_log where object_type = 'webhook' order by id"
    )
    assert [a["action"] for a in actions] == ["webhook.create", "webhook.deactivate"]
    assert "whsec_" not in str(actions[0]["summary"])  # the secret is never logged


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://hooks.example.org/x", "events": ["report.published"]}, "$.url"),
        ({"url": "ftp://hooks.example.org/x", "events": ["report.published"]}, "$.url"),
        ({"url": "not a url", "events": ["report.published"]}, "$.url"),
        ({"url": "https://user:pw@hooks.example.org/", "events": ["report.published"]}, "$.url"),
        ({"url": "https://hooks.example.org/x", "events": ["report.eaten"]}, "$.events[0]"),
        ({"url": "https://hooks.example.org/x", "events": []}, "$.events"),
        ({"url": "https://hooks.example.org/x"}, "$.events"),
        ({"url": "https://h.example.org/", "events": ["report.published"], "x": 1}, "$.x"),
    ],
)
async def test_bad_webhooks_are_refused(api: Api, body: dict[str, Any], field: str) -> None:
    coord = await _coordinator(api, await api.org())
    problem = assert_problem(
        await api.client.post("/v1/webhooks", json=body, headers=coord), 422, "validation"
    )
    assert [e["field"] for e in problem["errors"]] == [field], problem
    assert await api.conn.fetchval("select count(*) from webhooks") == 0


# Delivering.


async def test_each_notification_is_delivered_once(
    api: Api, worker: Worker, smtp: Mailbox, receiver: Receiver
) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, *EVENTS)
    assert await _enqueue(api, org, NOTICE, EMAILS) == 3

    # Two workers at once: the rows one holds are skipped by the other, never sent twice.
    first, second = await asyncio.gather(worker.deliver(), worker.deliver())
    assert first.claimed + second.claimed == 3
    assert first.delivered + second.delivered == 3
    assert (await worker.deliver()).claimed == 0
    assert (await worker.deliver()).claimed == 0

    rows = await _rows(api)
    assert all(r["delivered_at"] and r["attempts"] == 1 and not r["failed_at"] for r in rows)
    by_recipient = {r["recipient"]: r for r in rows}

    assert sorted(rcpt for rcpts, _ in smtp.messages for rcpt in rcpts) == sorted(EMAILS)
    for msg in smtp.parsed():
        row = by_recipient[msg["To"]]
        assert msg["From"] == "Co-assessment <no-reply@coassess.test>"
        assert msg["Subject"] == NOTICE.subject
        assert msg.get_content().replace("\r\n", "\n").strip() == NOTICE.text  # CRLF on the wire
        assert msg["Message-ID"] == message_id(row["id"], NOTICE.key)
        assert msg["Message-ID"] == f"<outbox-{row['id']}.{_tag(NOTICE.key)}@coassess>"

    assert len(receiver.requests) == 1
    posted = receiver.requests[0]
    headers = posted["headers"]
    assert posted["method"] == "POST" and posted["path"] == "/hooks/coassess"
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == str(by_recipient[hook["id"]]["id"])
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert signed_with(hook["secret"], headers, posted["body"])
    assert not signed_with("whsec_" + base64.b64encode(b"x" * 32).decode(), headers, posted["body"])
    assert json.loads(posted["body"]) == {
        "event": NOTICE.event,
        "key": NOTICE.key,
        "data": NOTICE.payload,
    }

    # The same event again (a retried request, a second scan): nothing new, nothing sent.
    assert await _enqueue(api, org, NOTICE, EMAILS) == 0
    assert (await worker.deliver()).claimed == 0
    assert len(smtp.messages) == 2 and len(receiver.requests) == 1
    assert len(await _rows(api)) == 3

    page = (await api.client.get("/v1/notifications?status=delivered", headers=coord)).json()
    assert len(page["items"]) == 3 and {i["status"] for i in page["items"]} == {"delivered"}
    assert (await api.client.get("/v1/notifications?status=pending", headers=coord)).json()[
        "items"
    ] == []


def _tag(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


async def test_a_failing_receiver_is_retried_then_given_up(
    api: Api, worker: Worker, receiver: Receiver, settings: Settings
) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, *EVENTS)
    receiver.fail = 1
    assert await _enqueue(api, org, NOTICE, []) == 1

    report = await worker.deliver()
    assert (report.claimed, report.delivered, report.retrying, report.failed) == (1, 0, 1, 0)
    row = await api.conn.fetchrow(
        "select *, next_attempt_at > now() + interval '10 seconds' as later from outbox"
    )
    assert row["attempts"] == 1 and row["last_error"] == "HTTP 500" and row["later"]
    assert row["delivered_at"] is None and row["failed_at"] is None
    assert (await worker.deliver()).claimed == 0  # not due yet

    await api.conn.execute("update outbox set next_attempt_at = now()")
    assert (await worker.deliver()).delivered == 1
    assert (await worker.deliver()).claimed == 0
    await api.conn.execute("update outbox set next_attempt_at = now()")
    assert (await worker.deliver()).claimed == 0  # delivered rows are never due again
    assert len(receiver.requests) == 2
    first, again = receiver.requests
    assert first["headers"]["webhook-id"] == again["headers"]["webhook-id"]  # dedupe key
    assert signed_with(hook["secret"], again["headers"], again["body"])
    row = await api.conn.fetchrow("select * from outbox")
    assert row["delivered_at"] is not None and row["attempts"] == 2

    # A receiver that never recovers: failed after DELIVER_MAX_ATTEMPTS, kept and listed.
    receiver.fail = 100
    gone = msgspec.structs.replace(NOTICE, key="report.published:other")
    assert await _enqueue(api, org, gone, []) == 1
    for attempt in range(1, settings.deliver_max_attempts + 1):
        await api.conn.execute(
            "update outbox set next_attempt_at = now() where event_key = $1", gone.key
        )
        report = await worker.deliver()
        assert report.failed == (1 if attempt == settings.deliver_max_attempts else 0)
    row = await api.conn.fetchrow("select * from outbox where event_key = $1", gone.key)
    assert row["failed_at"] is not None and row["delivered_at"] is None
    assert row["attempts"] == settings.deliver_max_attempts and row["last_error"] == "HTTP 500"
    await api.conn.execute("update outbox set next_attempt_at = now()")
    assert (await worker.deliver()).claimed == 0
    assert len(receiver.requests) == 2 + settings.deliver_max_attempts

    failed = (await api.client.get("/v1/notifications?status=failed", headers=coord)).json()
    assert [(i["id"], i["status"], i["channel"], i["recipient"]) for i in failed["items"]] == [
        (row["id"], "failed", "webhook", hook["id"])
    ]
    assert failed["items"][0]["last_error"] == "HTTP 500"
    everything = (await api.client.get("/v1/notifications?limit=1", headers=coord)).json()
    assert [i["id"] for i in everything["items"]] == [row["id"]]  # newest first
    rest = await api.client.get(
        f"/v1/notifications?limit=1&cursor={everything['next_cursor']}", headers=coord
    )
    assert [i["status"] for i in rest.json()["items"]] == ["delivered"]
    assert_problem(await api.client.get("/v1/notifications?status=lost", headers=coord), 422)

    # Another organisation's coordinator sees none of it.
    stranger = await _coordinator(api, await api.org("Southshire Healthwatch"))
    assert (await api.client.get("/v1/notifications", headers=stranger)).json()["items"] == []


async def test_a_deactivated_webhook_gets_nothing(
    api: Api, worker: Worker, receiver: Receiver
) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, *EVENTS)
    assert await _enqueue(api, org, NOTICE, []) == 1
    r = await api.client.delete(f"/v1/webhooks/{hook['id']}", headers=coord)
    assert r.status_code == 204
    report = await worker.deliver()
    assert (report.claimed, report.failed) == (1, 1)
    row = await api.conn.fetchrow("select * from outbox")
    assert row["failed_at"] is not None and "deactivated" in row["last_error"]
    assert receiver.requests == []
    # ...and new events no longer go to it.
    assert await _enqueue(api, org, msgspec.structs.replace(NOTICE, key="k2"), []) == 0


async def test_redirects_and_unreachable_receivers_are_failures(api: Api, worker: Worker) -> None:
    org = await api.org()
    coord = await _coordinator(api, org)

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(307)
            self.send_header("location", "http://127.0.0.1:1/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        await api.webhook(coord, f"http://127.0.0.1:{server.server_address[1]}/", *EVENTS)
        await api.webhook(coord, f"http://127.0.0.1:{free_port()}/", *EVENTS)  # nobody listening
        assert await _enqueue(api, org, NOTICE, []) == 2
        report = await worker.deliver()
    finally:
        server.shutdown()
        server.server_close()
    assert (report.claimed, report.retrying) == (2, 2)
    errors = sorted(r["last_error"] for r in await _rows(api))
    assert errors[0].startswith("ConnectError")
    assert errors[1] == "HTTP 307: redirects are not followed"


async def test_without_smtp_host_emails_wait(
    api: Api, worker: Worker, smtp: Mailbox, settings: Settings
) -> None:
    org = await api.org()
    assert await _enqueue(api, org, NOTICE, EMAILS[:1]) == 1
    no_smtp = msgspec.structs.replace(settings, smtp_host=None)
    assert (await worker.deliver(no_smtp)).claimed == 0
    row = await api.conn.fetchrow("select * from outbox")
    assert row["attempts"] == 0 and row["failed_at"] is None and row["delivered_at"] is None
    assert row["last_error"] is None
    # Once a host is configured they go.
    assert (await worker.deliver()).delivered == 1
    assert len(smtp.messages) == 1


async def test_an_unreachable_smtp_server_is_retried(
    api: Api, worker: Worker, smtp: Mailbox, settings: Settings
) -> None:
    org = await api.org()
    assert await _enqueue(api, org, NOTICE, EMAILS) == 2
    down = msgspec.structs.replace(settings, smtp_port=free_port())
    report = await worker.deliver(down)
    assert (report.claimed, report.retrying) == (2, 2)
    rows = await _rows(api)
    assert all(r["attempts"] == 1 and r["last_error"] and not r["failed_at"] for r in rows)
    await api.conn.execute("update outbox set next_attempt_at = now()")
    assert (await worker.deliver()).delivered == 2
    assert len(smtp.messages) == 2


# The worker inside the app, and beside it.


async def _listening(api: Api, other_than: frozenset[int] = frozenset()) -> int:
    """The backend pid of a delivery worker's LISTEN connection on this test's database."""
    deadline = time.monotonic() + 120  # a bound for a loaded machine, not a duration asserted
    while time.monotonic() < deadline:
        pids = {
            r["pid"]
            for r in await api.conn.fetch(
                """select pid from pg_stat_activity
                    where datname = current_database() and query = 'LISTEN "coassess_outbox"'"""
            )
        } - other_than
        if pids:
            return pids.pop()
        await asyncio.sleep(0.05)
    raise AssertionError("no worker is listening")


async def _arrived(smtp: Mailbox, n: int, within_s: float) -> float:
    start = time.monotonic()
    while len(smtp.messages) < n:
        assert time.monotonic() - start < within_s, f"{len(smtp.messages)} of {n} arrived"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@contextlib.asynccontextmanager
async def _worker_app(
    database_url: str, seaweed: SeaweedFS, smtp: Mailbox, interval_s: float
) -> AsyncIterator[AsyncTestClient]:
    s = make_settings(
        database_url,
        seaweed,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        deliver_interval_s=interval_s,
    )
    async with AsyncTestClient(app=create_app(s)) as c:
        yield c


async def test_the_app_delivers_on_its_own(
    api: Api, smtp: Mailbox, database_url: str, seaweed: SeaweedFS
) -> None:
    org = await api.org()
    async with _worker_app(database_url, seaweed, smtp, 0.2):
        assert await _enqueue(api, org, NOTICE, EMAILS) == 2
        await _arrived(smtp, 2, within_s=5)
        await asyncio.sleep(0.5)  # a few more polls: still only these two
        assert len(smtp.messages) == 2
    assert all(r["delivered_at"] for r in await _rows(api))


async def test_a_commit_wakes_the_worker_and_it_listens_again_when_cut_off(
    api: Api, smtp: Mailbox, database_url: str, seaweed: SeaweedFS
) -> None:
    """Polling every minute, yet a committed notice arrives at once: LISTEN/NOTIFY."""
    org = await api.org()
    async with _worker_app(database_url, seaweed, smtp, 60):
        pid = await _listening(api)
        await _enqueue(api, org, NOTICE, EMAILS[:1])
        assert await _arrived(smtp, 1, within_s=5) < 5

        # The listening connection is lost (a database restart, a proxy): it comes back.
        await api.conn.execute("select pg_terminate_backend($1)", pid)
        await _listening(api, other_than=frozenset({pid}))
        await _enqueue(api, org, msgspec.structs.replace(NOTICE, key="k2"), EMAILS[:1])
        await _arrived(smtp, 2, within_s=5)


async def test_deliver_command(api: Api, smtp: Mailbox, database_url: str) -> None:
    org = await api.org()
    await _enqueue(api, org, NOTICE, EMAILS)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "LOG_LEVEL": "WARNING",
    }
    assert await deliver_once(env) == {"claimed": 2, "delivered": 2, "retrying": 0, "failed": 0}
    assert len(smtp.messages) == 2

    # Without --once it keeps going (woken by commits) until SIGTERM.
    forever = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "deliver",
        cwd=ROOT, env={**env, "DELIVER_INTERVAL_S": "60"}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await _listening(api)
        await _enqueue(api, org, msgspec.structs.replace(NOTICE, key="k2"), EMAILS[:1])
        await _arrived(smtp, 3, within_s=5)
    finally:
        forever.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(forever.communicate(), 30)
    assert forever.returncode == 0
    assert json.loads(out)["delivered"] == 1


# Pure parts.


def test_sign_matches_the_standard_webhooks_vector_and_a_hand_computed_hmac() -> None:
    # The test vector published with the Standard Webhooks specification.
    assert (
        sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b'{"event":"report.published"}'
    mac = hmac.new(key, b"42.1700000000." + body, hashlib.sha256).digest()
    assert sign(secret, "42", 1700000000, body) == "v1," + base64.b64encode(mac).decode()
    assert sign(secret, "43", 1700000000, body) != sign(secret, "42", 1700000000, body)


def test_backoff_grows_with_jitter_and_caps() -> None:
    top = [backoff_s(n, rand=lambda: 1.0) for n in range(1, 12)]
    assert top[:4] == [30, 60, 120, 240]
    assert all(a < b or b == BACKOFF_CAP_S for a, b in zip(top, top[1:], strict=False))
    assert top[-1] == BACKOFF_CAP_S == 6 * 3600
    assert backoff_s(1, rand=lambda: 0.0) == 15  # half fixed, half random
    assert backoff_s(10_000, rand=lambda: 1.0) == BACKOFF_CAP_S  # no overflow
    for n in (1, 5, 30):
        base = min(BACKOFF_CAP_S, 30 * 2 ** (n - 1))
        assert all(base / 2 <= backoff_s(n) <= base for _ in range(200))
    assert len({backoff_s(5) for _ in range(20)}) > 1  # jittered


def test_message_ids_are_stable_per_row() -> None:
    assert message_id(7, "report.published:a") == message_id(7, "report.published:a")
    assert message_id(7, "report.published:a") != message_id(8, "report.published:a")
    assert message_id(7, "report.published:a") != message_id(7, "report.published:b")
