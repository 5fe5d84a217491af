"""Sign-in, token expiry, refresh rotation and reuse detection, logout, deactivation."""

from __future__ import annotations

import datetime as dt

import jwt

from tests.helpers import PASSWORD, Api, assert_problem


async def test_sign_in_returns_the_shape_the_phone_expects(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    r = await api.client.post(
        "/v1/auth/token",
        json={"email": user["email"].upper(), "password": PASSWORD, "device": "Pixel 8"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]
    me = await api.client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


async def test_wrong_password_and_unknown_email_look_the_same(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "coordinator")
    wrong = await api.client.post(
        "/v1/auth/token", json={"email": user["email"], "password": "nope-nope", "device": "x"}
    )
    unknown = await api.client.post(
        "/v1/auth/token", json={"email": "who@example.org", "password": "nope-nope", "device": "x"}
    )
    a, b = assert_problem(wrong, 401), assert_problem(unknown, 401)
    assert a["detail"] == b["detail"] == "Wrong email or password."
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_no_token_is_401_and_wrong_role_is_403(api: Api) -> None:
    org = await api.org()
    citizen = await api.login(await api.user(org, "citizen_inspector"))
    assert_problem(await api.client.get("/v1/me"), 401)
    assert_problem(await api.client.get("/v1/me", headers={"Authorization": "Bearer junk"}), 401)
    body = assert_problem(await api.client.get("/v1/users", headers=citizen), 403)
    assert "coordinator" in body["detail"]


async def test_expired_access_token_is_refused(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "coordinator")
    tokens = await api.sign_in(user)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims["exp"] = int((dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).timestamp())
    secret = api.client.app.state.settings.jwt_secret
    expired = jwt.encode(claims, secret, algorithm="HS256")
    r = await api.client.get("/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert_problem(r, 401)
    # A token signed with another key is refused too.
    forged = jwt.encode({**claims, "exp": claims["exp"] + 3600}, "other" * 10, algorithm="HS256")
    r = await api.client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert_problem(r, 401)


async def test_refresh_rotates_and_reuse_signs_the_device_out(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    first = await api.sign_in(user)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["device_id"] == first["device_id"]
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await api.client.get("/v1/me", headers=headers)).status_code == 200

    # The phone rotates on; then the old token comes back (a stolen copy, not a retry of
    # a lost answer: test_security_accounts.py): the whole device chain ends.
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200, r.text
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(r, 401, "refresh-token-reused")
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(r, 401)
    assert_problem(await api.client.get("/v1/me", headers=headers), 401)
    # Other devices of the same person are untouched.
    other = await api.login(user, device="tablet")
    assert (await api.client.get("/v1/me", headers=other)).status_code == 200


async def test_logout_revokes_refresh_and_access(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    tokens = await api.sign_in(user)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = await api.client.post(
        "/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    assert r.status_code == 204, r.text
    assert_problem(await api.client.get("/v1/me", headers=headers), 401)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(r, 401)


async def test_cannot_log_out_someone_elses_device(api: Api) -> None:
    org = await api.org()
    a = await api.sign_in(await api.user(org, "citizen_inspector"))
    b = await api.login(await api.user(org, "citizen_inspector"))
    r = await api.client.post(
        "/v1/auth/logout", json={"refresh_token": a["refresh_token"]}, headers=b
    )
    assert_problem(r, 404)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": a["refresh_token"]})
    assert r.status_code == 200


async def test_deactivation_stops_sign_in_and_live_tokens_at_once(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    user = await api.user(org, "citizen_inspector")
    tokens = await api.sign_in(user)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = await api.client.patch(f"/v1/users/{user['id']}", json={"active": False}, headers=coord)
    assert r.status_code == 200 and r.json()["active"] is False
    assert_problem(await api.client.get("/v1/me", headers=headers), 401)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(r, 401)
    r = await api.client.post(
        "/v1/auth/token", json={"email": user["email"], "password": PASSWORD, "device": "x"}
    )
    assert_problem(r, 403, "account-deactivated")


async def test_coordinator_revokes_a_lost_phone(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    user = await api.user(org, "citizen_inspector")
    lost = await api.sign_in(user, device="lost phone")
    kept = await api.login(user, device="new phone")
    r = await api.client.get(f"/v1/users/{user['id']}/devices", headers=coord)
    assert {d["name"] for d in r.json()} == {"lost phone", "new phone"}
    r = await api.client.delete(
        f"/v1/users/{user['id']}/devices/{lost['device_id']}", headers=coord
    )
    assert r.status_code == 204
    lost_h = {"Authorization": f"Bearer {lost['access_token']}"}
    assert_problem(await api.client.get("/v1/me", headers=lost_h), 401)
    assert (await api.client.get("/v1/me", headers=kept)).status_code == 200
    devices = (await api.client.get(f"/v1/users/{user['id']}/devices", headers=coord)).json()
    assert [d["revoked_reason"] for d in devices if d["name"] == "lost phone"] == [
        "revoked by coordinator"
    ]


async def test_sign_in_is_rate_limited(api: Api, settings, seaweed) -> None:  # type: ignore[no-untyped-def]
    from litestar.testing import AsyncTestClient

    from service.app import create_app
    from tests.conftest import make_settings

    limited = make_settings(settings.database_url, seaweed, signin_rate_per_minute=3)
    async with AsyncTestClient(app=create_app(limited)) as c:
        body = {"email": "a@example.org", "password": "whatever1", "device": "x"}
        codes = [(await c.post("/v1/auth/token", json=body)).status_code for _ in range(5)]
        assert codes[:3] == [401, 401, 401]
        assert codes[3:] == [429, 429]
        r = await c.post("/v1/auth/token", json=body)
        assert_problem(r, 429)


async def test_a_change_made_elsewhere_reaches_this_process_cache(api: Api) -> None:
    """Another app process (here: plain SQL) deactivates someone: their token stops at once."""
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    headers = await api.login(user)
    for _ in range(3):  # warm the principal cache
        assert (await api.client.get("/v1/me", headers=headers)).status_code == 200
    await api.conn.execute("update users set active = false where id = $1", user["id"])
    # The caller is read from the database with each request: the very next one is refused.
    assert (await api.client.get("/v1/me", headers=headers)).status_code == 401
