"""Bad input is a 4xx problem+json that changes nothing, never a 500 (service/bounds.py).

NUL characters, JSON nested thousands deep, numbers wider than PostgreSQL's int and dates
whose neighbouring period falls off the calendar, wherever they arrive: body, query, path,
form.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar, get
from litestar.params import FromQuery
from litestar.testing import AsyncTestClient

from service.bounds import MAX_DEPTH, nesting_exceeds
from service.errors import handle_exception
from service.settings import Settings
from tests.helpers import CSRF_COOKIE, PASSWORD, Api, assert_problem, form_post
from tests.scenes import Scene, answers


async def snapshot(conn: asyncpg.Connection) -> dict[str, str]:
    """Every table's rows, hashed: equal snapshots mean nothing was written."""
    tables = await conn.fetch("select tablename from pg_tables where schemaname = 'public'")
    return {
        t["tablename"]: await conn.fetchval(
            f"""select md5(coalesce(string_agg(x::text, '|' order by x::text), ''))
                  from "{t["tablename"]}" x"""
        )
        for t in tables
    }


async def _scene(api: Api) -> tuple[Scene, dict[str, Any], str]:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    r = await api.client.post(
        "/v1/invites",
        headers=s.coord,
        json={"email": "rose@example.org", "roles": ["citizen_inspector"]},
    )
    assert r.status_code == 201, r.text
    return s, visit, r.json()["code"]


async def test_nul_characters_are_refused_wherever_they_arrive(api: Api) -> None:
    s, _, code = await _scene(api)
    c = api.client
    service = {"name": "Elm\x00House", "kind": "care_home", "lat": 43.4, "lon": 11.8}
    # An escaped backslash before "u0000" is just text, and is kept as such.
    r = await c.post("/v1/services", headers=s.coord, json={**service, "name": "C:\\u0000 wing"})
    assert r.status_code == 201 and r.json()["name"] == "C:\\u0000 wing"
    before = await snapshot(api.conn)

    body = assert_problem(await c.post("/v1/services", headers=s.coord, json=service), 400)
    assert body["type"].endswith("/nul-character") and body["errors"][0]["field"] == "$.name"
    r = await c.post("/v1/checklists", headers=s.coord, json={"title": "Quick\x00look"})
    assert assert_problem(r, 400, "nul-character")["errors"][0]["field"] == "$.title"
    r = await c.post(
        f"/v1/invites/{code}/accept", json={"display_name": "Ro\x00se", "password": PASSWORD}
    )
    assert assert_problem(r, 400, "nul-character")["errors"][0]["field"] == "$.display_name"
    # In a key too, and deep inside a list.
    r = await c.post("/v1/services", headers=s.coord, json={**service, "name": "ok", "a\x00": 1})
    assert_problem(r, 400, "nul-character")
    r = await c.post(
        "/v1/checklists",
        headers=s.coord,
        json={"title": "t", "contributors": [{"name": "ok"}, {"name": "x\x00"}]},
    )
    assert assert_problem(r, 400)["errors"][0]["field"] == "$.contributors[1].name"
    r = await c.post(
        "/v1/auth/token",
        json={"email": "rose\x00@example.org", "password": PASSWORD, "device": "phone"},
    )
    assert_problem(r, 400, "nul-character")

    # Query strings and paths.
    for url, name in (
        ("/v1/services?q=%00", "q"),
        ("/v1/users?q=a%00b", "q"),
        ("/v1/audit?action=%00", "action"),
    ):
        body = assert_problem(await c.get(url, headers=s.coord), 400, "nul-character")
        assert name in body["errors"][0]["field"], body
    r = await c.post("/v1/invites/ab%00cd/accept", json={"display_name": "R", "password": "x"})
    assert_problem(r, 400, "nul-character")

    # The browser's sign-in form.
    await c.get("/signin")  # the form's page gives this browser its CSRF cookie
    token = c.cookies[CSRF_COOKIE].encode()
    r = await c.post(
        "/signin",
        content=b"email=rose%00%40example.org&password=x&_csrf_token=" + token,
        headers={"content-type": "application/x-www-form-urlencoded", "origin": str(c.base_url)},
    )
    # A page answers with a page: the same 400, in words.
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), r.text
    assert "NUL" in r.text or "character" in r.text, r.text

    assert await snapshot(api.conn) == before


def _deep_objects(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


@pytest.mark.parametrize(
    "raw",
    [_deep_objects(2000), b"[" * 100_000 + b"]" * 100_000, b"[" * 100_000],
    ids=["2000 objects", "100000 arrays", "100000 unclosed arrays"],
)
async def test_deeply_nested_json_is_400_on_every_json_body(api: Api, raw: bytes) -> None:
    s, visit, code = await _scene(api)
    ann = await api.login(s.ann)
    before = await snapshot(api.conn)
    json = {"content-type": "application/json"}
    for method, url, headers in (
        ("POST", "/v1/services", s.coord),
        ("POST", "/v1/checklists", s.coord),
        ("PUT", f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}", ann),
        ("PUT", f"/v1/visits/{visit['id']}/findings/{uuid.uuid4()}", ann),
        ("POST", "/v1/auth/token", {}),
        ("POST", f"/v1/invites/{code}/accept", {}),
    ):
        r = await api.client.request(method, url, content=raw, headers={**headers, **json})
        body = assert_problem(r, 400, "too-deep")
        assert str(MAX_DEPTH) in body["detail"]
    assert await snapshot(api.conn) == before


async def test_ordinary_nesting_and_brackets_in_text_are_not_too_deep(api: Api) -> None:
    s, visit, _ = await _scene(api)
    ann = await api.login(s.ann)
    # Brackets inside strings are text, whatever their number.
    text = [{**a, "comment": "[[{{" * 200 + '\\"]]' * 50} for a in answers()[:1]]
    r = await api.client.put(
        f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}",
        headers=ann,
        json={"state": "draft", "answers": text},
    )
    assert r.status_code == 201, r.text
    assert r.json()["answers"][0]["comment"].startswith("[[{{[[{{")


def test_the_nesting_scan_agrees_with_a_reference_count() -> None:
    """The fast scan against a plain walk over strings, escapes and brackets."""

    def reference(raw: bytes) -> int:
        depth = deepest = 0
        in_string = escaped = False
        for ch in raw.decode():
            if in_string:
                escaped, in_string = (False, in_string) if escaped else (ch == "\\", ch != '"')
            elif ch == '"':
                in_string = True
            elif ch in "[{":
                depth += 1
                deepest = max(deepest, depth)
            elif ch in "]}":
                depth -= 1
        return deepest

    import json
    import random

    rng = random.Random(7)
    for _ in range(300):
        levels = rng.randint(MAX_DEPTH - 3, MAX_DEPTH + 3)
        value: Any = rng.choice(["x", 1, '\\"[{', "]]}}\\", []])
        for _ in range(levels - 1):
            value = rng.choice(
                [[value], {"k": value}, ['"[[', value, {"z": []}], {"a\\[": "{", "b": value}]
            )
        raw = json.dumps(value).encode()
        assert nesting_exceeds(raw) == (reference(raw) > MAX_DEPTH), raw


async def test_a_checklist_version_beyond_int32_is_a_4xx(api: Api) -> None:
    s = await Scene(api).build()
    for version in ("2147483648", "99999999999999999999", "0"):
        r = await api.client.get(
            f"/v1/checklists/{s.checklist['id']}/versions/{version}", headers=s.coord
        )
        assert_problem(r, 422)
    r = await api.client.get(
        f"/v1/checklists/{s.checklist['id']}/versions/2147483647", headers=s.coord
    )
    assert_problem(r, 404)


async def test_extreme_dates_in_scorecard_periods_are_422_and_change_nothing(api: Api) -> None:
    s = await Scene(api).build()
    email = await api.conn.fetchval("select email from users where 'coordinator' = any(roles)")
    await form_post(  # the browser's session, for the page
        api.client,
        "/signin",
        data={"email": email, "password": PASSWORD},
        headers={"origin": str(api.client.base_url)},
    )
    before = await snapshot(api.conn)
    scorecard = f"/v1/services/{s.service['id']}/scorecard"
    for params in (
        {"from": "0001-01-01T00:00:00Z"},
        {"to": "9999-12-31T23:59:59Z"},
        {"from": "1899-12-31T23:59:59Z", "to": "2020-01-01T00:00:00Z"},
    ):
        body = assert_problem(await api.client.get(scorecard, headers=s.coord, params=params), 422)
        assert "1900" in body["detail"] and "2200" in body["detail"]
        r = await api.client.get(
            "/v1/scorecards", headers=s.coord, params={"kind": "care_home", **params}
        )
        assert_problem(r, 422)
    override = {
        "period_from": "2025-01-01T00:00:00Z",
        "period_to": "9000-01-01T00:00:00Z",
        "band": "good",
        "reason": "A reason long enough to be recorded.",
    }
    r = await api.client.post(scorecard + "/override", headers=s.coord, json=override)
    assert_problem(r, 422)
    # The browser page says so in words.
    r = await api.client.get(
        f"/services/{s.service['id']}/scorecard", params={"from": "0001-01-01"}
    )
    assert r.status_code == 422 and "Check the dates" in r.text
    # The sane edges still work.
    r = await api.client.get(
        scorecard,
        headers=s.coord,
        params={"from": "1900-01-01T00:00:00Z", "to": "2200-12-31T00:00:00Z"},
    )
    assert r.status_code == 200, r.text
    assert await snapshot(api.conn) == before


async def test_a_visit_window_outside_1900_2200_is_422(api: Api) -> None:
    """Photo and clearance checks do arithmetic on the window: it must stay on the calendar."""
    s = await Scene(api).build()
    pro = s.team((s.pro, "professional"))
    before = await snapshot(api.conn)
    for starts, ends in (
        ("0001-01-01T00:00:00Z", "0001-01-01T02:00:00Z"),
        ("9999-12-31T20:00:00Z", "9999-12-31T23:59:59Z"),
    ):
        body = assert_problem(await s.visit(pro, starts_at=starts, ends_at=ends), 422)
        assert body["errors"][0]["field"] == "$.starts_at" and "1900" in body["detail"]
    assert await snapshot(api.conn) == before


async def test_a_database_data_error_that_escapes_is_422_not_500(settings: Settings) -> None:
    """The last line (service/errors.py), on a route made for it: PostgreSQL refusing a
    value (class 22) and the driver refusing a number wider than int."""

    @get("/cast")
    async def cast(value: FromQuery[str]) -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            if value.isdigit():
                return await conn.fetchval("select $1::int", int(value))
            return await conn.fetchval("select $1::text::int", value)
        finally:
            await conn.close()

    app = Litestar([cast], exception_handlers={Exception: handle_exception})
    async with AsyncTestClient(app) as client:
        assert (await client.get("/cast", params={"value": "12"})).json() == 12
        for value in ("twelve", str(2**40)):
            body = assert_problem_body(await client.get("/cast", params={"value": value}), 422)
            assert body["type"].endswith("/invalid-value")


def assert_problem_body(r: Any, status: int) -> dict[str, Any]:
    # A bare app has no request ids; the rest is the same problem+json.
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()
