"""Phones racing their own offline PUTs against a real server: one write, every twin a replay.

The test client runs requests one after another, so these go through a live granian server.
The test holds a table lock until every racing request is waiting on the database, so all
of them have started before any can write: the race happens every run, not by luck.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx

from service.settings import Settings
from tests.helpers import PASSWORD, Api
from tests.scenes import Scene, answers


async def _token(base: str, user: dict[str, Any], device: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post(
            "/v1/auth/token",
            json={"email": user["email"], "password": PASSWORD, "device": device},
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _ann_on_two_devices(
    api: Api, base: str, what: str
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A new ``what`` (submissions, findings) URL of a visit, and Ann on a phone and a tablet."""
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    phone = await _token(base, s.ann, "phone")
    tablet = await _token(base, s.ann, "tablet")
    return f"/v1/visits/{visit['id']}/{what}/{uuid.uuid4()}", phone, tablet


async def _race(
    settings: Settings, base: str, table: str, puts: list[tuple[str, dict[str, str], Any]]
) -> list[httpx.Response]:
    """Send every PUT at once while ``table`` is locked; release once all are waiting."""
    holder = await asyncpg.connect(settings.database_url)
    # A second connection looks: statistics views are a snapshot within a transaction.
    watcher = await asyncpg.connect(settings.database_url)
    try:
        tx = holder.transaction()
        await tx.start()
        # EXCLUSIVE lets plain reads through but stops SELECT ... FOR UPDATE and INSERT.
        await holder.execute(f"lock table {table} in exclusive mode")
        async with httpx.AsyncClient(base_url=base, timeout=120) as c:
            sent = [asyncio.ensure_future(c.put(u, headers=h, json=b)) for u, h, b in puts]
            # A condition, not a duration: every request is blocked inside the database.
            while await watcher.fetchval(
                """select count(*) from pg_stat_activity
                        where datname = current_database() and wait_event_type = 'Lock'"""
            ) < len(puts):
                done = [f for f in sent if f.done()]
                assert not done, [f.result().text for f in done]
                await asyncio.sleep(0.01)
            await tx.rollback()
            return list(await asyncio.gather(*sent))
    finally:
        await holder.close()
        await watcher.close()


async def test_four_identical_puts_racing_make_one_submission_and_three_replays(
    api: Api, settings: Settings, base_url: str
) -> None:
    url, phone, tablet = await _ann_on_two_devices(api, base_url, "submissions")
    body = {"state": "draft", "answers": answers(), "device": "Ann's phone"}

    results = await _race(
        settings, base_url, "submissions", [(url, h, body) for h in (phone, tablet, phone, tablet)]
    )

    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 200, 201], [r.text for r in results]
    # Every twin sees what a replay sees: the stored submission, byte for byte the same.
    assert all(r.json() == results[0].json() for r in results)
    assert len({r.headers["etag"] for r in results}) == 1
    assert await api.conn.fetchval("select count(*) from submissions") == 1
    assert await api.conn.fetchval("select count(*) from answers") == 2
    saves = "select count(*) from audit_log where action = 'submission.save'"
    assert await api.conn.fetchval(saves) == 1


async def test_a_racing_twin_with_other_answers_gets_the_draft_rules_not_a_retry(
    api: Api, settings: Settings, base_url: str
) -> None:
    url, phone, _ = await _ann_on_two_devices(api, base_url, "submissions")
    one = {"state": "draft", "answers": answers(respect=1)}
    two = {"state": "draft", "answers": answers(respect=4)}

    results = await _race(settings, base_url, "submissions", [(url, phone, one), (url, phone, two)])

    # The loser overwrites nothing: without If-Match it is told to fetch and merge (428).
    assert sorted(r.status_code for r in results) == [201, 428], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 201).json()
    stored = await api.conn.fetchval("select value from answers where question_key = 'respect'")
    assert int(stored) == winner["answers"][0]["value"]
    assert await api.conn.fetchval("select count(*) from submissions") == 1


async def test_four_identical_finding_puts_racing_make_one_finding(
    api: Api, settings: Settings, base_url: str
) -> None:
    url, phone, tablet = await _ann_on_two_devices(api, base_url, "findings")
    body = {"title": "Call bells left unanswered", "severity": "major", "domain": "safety"}

    results = await _race(
        settings, base_url, "findings", [(url, h, body) for h in (phone, tablet, phone, tablet)]
    )

    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 200, 201], [r.text for r in results]
    assert all(r.json() == results[0].json() for r in results)
    assert await api.conn.fetchval("select count(*) from findings") == 1
    assert await api.conn.fetchval("select count(*) from finding_updates") == 1
