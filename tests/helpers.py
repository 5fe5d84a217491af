"""Test helpers: bootstrap organisations and people, sign in as a phone would."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sys
from html import unescape
from typing import Any

import asyncpg
import httpx
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient

PASSWORD = "correct horse battery"
_hasher = PasswordHasher(time_cost=1, memory_cost=1024)
_hash = _hasher.hash(PASSWORD)


class Api:
    """A thin client that knows how to make people and sign them in."""

    def __init__(self, client: AsyncTestClient, conn: asyncpg.Connection) -> None:
        self.client = client
        self.conn = conn
        self._n = 0

    async def org(self, name: str = "Northshire Council") -> str:
        return str(
            await self.conn.fetchval(
                "insert into organisations (name) values ($1) returning id", name
            )
        )

    async def user(
        self, org: str, *roles: str, email: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        self._n += 1
        email = email or f"{roles[0]}{self._n}@example.org"
        user_id = await self.conn.fetchval(
            """insert into users (organisation_id, email, display_name, password_hash, roles)
               values ($1, $2, $3, $4, $5) returning id""",
            org,
            email,
            name or email.split("@")[0],
            _hash,
            list(roles),
        )
        return {"id": str(user_id), "email": email, "org": org}

    async def cleared_citizen(self, org: str, **kw: Any) -> dict[str, Any]:
        user = await self.user(org, "citizen_inspector", **kw)
        today = dt.date.today()
        for kind in ("course", "safeguarding_check"):
            await self.conn.execute(
                """insert into training_records
                       (organisation_id, user_id, kind, course, completed_on, expires_on)
                   values ($1, $2, $3, 'Lay assessor training', $4, $5)""",
                org,
                user["id"],
                kind,
                today - dt.timedelta(days=30),
                today + dt.timedelta(days=365),
            )
        return user

    async def invite(self, headers: dict[str, str], email: str, *roles: str) -> dict[str, Any]:
        """A coordinator (``headers``) invites ``email``: the invite, with its code and link."""
        r = await self.client.post(
            "/v1/invites", json={"email": email, "roles": list(roles)}, headers=headers
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def webhook(self, headers: dict[str, str], url: str, *events: str) -> dict[str, Any]:
        """A coordinator (``headers``) registers a webhook at ``url`` for ``events``: the
        webhook, with its secret (shown this once)."""
        r = await self.client.post(
            "/v1/webhooks", json={"url": url, "events": list(events)}, headers=headers
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def sign_in(self, user: dict[str, Any], device: str = "phone") -> dict[str, Any]:
        r = await post_token(self.client, user["email"], device=device)
        assert r.status_code == 200, r.text
        return r.json()

    async def login(self, user: dict[str, Any], device: str = "phone") -> dict[str, str]:
        """Sign in and return the Authorization header."""
        tokens = await self.sign_in(user, device)
        return {"Authorization": f"Bearer {tokens['access_token']}"}


async def post_token(
    http: Any, email: str, password: str = PASSWORD, device: str = "phone"
) -> httpx.Response:
    """Sign in as a phone app does (POST /v1/auth/token) through ``http``: the test app's
    client or an httpx client of a live server."""
    return await http.post(
        "/v1/auth/token", json={"email": email, "password": password, "device": device}
    )


def assert_problem(r: Any, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert body.get("request_id") == r.headers["x-request-id"], body
    if type_suffix:
        assert body["type"].endswith("/" + type_suffix), body
    return body


CSRF_COOKIE = "csrftoken"


async def form_post(client: Any, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """Post a page's form as a browser does: with this browser's CSRF token.

    The token comes from the ``csrftoken`` cookie any page sets (fetched from /signin if this
    client has none yet), sent back in the form's hidden ``_csrf_token`` field.
    """
    if CSRF_COOKIE not in client.cookies:
        await client.get("/signin")
    return await client.post(
        path, data={**(data or {}), "_csrf_token": client.cookies[CSRF_COOKIE]}, **kw
    )


async def browser_as(api: Api, user: dict[str, Any]) -> None:
    """``api.client`` becomes ``user``'s browser: signed in through the sign-in form, which
    sends them on to the home page (the session and CSRF cookies are the browser's)."""
    api.client.cookies.clear()
    r = await form_post(
        api.client,
        "/signin",
        {"email": user["email"], "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/", r.text


def text_of(html: str) -> str:
    """The page's words, as a screen reader would run them together."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def deliver_once(env: dict[str, str]) -> dict[str, Any]:
    """``python -m service deliver --once`` as an operator runs it; its JSON report."""
    from tests.conftest import ROOT

    once = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "deliver", "--once",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(once.communicate(), 60)
    assert once.returncode == 0
    return json.loads(out)
