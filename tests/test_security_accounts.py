"""Accounts and sign-in holes closed (issue 16): each test is the attack or the mishap."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
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
