"""The findings flow tells people, through a real SMTP server and a real webhook receiver,
each event exactly once, and only after the change committed."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from service.settings import Settings
from tests.conftest import Mailbox, Receiver, Worker
from tests.helpers import Api
from tests.scenes import CALL_BELLS, CONCERN, PUBLISHED_ON, Findings, signed_with


# The app sends mail to the test's SMTP server and webhooks to its receiver.
@pytest.fixture
def settings(mail_settings: Settings) -> Settings:
    return mail_settings


ALL = [
    "safeguarding.raised",
    "report.factual_check",
    "report.published",
    "response.posted",
    "verification.requested",
    "response.due_soon",
    "response.overdue",
]


async def test_findings_flow_emails_and_webhooks_arrive_exactly_once(
    api: Api,
    worker: Worker,
    smtp: Mailbox,
    receiver: Receiver,
) -> None:
    f = await Findings(api).build()
    r = await api.client.post(
        "/v1/webhooks", headers=f.coord, json={"url": receiver.url, "events": ALL}
    )
    assert r.status_code == 201, r.text
    hook = r.json()

    async def deliver_twice_at_once() -> None:
        await asyncio.gather(worker.deliver(), worker.deliver())
        await worker.deliver()

    # A safeguarding concern: the lead is told at once, without details.
    await f.raise_(f.ann, **CONCERN)
    # A request that fails changes nothing and announces nothing.
    bad = await f.raise_(f.ann, **{**CONCERN, "severity": "urgent"})
    assert bad.status_code == 422
    await deliver_twice_at_once()
    [(rcpts, _)] = smtp.messages
    assert rcpts == ["lead@example.org"]
    [msg] = smtp.parsed()
    assert "Bruising" not in msg.get_content() and "safeguarding" in msg["Subject"].lower()

    bells = (await f.raise_(f.ann, **CALL_BELLS)).json()
    report = await f.draft_report()
    await api.client.post(f"/v1/reports/{report['id']}/send", headers=f.coord)
    r = await f.publish(report, PUBLISHED_ON)
    assert r.status_code == 200, r.text
    # Publishing again (a retry) announces nothing new.
    await api.client.post(f"/v1/reports/{report['id']}/publish", headers=f.coord)
    plan = [{"action": "Audit", "owner": "Deputy", "target_date": "2026-03-01"}]
    await f.update(f.manager, bells["id"], type="accept", actions=plan)
    await f.update(f.manager, bells["id"], type="action_done", action=1)
    await deliver_twice_at_once()
    await deliver_twice_at_once()

    manager_email = f.s.manager["email"]
    got = Counter((m["Subject"].split(":")[0], m["To"]) for m in smtp.parsed())
    assert all(n == 1 for n in got.values()), got
    to = Counter(m["To"] for m in smtp.parsed())
    assert to[manager_email] == 2  # the factual check, then the published report
    published = next(m for m in smtp.parsed() if m["Subject"].startswith("Inspection report"))
    assert published["To"] == manager_email
    assert "Thursday 15 January 2026" in published.get_content()
    assert f"/public/reports/{report['id']}" in published.get_content()
    verify_to = {m["To"] for m in smtp.parsed() if m["Subject"].startswith("Please check a fix")}
    assert verify_to == {f.s.ann["email"], f.s.bob["email"]}  # the visit's citizens

    events = [json.loads(x["body"])["event"] for x in receiver.requests]
    assert sorted(events) == sorted(
        [
            "safeguarding.raised",
            "report.factual_check",
            "report.published",
            "response.posted",
            "verification.requested",
        ]
    )
    for x in receiver.requests:
        assert signed_with(hook["secret"], x["headers"], x["body"])
    concern_hook = next(
        json.loads(x["body"]) for x in receiver.requests if b"safeguarding" in x["body"]
    )
    assert set(concern_hook["data"]) == {"finding_id", "service_id"}  # ids only
    pending = await api.conn.fetchval("select count(*) from outbox where delivered_at is null")
    assert pending == 0
