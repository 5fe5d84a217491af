"""A change answered 2xx is never read back stale, by any worker, even on a starved CPU.

A live granian server with two worker processes, while one busy-looping process per core
competes for the CPU. Each change goes through one connection; right after its answer,
reads go through fresh connections until both workers have answered (each connection's
worker is identified from /proc, so "both workers" is checked, not hoped for), and every
single read must show the new state. No sleeps, no durations.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from scripts.bench.harness import children
from service.settings import Settings
from tests.conftest import start_live_server, stop_live_server
from tests.helpers import PASSWORD, Api
from tests.scenes import Live, Scene, fresh_request

WORKERS = 2
ROUNDS = 3  # changes per test (each followed by reads that must reach both workers)
BATCH = 8  # fresh connections opened at once
MAX_READS = 400  # a bound, not a duration: both workers must have answered by then


async def _fresh(
    live: Live, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, str], bytes, int]:
    """One request on a brand-new connection: (status, headers, body, worker pid)."""
    return await fresh_request(live, method, path, headers, body)


async def _every_read(
    live: Live, method: str, path: str, headers: dict[str, str], check: Any
) -> int:
    """Fresh reads until both workers answered; ``check`` must hold for each. Returns how many."""
    served: set[int] = set()
    reads = 0
    while len(served) < WORKERS:
        assert reads < MAX_READS, f"only workers {served} answered {reads} fresh connections"
        for status, fields, content, pid in await asyncio.gather(
            *(_fresh(live, method, path, headers) for _ in range(BATCH))
        ):
            check(status, fields, content)
            served.add(pid)
        reads += BATCH
    live.seen |= served
    return reads


@pytest.fixture
def busy(settings: Settings, tmp_path: Path) -> Iterator[Live]:
    """The server with two workers, and one CPU hog per core for as long as the test runs."""
    proc, base = start_live_server(settings, tmp_path, workers=WORKERS)
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        workers = children(proc.pid)
        assert len(workers) == WORKERS, workers
        for _ in range(os.cpu_count() or 2):
            hogs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        port = urlsplit(base).port
        assert port
        yield Live(base, port, workers)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        stop_live_server(proc)


async def _sign_in(c: httpx.AsyncClient, user: dict[str, Any], device: str) -> dict[str, Any]:
    r = await c.post(
        "/v1/auth/token", json={"email": user["email"], "password": PASSWORD, "device": device}
    )
    assert r.status_code == 200, r.text
    return r.json()


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _status(expected: int) -> Any:
    def check(status: int, _fields: dict[str, str], content: bytes) -> None:
        assert status == expected, (status, content[:300])

    return check


def _new_bundle(old_etag: str, member: str, removed: str, etags: set[str]) -> Any:
    def check(status: int, fields: dict[str, str], content: bytes) -> None:
        assert status == 200, (status, old_etag)  # never a 304 for the old team's bundle
        assert fields["etag"] != old_etag
        names = [m["display_name"] for m in json.loads(content)["team"]]
        assert member in names and removed not in names, names
        etags.add(fields["etag"])

    return check


async def test_team_change_gives_every_worker_the_new_etag_and_shuts_out_the_removed(
    api: Api, busy: Live
) -> None:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    carol = await api.cleared_citizen(s.org, name="Carol")
    url = f"/v1/visits/{visit['id']}/bundle"
    async with httpx.AsyncClient(base_url=busy.base, timeout=120) as c:
        ann = _bearer(await _sign_in(c, s.ann, "phone"))
        others = {
            "Bob": (s.bob, _bearer(await _sign_in(c, s.bob, "phone"))),
            "Carol": (carol, _bearer(await _sign_in(c, carol, "phone"))),
        }
        r = await c.get(url, headers=ann)
        etag, member = r.headers["etag"], "Bob"
        # Both workers know the visit (and would have cached it) before any change.
        await _every_read(busy, "GET", url, {**ann, "If-None-Match": etag}, _status(304))
        for _ in range(ROUNDS):
            removed, member = member, "Carol" if member == "Bob" else "Bob"
            team = s.team((s.ann, "citizen"), (others[member][0], "citizen"))
            r = await c.patch(
                f"/v1/visits/{visit['id']}",
                headers=s.coord,
                json={"team": team + s.team((s.pro, "professional"))},
            )
            assert r.status_code == 200, r.text
            new_etags: set[str] = set()

            check = _new_bundle(etag, member, removed, new_etags)
            await _every_read(busy, "GET", url, {**ann, "If-None-Match": etag}, check)
            assert len(new_etags) == 1  # every worker names the same new bundle
            etag = new_etags.pop()
            await _every_read(busy, "GET", url, others[removed][1], _status(403))
            await _every_read(busy, "GET", url, others[member][1], _status(200))
    assert busy.seen == set(busy.workers)


async def test_reusing_a_refresh_token_signs_the_device_out_in_every_worker(
    api: Api, busy: Live
) -> None:
    org = await api.org()
    async with httpx.AsyncClient(base_url=busy.base, timeout=120) as c:
        for n in range(ROUNDS):
            user = await api.user(org, "citizen_inspector")
            first = await _sign_in(c, user, f"phone {n}")
            await _every_read(busy, "GET", "/v1/me", _bearer(first), _status(200))
            r = await c.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
            assert r.status_code == 200, r.text
            second = r.json()
            r = await c.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
            assert r.status_code == 200, r.text
            third = r.json()
            # The old refresh token again once the phone has moved on (not a retry within
            # REFRESH_REUSE_GRACE_S): a copy is in use somewhere.
            r = await c.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
            assert r.status_code == 401 and "reused" in r.json()["type"], r.text
            for tokens in (first, second, third):
                await _every_read(busy, "GET", "/v1/me", _bearer(tokens), _status(401))
    assert busy.seen == set(busy.workers)


async def test_deactivation_and_device_revocation_take_effect_in_every_worker(
    api: Api, busy: Live
) -> None:
    org = await api.org()
    async with httpx.AsyncClient(base_url=busy.base, timeout=120) as c:
        coord = _bearer(await _sign_in(c, await api.user(org, "coordinator"), "laptop"))
        for n in range(ROUNDS):
            user = await api.user(org, "citizen_inspector")
            lost = await _sign_in(c, user, f"lost phone {n}")
            kept = _bearer(await _sign_in(c, user, f"new phone {n}"))
            await _every_read(busy, "GET", "/v1/me", _bearer(lost), _status(200))
            r = await c.delete(f"/v1/users/{user['id']}/devices/{lost['device_id']}", headers=coord)
            assert r.status_code == 204, r.text
            await _every_read(busy, "GET", "/v1/me", _bearer(lost), _status(401))
            await _every_read(busy, "GET", "/v1/me", kept, _status(200))  # only that device
            r = await c.patch(f"/v1/users/{user['id']}", headers=coord, json={"active": False})
            assert r.status_code == 200, r.text
            await _every_read(busy, "GET", "/v1/me", kept, _status(401))
    assert busy.seen == set(busy.workers)


async def test_losing_the_coordinator_role_is_refused_by_every_worker(api: Api, busy: Live) -> None:
    org = await api.org()
    async with httpx.AsyncClient(base_url=busy.base, timeout=120) as c:
        boss = _bearer(await _sign_in(c, await api.user(org, "coordinator"), "laptop"))
        deputy = await api.user(org, "coordinator")
        session = _bearer(await _sign_in(c, deputy, "laptop"))
        for _ in range(ROUNDS):
            await _every_read(busy, "GET", "/v1/users", session, _status(200))
            r = await c.patch(
                f"/v1/users/{deputy['id']}", headers=boss, json={"roles": ["citizen_inspector"]}
            )
            assert r.status_code == 200, r.text
            await _every_read(busy, "GET", "/v1/users", session, _status(403))
            r = await c.patch(
                f"/v1/users/{deputy['id']}", headers=boss, json={"roles": ["coordinator"]}
            )
            assert r.status_code == 200, r.text
    assert busy.seen == set(busy.workers)


async def test_a_bundle_remembered_by_every_worker_is_refused_after_sign_out_and_deactivation(
    api: Api, busy: Live
) -> None:
    """Each worker answers a repeated 304 from memory (inspections/visits/bundle_memo.py);
    a revoked device or a deactivation must still reach the very next request in both."""
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    url = f"/v1/visits/{visit['id']}/bundle"
    async with httpx.AsyncClient(base_url=busy.base, timeout=120) as c:
        coord = _bearer(await _sign_in(c, await api.user(s.org, "coordinator"), "laptop"))
        lost = await _sign_in(c, s.ann, "lost phone")
        kept = _bearer(await _sign_in(c, s.ann, "new phone"))
        etag = (await c.get(url, headers=kept)).headers["etag"]
        for phone in (_bearer(lost), kept):
            # Twice through both workers: the first read remembers, the rest are memory.
            for _ in range(2):
                await _every_read(busy, "GET", url, {**phone, "If-None-Match": etag}, _status(304))
        r = await c.delete(f"/v1/users/{s.ann['id']}/devices/{lost['device_id']}", headers=coord)
        assert r.status_code == 204, r.text
        await _every_read(busy, "GET", url, {**_bearer(lost), "If-None-Match": etag}, _status(401))
        await _every_read(busy, "GET", url, {**kept, "If-None-Match": etag}, _status(304))
        r = await c.patch(f"/v1/users/{s.ann['id']}", headers=coord, json={"active": False})
        assert r.status_code == 200, r.text
        await _every_read(busy, "GET", url, {**kept, "If-None-Match": etag}, _status(401))
    assert busy.seen == set(busy.workers)
