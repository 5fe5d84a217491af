"""A phone's repeated bundle request answered from memory, and everything that stops that.

The route remembers its answer with the host's write generation seen before its query
(inspections/visits/bundle_memo.py); a write through the app moves the generation before
its 2xx, a write made elsewhere moves it when its notification arrives
(service/generation.py). Two workers on a starved CPU: tests/test_caches_live.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from service.generation import WATCHED_TABLES_UNTOUCHED, WRITES_CHANNEL, WriteGeneration
from tests.helpers import Api
from tests.scenes import GPS_PHOTO, Scene, scene_with_visit

WAIT_S = 60  # a bound on waiting for a condition, never a duration to sleep


async def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await condition():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        await asyncio.sleep(0.02)


def _state(api: Api) -> Any:
    return api.client.app.state


async def _visit(api: Api) -> tuple[Scene, str, dict[str, str]]:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    return s, f"/v1/visits/{visit['id']}/bundle", await api.login(s.ann)


async def _remembered(api: Api, url: str, headers: dict[str, str]) -> str:
    """Fetch, then fetch with If-None-Match until an answer comes from memory; the ETag."""
    etag = (await api.client.get(url, headers=headers)).headers["etag"]
    memo = _state(api).bundle_memo

    async def served_from_memory() -> bool:
        before = memo.served
        r = await api.client.get(url, headers={**headers, "If-None-Match": etag})
        assert r.status_code == 304, r.text
        return memo.served > before

    await _until(served_from_memory, "a 304 answered from memory")
    return etag


def _same(a: Any, b: Any) -> None:
    """Same status, body and headers, but for the request id."""
    assert (a.status_code, a.content) == (b.status_code, b.content)
    strip = {"x-request-id"}
    assert {k: v for k, v in a.headers.items() if k not in strip} == {
        k: v for k, v in b.headers.items() if k not in strip
    }


async def test_answers_from_memory_are_the_routes_answers(api: Api) -> None:
    s, url, ann = await _visit(api)
    memo = _state(api).bundle_memo
    route_200 = await api.client.get(url, headers=ann)
    etag = route_200.headers["etag"]
    route_304 = await api.client.get(url, headers={**ann, "If-None-Match": etag})
    served = memo.served
    memo_304 = await api.client.get(url, headers={**ann, "If-None-Match": etag})
    memo_200 = await api.client.get(url, headers=ann)
    # A phone holding an older copy gets the current bundle, also from memory.
    memo_200_old = await api.client.get(url, headers={**ann, "If-None-Match": '"old"'})
    assert memo.served == served + 3
    assert route_304.status_code == 304 and route_200.status_code == 200
    _same(memo_304, route_304)
    _same(memo_200, route_200)
    _same(memo_200_old, route_200)
    assert memo_304.headers["x-request-id"] != route_304.headers["x-request-id"]


async def test_nothing_is_remembered_for_the_wrong_person_or_path(api: Api) -> None:
    s, url, ann = await _visit(api)
    etag = await _remembered(api, url, ann)
    memo = _state(api).bundle_memo
    served = memo.served
    outsider = await api.login(await api.cleared_citizen(s.org, name="Olive"))
    r = await api.client.get(url, headers={**outsider, "If-None-Match": etag})
    assert r.status_code == 403
    r = await api.client.get(url, headers={"If-None-Match": etag})  # no sign-in at all
    assert r.status_code == 401
    forged = {"Authorization": ann["Authorization"][:-2] + "xx", "If-None-Match": etag}
    assert (await api.client.get(url, headers=forged)).status_code == 401
    other = (await s.visit()).json()
    r = await api.client.get(
        f"/v1/visits/{other['id']}/bundle", headers={**ann, "If-None-Match": etag}
    )
    assert r.status_code == 200
    assert memo.served == served


async def test_writes_through_the_app_reach_the_very_next_request(api: Api) -> None:
    s, url, ann = await _visit(api)
    visit_id = url.split("/")[3]
    etag = await _remembered(api, url, ann)
    # No notification comes (as if delivery were slow): the write's own response moves the
    # generation, before it is sent.
    await api.conn.execute("drop function notify_writes() cascade")  # this test's database

    # The team changes: the next request gets the new bundle, never the remembered 304.
    carol = await api.cleared_citizen(s.org, name="Carol")
    team = s.team((s.ann, "citizen"), (carol, "citizen"), (s.pro, "professional"))
    r = await api.client.patch(f"/v1/visits/{visit_id}", headers=s.coord, json={"team": team})
    assert r.status_code == 200, r.text
    r = await api.client.get(url, headers={**ann, "If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag
    assert "Carol" in [m["display_name"] for m in r.json()["team"]]
    etag = await _remembered(api, url, ann)

    # Ann's phone is signed out by a coordinator: refused at once.
    device = await api.conn.fetchval(
        "select id from devices where user_id = $1 and revoked_at is null", UUID(s.ann["id"])
    )
    r = await api.client.delete(f"/v1/users/{s.ann['id']}/devices/{device}", headers=s.coord)
    assert r.status_code == 204, r.text
    assert (await api.client.get(url, headers={**ann, "If-None-Match": etag})).status_code == 401

    # Carol is deactivated: refused at once.
    carol_phone = await api.login(carol)
    etag = await _remembered(api, url, carol_phone)
    r = await api.client.patch(f"/v1/users/{carol['id']}", headers=s.coord, json={"active": False})
    assert r.status_code == 200, r.text
    r = await api.client.get(url, headers={**carol_phone, "If-None-Match": etag})
    assert r.status_code == 401


async def test_a_change_made_by_hand_reaches_the_bundle_when_its_notification_arrives(
    api: Api,
) -> None:
    s, url, ann = await _visit(api)
    etag = await _remembered(api, url, ann)
    writes = _state(api).writes
    before = writes.current()
    # Outside the app (psql, another host): only the write's notification tells this process.
    await api.conn.execute("update users set active = false where id = $1", UUID(s.ann["id"]))

    async def moved() -> bool:
        return writes.current() != before

    await _until(moved, "the write's notification")
    r = await api.client.get(url, headers={**ann, "If-None-Match": etag})
    assert r.status_code == 401


async def test_while_the_listener_is_down_nothing_is_answered_from_memory(api: Api) -> None:
    s, url, ann = await _visit(api)
    etag = await _remembered(api, url, ann)
    writes, memo = _state(api).writes, _state(api).bundle_memo
    assert writes._conn is not None
    seen = writes.current()
    await api.conn.execute("select pg_terminate_backend($1)", writes._conn.get_server_pid())

    async def stopped_listening() -> bool:
        return not writes.listening

    await _until(stopped_listening, "the listener noticing its connection is gone")
    for _ in range(3):
        down, served = not writes.listening, memo.served
        r = await api.client.get(url, headers={**ann, "If-None-Match": etag})
        assert r.status_code == 304
        if down and not writes.listening:  # down all along: the route answered
            assert memo.served == served

    async def listening_again() -> bool:
        return writes.listening

    await _until(listening_again, "the listener reconnecting")
    # Whatever was read before or during the gap may have missed a notification.
    assert writes.current() > seen
    await _remembered(api, url, ann)


async def test_an_expired_token_is_not_answered_from_memory(api: Api) -> None:
    s, url, _ = await _visit(api)
    state = _state(api)
    tokens = await api.sign_in(s.ann)
    token = state.jwt_auth.create_token(
        identifier=s.ann["id"],
        token_expiration=dt.timedelta(seconds=2),
        token_extras={"dev": tokens["device_id"]},
    )
    short = {"Authorization": f"Bearer {token}"}
    etag = await _remembered(api, url, short)
    expires = state.jwt_auth.token_cls.decode(
        token, state.jwt_auth.token_secret, state.jwt_auth.algorithm
    ).exp.timestamp()

    async def expired() -> bool:
        return time.time() > expires

    await _until(expired, "the token's expiry")
    r = await api.client.get(url, headers={**short, "If-None-Match": etag})
    assert r.status_code == 401


def _bump_many(path: str, times: int) -> None:
    gen = WriteGeneration(Path(path))
    for _ in range(times):
        gen.bump()


def test_the_generation_is_shared_by_processes_and_loses_no_bump(tmp_path: Path) -> None:
    path = tmp_path / "writes"
    gen = WriteGeneration(path)
    start = gen.current()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_bump_many, args=(str(path), 500)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    gen.bump()
    assert gen.current() == start + 3 * 500 + 1
    gen.listening = True
    assert gen.unchanged_since(gen.current())
    assert not gen.unchanged_since(start)
    gen.listening = False
    assert not gen.unchanged_since(gen.current())  # not listening: never from memory


async def test_a_route_that_says_it_touches_no_watched_table_does_not(api: Api) -> None:
    """A photo upload does not move the write generation (WATCHED_TABLES_UNTOUCHED), so
    phones' remembered bundles stay valid while photos arrive. That is only right if it
    writes nothing the write triggers watch: checked here by their notifications, which
    PostgreSQL delivers in commit order (a marker sent after the upload must come first)."""
    app = api.client.app
    claimed = {
        (method, route.path)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get(WATCHED_TABLES_UNTOUCHED)
        for method in handler.http_methods
    }
    assert claimed == {("POST", "/v1/evidence")}, "a new claim needs its check here"

    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    url = f"/v1/visits/{p.visit['id']}/bundle"
    etag = await _remembered(api, url, ann)
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(_state(api).settings.database_url)
    try:
        await listener.add_listener(WRITES_CHANNEL, lambda *a: heard.put_nowait(a[-1]))
        ev = await p.upload_ready(ann, GPS_PHOTO.read_bytes())  # stored, then processed
        assert ev["status"] == "ready"
        # Still answered from memory: the upload and its processing moved nothing.
        served = _state(api).bundle_memo.served
        r = await api.client.get(url, headers={**ann, "If-None-Match": etag})
        assert r.status_code == 304 and _state(api).bundle_memo.served == served + 1
        await api.conn.execute(f"select pg_notify('{WRITES_CHANNEL}', 'marker')")
        async with asyncio.timeout(WAIT_S):
            assert await heard.get() == "marker"
    finally:
        await listener.close()


def test_the_generation_never_follows_a_planted_link(tmp_path: Path) -> None:
    target = tmp_path / "someone-elses-file"
    target.write_bytes(b"precious")
    planted = tmp_path / "writes"
    planted.symlink_to(target)
    with pytest.raises(OSError):
        WriteGeneration(planted)
    assert target.read_bytes() == b"precious"
