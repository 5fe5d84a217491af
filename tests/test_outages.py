"""Outages: with photo storage or the database down, phones get 503 + Retry-After ("try
later"), never 500 (a bug); what does not need the missing part keeps working; and the
same app process recovers when the part comes back.

These tests stop and start their own PostgreSQL and SeaweedFS (the suite's are shared by
every test), and wait for conditions, never for durations.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inspections.wiring import MIGRATIONS
from service import db
from service.devstack import Postgres, SeaweedFS
from tests.conftest import app_api, make_settings
from tests.helpers import Api, assert_problem
from tests.scenes import GPS_PHOTO, Photos, scene_with_visit

DEADLINE_S = 120  # a bound on waiting for recovery, never a duration waited


class Stack:
    def __init__(self, pg: Postgres, s3: SeaweedFS) -> None:
        self.pg, self.s3 = pg, s3


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A PostgreSQL and a SeaweedFS for this module alone: the tests stop and start them."""
    with tempfile.TemporaryDirectory(prefix="coassess-outages-") as d:
        os.chmod(d, 0o755)  # PostgreSQL runs as its own user when we are root
        pg = Postgres(Path(d) / "pg", fast=True)
        s3 = SeaweedFS(Path(d) / "seaweedfs")
        pg.start()
        try:
            s3.start()
            s3.ensure_bucket("coassess-test")
            yield Stack(pg, s3)
        finally:
            s3.stop()
            pg.stop()


@pytest.fixture
async def outage_api(stack: Stack) -> AsyncIterator[Api]:
    dsn = stack.pg.ensure_database(f"outage_{uuid.uuid4().hex[:8]}")
    await db.migrate(dsn, MIGRATIONS)
    settings = make_settings(dsn, stack.s3, deliver_interval_s=0, sweep_interval_s=0)
    async with app_api(settings, timeout=60) as api:
        yield api


async def until(
    attempt: Callable[[], Awaitable[httpx.Response]], ok: Callable[[httpx.Response], bool]
) -> httpx.Response:
    """Try again until ``ok``; every answer meanwhile must be a proper 503, never a 500."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        r = await attempt()
        if ok(r):
            return r
        assert_unavailable(r)
        assert time.monotonic() < deadline, f"still {r.status_code} after {DEADLINE_S} s"
        await asyncio.sleep(0.1)  # a pause between tries, not a wait for something


def assert_unavailable(r: httpx.Response, what: str | None = None) -> dict[str, Any]:
    body = assert_problem(r, 503, "service-unavailable")
    assert int(r.headers["retry-after"]) > 0
    if what is not None:
        assert what in body["detail"], body
    return body


async def test_photo_storage_down_answers_503_and_the_rest_keeps_working(
    stack: Stack, outage_api: Api
) -> None:
    api = outage_api
    p: Photos = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    photo, other = GPS_PHOTO.read_bytes(), (GPS_PHOTO.parent / "DSCN0012.jpg").read_bytes()
    stored = await p.upload(ann, photo)
    assert stored.status_code == 202, stored.text
    evidence = stored.json()

    stack.s3.stop()
    try:
        r = await p.upload(ann, other)
        assert_unavailable(r, "photo storage")
        # The phone still gets its checklist, and the evidence it already sent.
        bundle = await api.client.get(f"/v1/visits/{p.visit['id']}/bundle", headers=ann)
        assert bundle.status_code == 200, bundle.text
        got = await api.client.get(f"/v1/evidence/{evidence['id']}", headers=ann)
        assert got.status_code == 200 and got.json()["sha256"] == evidence["sha256"]
        ready = await api.client.get("/ready")
        assert ready.status_code == 503 and "object_store" in ready.json()["detail"]
        assert "postgresql" not in ready.json()["detail"]
    finally:
        stack.s3.start()

    # Back without restarting the app: the same phone's next try is stored.
    again = await until(lambda: p.upload(ann, other), lambda r: r.status_code != 503)
    assert again.status_code in (201, 202), again.text
    assert (await api.client.get("/ready")).status_code == 200


async def test_database_down_answers_503_and_the_pool_recovers(
    stack: Stack, outage_api: Api
) -> None:
    api = outage_api
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    bundle_url = f"/v1/visits/{p.visit['id']}/bundle"
    assert (await api.client.get(bundle_url, headers=ann)).status_code == 200
    sign_in = {"email": p.scene.ann["email"], "password": "correct horse battery", "device": "x"}

    stack.pg.stop()
    try:
        # Reads, writes, the auth middleware's lookup and a sign-in: 503, never 500.
        for attempt in (
            lambda: api.client.get(bundle_url, headers=ann),
            lambda: api.client.get("/v1/me/visits", headers=ann),
            lambda: api.client.post("/v1/auth/token", json=sign_in),
            lambda: p.upload(ann, GPS_PHOTO.read_bytes()),
        ):
            for _ in range(3):  # also once the pool's connections are known to be gone
                assert_unavailable(await attempt(), "the database")
        ready = await api.client.get("/ready")
        assert ready.status_code == 503 and "postgresql" in ready.json()["detail"]
        assert (await api.client.get("/health")).status_code == 200
    finally:
        stack.pg.start()

    # The same app process, its pool reconnecting: requests succeed again.
    r = await until(lambda: api.client.get(bundle_url, headers=ann), lambda r: r.status_code == 200)
    assert r.json()["visit"]["id"] == p.visit["id"]
    r = await until(
        lambda: api.client.post("/v1/auth/token", json=sign_in), lambda r: r.status_code == 200
    )
    assert r.json()["access_token"]
    assert (await api.client.get("/ready")).status_code == 200
