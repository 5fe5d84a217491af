"""Accounts and sign-in holes closed (issue 16): each test is the attack or the mishap."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.logs import JsonFormatter
from service.settings import Settings
from tests.conftest import start_live_server, stop_live_server
from tests.helpers import PASSWORD, Api, assert_problem


@asynccontextmanager
async def app_client(settings: Settings, **overrides: object) -> AsyncIterator[AsyncTestClient]:
    """Another app process on the same database, with some settings changed."""
    async with AsyncTestClient(app=create_app(msgspec.structs.replace(settings, **overrides))) as c:
        yield c


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


# ---------------------------------------------------------------- deactivation


async def test_reactivating_a_person_does_not_revive_their_old_devices(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    user = await api.user(org, "citizen_inspector")
    lost = await api.sign_in(user, device="lost phone")
    for active in (False, True):
        r = await api.client.patch(
            f"/v1/users/{user['id']}", json={"active": active}, headers=coord
        )
        assert r.status_code == 200 and r.json()["active"] is active, r.text

    # The lost phone's tokens stay dead although the account is active again.
    assert_problem(await api.client.get("/v1/me", headers=bearer(lost)), 401)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": lost["refresh_token"]})
    assert_problem(r, 401)
    devices = (await api.client.get(f"/v1/users/{user['id']}/devices", headers=coord)).json()
    assert [d["revoked_reason"] for d in devices] == ["account deactivated"]
    # The person signs in afresh.
    fresh = await api.sign_in(user, device="new phone")
    assert (await api.client.get("/v1/me", headers=bearer(fresh))).status_code == 200
    audit = await api.conn.fetchval(
        "select summary->>'devices_signed_out' from audit_log where action = 'user.update' "
        "order by id limit 1"
    )
    assert audit == "1"


# ---------------------------------------------------------------- refresh retries


async def test_two_refreshes_racing_with_one_token_both_get_the_same_new_token(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    for _ in range(5):
        tokens = await api.sign_in(user)
        body = {"refresh_token": tokens["refresh_token"]}
        a, b = await asyncio.gather(
            api.client.post("/v1/auth/refresh", json=body),
            api.client.post("/v1/auth/refresh", json=body),
        )
        assert (a.status_code, b.status_code) == (200, 200), (a.text, b.text)
        assert a.json()["refresh_token"] == b.json()["refresh_token"] != tokens["refresh_token"]
        # The phone is still signed in, with either answer's access token, and rotates on.
        for answer in (a, b):
            assert (
                await api.client.get("/v1/me", headers=bearer(answer.json()))
            ).status_code == 200
        r = await api.client.post(
            "/v1/auth/refresh", json={"refresh_token": a.json()["refresh_token"]}
        )
        assert r.status_code == 200, r.text


async def test_a_retry_after_the_chain_moved_on_signs_the_device_out(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    first = await api.sign_in(user)
    old = {"refresh_token": first["refresh_token"]}
    second = (await api.client.post("/v1/auth/refresh", json=old)).json()
    third = await api.client.post(
        "/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert third.status_code == 200
    # Within the window, but its successor was used already: a copied token, not a retry.
    assert_problem(await api.client.post("/v1/auth/refresh", json=old), 401, "refresh-token-reused")
    assert_problem(await api.client.get("/v1/me", headers=bearer(third.json())), 401)


async def test_reuse_after_the_grace_window_signs_the_device_out(
    api: Api, settings: Settings
) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    async with app_client(settings, refresh_reuse_grace_s=0) as c:
        first = (
            await c.post(
                "/v1/auth/token",
                json={"email": user["email"], "password": PASSWORD, "device": "phone"},
            )
        ).json()
        old = {"refresh_token": first["refresh_token"]}
        second = await c.post("/v1/auth/refresh", json=old)
        assert second.status_code == 200
        assert_problem(await c.post("/v1/auth/refresh", json=old), 401, "refresh-token-reused")
        assert_problem(await c.get("/v1/me", headers=bearer(second.json())), 401)
        r = await c.post("/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
        assert_problem(r, 401)


async def test_refresh_tokens_are_stored_only_as_hashes(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    first = await api.sign_in(user)
    second = (
        await api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    stored = await api.conn.fetch("select token_hash from refresh_tokens")
    hashes = {bytes(r["token_hash"]) for r in stored}
    for token in (first["refresh_token"], second["refresh_token"]):
        assert token.encode() not in hashes
        assert len(token) >= 43  # 256 bits, base64url
    count = await api.conn.fetchval(
        "select count(*) from refresh_tokens where token_hash = sha256($1::text::bytea)",
        second["refresh_token"],
    )
    assert count == 1


# ---------------------------------------------------------------- client address


def attempt(email: str, forwarded: str | None = None) -> dict[str, object]:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = {"email": email, "password": "not the password", "device": "x"}
    return {"json": body, "headers": headers}


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    settings: Settings,
) -> None:
    async with app_client(settings, signin_rate_per_minute=3) as c:
        codes = [
            (await c.post("/v1/auth/token", **attempt("ann@example.org", f"203.0.113.{i}")))
            for i in range(5)
        ]
    # Every attempt counts against the one real peer, whatever address it claims.
    assert [r.status_code for r in codes] == [401, 401, 401, 429, 429]


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance(
    settings: Settings, tmp_path: Path
) -> None:
    proxied = msgspec.structs.replace(
        settings, signin_rate_per_minute=3, trusted_proxies="127.0.0.1, 10.0.0.0/8"
    )
    proc, base = start_live_server(proxied, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=base) as c:

            async def codes(forwarded: str, n: int) -> list[int]:
                return [
                    (
                        await c.post("/v1/auth/token", **attempt("bob@example.org", forwarded))
                    ).status_code
                    for _ in range(n)
                ]

            # A phone at one care home uses up its allowance ...
            assert await codes("198.51.100.7", 4) == [401, 401, 401, 429]
            # ... a phone elsewhere, through the same proxy, still has its own.
            assert await codes("198.51.100.8", 1) == [401]
            # Lying to the proxy helps nobody: the proxy appends the real client, and hops
            # left of it are the client's own words (10.x is a trusted proxy hop, skipped).
            assert await codes("127.0.0.1, 198.51.100.7, 10.1.2.3", 1) == [429]
    finally:
        stop_live_server(proc)


# ---------------------------------------------------------------- the JWT secret file


def test_the_generated_jwt_secret_file_is_only_ever_readable_by_its_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.__main__ import _jwt_secret

    def chmod(*_: object) -> None:
        raise AssertionError("chmod after creating it: the secret was readable in between")

    # Fixing the mode afterwards is the hole: there must be nothing to fix.
    monkeypatch.setattr(os, "chmod", chmod)
    monkeypatch.setattr(Path, "chmod", chmod)
    settings = Settings(data_dir=str(tmp_path / "data"))
    old = os.umask(0)  # the most permissive umask: the mode must come from the open itself
    try:
        secret = _jwt_secret(settings)
    finally:
        os.umask(old)
    path = tmp_path / "data" / "jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret) >= 64 and path.read_text() == secret
    # serve started again signs with the same key (tokens stay valid across restarts).
    assert _jwt_secret(settings) == secret


# ---------------------------------------------------------------- invites across organisations


async def test_an_invite_does_not_reveal_an_account_in_another_organisation(api: Api) -> None:
    elsewhere = await api.org("Southshire Healthwatch")
    await api.user(elsewhere, "citizen_inspector", email="rose@example.org")
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))

    async def invite(email: str) -> dict[str, object]:
        return await api.invite(coord, email, "citizen_inspector")

    # An address with an account elsewhere and a new one are answered, listed and emailed
    # alike: the coordinator cannot tell them apart.
    taken, new = await invite("Rose@example.org"), await invite("sam@example.org")
    assert taken.keys() == new.keys() and taken["link"] != new["link"]
    listed = (await api.client.get("/v1/invites", headers=coord)).json()["items"]
    assert {i["email"]: i["status"] for i in listed} == {
        "Rose@example.org": "open",
        "sam@example.org": "open",
    }
    emails = await api.conn.fetch(
        "select recipient, subject from outbox where event = 'invite.sent' order by recipient"
    )
    assert [e["recipient"] for e in emails] == ["rose@example.org", "sam@example.org"]
    assert emails[0]["subject"] == emails[1]["subject"]

    # Accepting cannot make a second account for one address. Only the link's holder hears
    # so (the address's owner), and not where the account is.
    r = await api.client.post(
        f"/v1/invites/{taken['code']}/accept",
        json={"display_name": "Rose", "password": PASSWORD},
    )
    body = assert_problem(r, 409, "email-taken")
    assert "Southshire" not in r.text and "Sign in with it" in body["detail"]
    assert await api.conn.fetchval("select count(*) from users where email ilike 'rose@%'") == 1
    # The invite stays open, as one nobody answered: nothing for the coordinator to read.
    listed = (await api.client.get("/v1/invites", headers=coord)).json()["items"]
    assert {i["email"]: i["status"] for i in listed}["Rose@example.org"] == "open"


async def test_an_invite_to_someone_already_in_my_organisation_is_explained(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    await api.user(org, "citizen_inspector", email="ann@example.org")
    r = await api.client.post(
        "/v1/invites",
        json={"email": "ANN@example.org", "roles": ["professional_inspector"]},
        headers=coord,
    )
    body = assert_problem(r, 409, "email-taken")
    assert body["detail"] == (
        "Someone in your organisation already has an account with this email address."
    )


# ---------------------------------------------------------------- passwords

NEW = "kettle lighthouse orchard"


async def test_people_change_their_password_and_their_other_devices_are_signed_out(
    api: Api,
) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    laptop = await api.sign_in(user, device="laptop")
    phone = await api.sign_in(user, device="phone")
    r = await api.client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=bearer(laptop),
    )
    assert r.status_code == 200, r.text
    assert r.json()["devices_signed_out"] == 1
    # This device stays signed in; the other is out; only the new password signs in.
    assert (await api.client.get("/v1/me", headers=bearer(laptop))).status_code == 200
    assert_problem(await api.client.get("/v1/me", headers=bearer(phone)), 401)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert_problem(r, 401)
    sign_in = {"email": user["email"], "device": "phone"}
    r = await api.client.post("/v1/auth/token", json={**sign_in, "password": PASSWORD})
    assert_problem(r, 401)
    r = await api.client.post("/v1/auth/token", json={**sign_in, "password": NEW})
    assert r.status_code == 200
    audit = await api.conn.fetchrow(
        "select actor_id, summary from audit_log where action = 'password.change'"
    )
    assert str(audit["actor_id"]) == user["id"] and NEW not in audit["summary"]


async def test_a_password_change_needs_the_current_password_and_a_good_new_one(
    api: Api, settings: Settings
) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    headers = await api.login(user)

    async def change(current: str, new: str) -> dict[str, object]:
        r = await api.client.post(
            "/v1/me/password",
            json={"current_password": current, "new_password": new},
            headers=headers,
        )
        return assert_problem(r, 422)

    wrong = await change("not my password", NEW)
    assert wrong["errors"] == [
        {"field": "$.current_password", "reason": "Your current password is not right."}
    ]
    short = await change(PASSWORD, "tulips2026")
    assert short["errors"][0]["field"] == "$.new_password"
    assert short["detail"].startswith("Your password must be at least 15 characters.")
    common = await change(PASSWORD, "Password Password")
    assert common["detail"].startswith("This is one of the most common passwords")
    repeated = await change(PASSWORD, "ab" * 10)
    assert "repeats a few characters" in repeated["detail"]
    # None of it changed anything.
    assert (await api.sign_in(user))["access_token"]
    # Guessing the current password with a stolen access token meets the sign-in limits.
    stolen = await api.login(await api.user(org, "citizen_inspector"))
    async with app_client(settings, signin_rate_per_minute=3) as c:  # 1 was the sign-in
        body = {"current_password": "a guess", "new_password": NEW}
        codes = [
            (await c.post("/v1/me/password", json=body, headers=stolen)).status_code
            for _ in range(3)
        ]
    assert codes == [422, 422, 429]


async def test_joining_and_resetting_follow_the_same_password_rule(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    code = (await api.invite(coord, "new@example.org", "citizen_inspector"))["code"]
    accept = f"/v1/invites/{code}/accept"
    r = await api.client.post(accept, json={"display_name": "New", "password": "qwertyuiopasdfgh"})
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "$.password" and "most common" in body["detail"]
    # The refusal spent nothing: the invite still works with a good password.
    r = await api.client.post(accept, json={"display_name": "New", "password": NEW})
    assert r.status_code == 201, r.text

    user = await api.user(org, "citizen_inspector")
    await api.client.post("/v1/auth/password-reset", json={"email": user["email"]})
    token = "a reset token known only from the email"
    await api.conn.execute("update password_resets set token_hash = sha256($1::text::bytea)", token)
    confirm = "/v1/auth/password-reset/confirm"
    r = await api.client.post(confirm, json={"token": token, "password": "x" * 20})
    assert "repeats a few characters" in assert_problem(r, 422)["detail"]
    r = await api.client.post(confirm, json={"token": token, "password": NEW})
    assert r.status_code == 200, r.text


def test_the_shipped_common_password_list_covers_what_the_length_rule_lets_through() -> None:
    from inspections.accounts import password_rule

    entries = password_rule.LIST.read_text(encoding="utf-8").splitlines()
    assert len(entries) > 9000
    # Filtered at the length rule's minimum: lower the minimum, and this asks for a new list.
    assert min(len(e) for e in entries) == password_rule.PASSWORD_MIN
    assert (password_rule.LIST.parent / "LICENSE").read_text().startswith("MIT License")
    assert not password_rule.password_errors(PASSWORD)  # the suite's own password passes


# ---------------------------------------------------------------- secrets and the logs


class Capture(logging.Handler):
    """Every log record, as the JSON line the app would write."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []  # the JSON line, and every attribute of the record
        self.paths: list[str] = []  # of the request lines

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("httpx", "httpcore")):
            return  # the test's own HTTP client, saying what it sent: not the server's log
        line = self.format(record)
        self.lines.append(line + repr(vars(record)))
        self.paths.append(json.loads(line).get("path", ""))


async def submit_page_form(client: AsyncTestClient, path: str, **fields: str) -> httpx.Response:
    """Post a page's form as a browser would: with the hidden fields the page put in it."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return await client.post(
        path, data={**hidden, **fields}, headers={"origin": str(client.base_url)}
    )


async def test_no_invite_code_reset_token_or_password_reaches_a_log_line(api: Api) -> None:
    capture, root = Capture(), logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        org = await api.org()
        coord = await api.login(await api.user(org, "coordinator"))
        secrets: list[str] = [PASSWORD, NEW, "qwertyuiopasdfgh"]

        async def invite(email: str) -> str:
            r = await api.client.post(
                "/v1/invites", json={"email": email, "roles": ["citizen_inspector"]}, headers=coord
            )
            secrets.append(r.json()["code"])
            return r.json()["code"]

        async def reset_token(email: str) -> str:
            r = await api.client.post("/v1/auth/password-reset", json={"email": email})
            assert r.status_code == 202
            body = await api.conn.fetchval(
                "select body from outbox where recipient = $1 order by created_at desc limit 1",
                email,
            )
            token = re.search(r"/password/reset/(\S+)", body)[1]  # type: ignore[index]
            secrets.append(token)
            return token

        # Joining through the API: refused (a common password), accepted, used again.
        code = await invite("api@example.org")
        accept = f"/v1/invites/{code}/accept"
        bad = {"display_name": "Api", "password": "qwertyuiopasdfgh"}
        assert_problem(await api.client.post(accept, json=bad), 422)
        good = {"display_name": "Api", "password": PASSWORD}
        assert (await api.client.post(accept, json=good)).status_code == 201
        assert_problem(await api.client.post(accept, json=good), 410)
        # Joining through the page: refused (too short), then accepted.
        page = f"/invites/{await invite('page@example.org')}"
        r = await submit_page_form(api.client, page, display_name="Page", password="short")
        assert r.status_code == 422
        r = await submit_page_form(api.client, page, display_name="Page", password=PASSWORD)
        assert r.status_code == 200 and "Page" in r.text
        # A reset through the API, and one through the page, each refused once first.
        token = await reset_token("api@example.org")
        confirm = "/v1/auth/password-reset/confirm"
        bad = {"token": token, "password": "qwertyuiopasdfgh"}
        assert_problem(await api.client.post(confirm, json=bad), 422)
        r = await api.client.post(confirm, json={"token": token, "password": NEW})
        assert r.status_code == 200
        page = f"/password/reset/{await reset_token('page@example.org')}"
        assert (await submit_page_form(api.client, page, password="short")).status_code == 422
        r = await submit_page_form(api.client, page, password=NEW)
        assert r.status_code == 200 and "Your password has been changed" in r.text
        # Signing in and refreshing with the new passwords.
        tokens = await api.client.post(
            "/v1/auth/token", json={"email": "page@example.org", "password": NEW, "device": "x"}
        )
        secrets.append(tokens.json()["refresh_token"])
        r = await api.client.post("/v1/auth/refresh", json={"refresh_token": secrets[-1]})
        secrets.append(r.json()["refresh_token"])
    finally:
        root.removeHandler(capture)
        root.setLevel(level)

    # The requests were logged (masked), and no line holds any secret.
    paths = capture.paths
    assert "/v1/invites/***/accept" in paths and "/password/reset/***" in paths
    assert "/invites/***" in paths
    leaks = [(s, line) for line in capture.lines for s in secrets if s in line]
    assert not leaks, leaks[:3]
