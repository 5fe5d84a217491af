"""Invites, users, training and clearance, roles, cross-organisation isolation, audit."""

from __future__ import annotations

import datetime as dt

from tests.helpers import PASSWORD, Api, assert_problem


async def test_invite_accept_on_a_phone_then_sign_in(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    invite = await api.invite(coord, "rose@example.org", "citizen_inspector")
    expires = dt.datetime.fromisoformat(invite["expires_at"])
    assert dt.timedelta(days=13) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=14)

    r = await api.client.post(
        f"/v1/invites/{invite['code']}/accept",
        json={"display_name": "Rose", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["email"] == "rose@example.org" and user["roles"] == ["citizen_inspector"]
    assert user["organisation_id"] == org

    r = await api.client.post(
        "/v1/auth/token",
        json={"email": "rose@example.org", "password": PASSWORD, "device": "her phone"},
    )
    assert r.status_code == 200
    me = await api.client.get(
        "/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    body = me.json()
    assert body["display_name"] == "Rose"
    assert body["cleared_to_inspect"] is False
    assert body["clearance_reasons"] == [
        "No inspector training recorded.",
        "No safeguarding check recorded.",
    ]

    # Reused code: a clear 410, and no second account.
    r = await api.client.post(
        f"/v1/invites/{invite['code']}/accept",
        json={"display_name": "Mallory", "password": PASSWORD},
    )
    assert_problem(r, 410, "invite-used")
    assert (
        await api.conn.fetchval("select count(*) from users where email = 'rose@example.org'") == 1
    )


async def test_expired_and_unknown_invites(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    code = (await api.invite(coord, "late@example.org", "scrutiny_member"))["code"]
    await api.conn.execute("update invites set expires_at = now() - interval '1 minute'")
    body = {"display_name": "Late", "password": "too late now"}
    assert_problem(
        await api.client.post(f"/v1/invites/{code}/accept", json=body), 410, "invite-expired"
    )
    assert_problem(await api.client.post("/v1/invites/nope/accept", json=body), 404)
    assert await api.conn.fetchval("select count(*) from users where email like 'late%'") == 0


async def test_invite_validation_and_roles(api: Api) -> None:
    org = await api.org()
    coord_user = await api.user(org, "coordinator")
    coord = await api.login(coord_user)
    bad_role = await api.client.post(
        "/v1/invites", json={"email": "x@example.org", "roles": ["admin"]}, headers=coord
    )
    body = assert_problem(bad_role, 422)
    assert body["errors"][0]["field"] == "$.roles[0]"
    taken = await api.client.post(
        "/v1/invites",
        json={"email": coord_user["email"], "roles": ["coordinator"]},
        headers=coord,
    )
    assert_problem(taken, 409, "email-taken")
    scrutiny = await api.login(await api.user(org, "scrutiny_member"))
    r = await api.client.post(
        "/v1/invites", json={"email": "y@example.org", "roles": ["coordinator"]}, headers=scrutiny
    )
    assert_problem(r, 403)


async def test_training_makes_a_citizen_cleared_and_expiry_says_why(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    citizen = await api.user(org, "citizen_inspector")
    me_h = await api.login(citizen)
    today = dt.date.today()
    r = await api.client.post(
        f"/v1/users/{citizen['id']}/training",
        json={
            "course": "Enter and View authorised representative",
            "completed_on": str(today - dt.timedelta(days=10)),
            "expires_on": str(today + dt.timedelta(days=700)),
        },
        headers=coord,
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/v1/users/{citizen['id']}/training",
        json={
            "kind": "safeguarding_check",
            "course": "DBS enhanced",
            "completed_on": str(today - dt.timedelta(days=400)),
            "expires_on": str(today - dt.timedelta(days=1)),
        },
        headers=coord,
    )
    assert r.status_code == 201
    me = (await api.client.get("/v1/me", headers=me_h)).json()
    assert me["cleared_to_inspect"] is False
    assert me["clearance_reasons"] == [
        f"Safeguarding check expired on {(today - dt.timedelta(days=1)).isoformat()}."
    ]
    await api.client.post(
        f"/v1/users/{citizen['id']}/training",
        json={
            "kind": "safeguarding_check",
            "course": "DBS enhanced",
            "completed_on": str(today),
            "expires_on": str(today + dt.timedelta(days=1000)),
        },
        headers=coord,
    )
    me = (await api.client.get("/v1/me", headers=me_h)).json()
    assert me["cleared_to_inspect"] is True and me["clearance_reasons"] == []
    assert len(me["training"]) == 3
    # Inspectors cannot record their own training.
    r = await api.client.post(
        f"/v1/users/{citizen['id']}/training",
        json={"course": "x", "completed_on": str(today)},
        headers=me_h,
    )
    assert_problem(r, 403)
    # expires before completed is refused
    r = await api.client.post(
        f"/v1/users/{citizen['id']}/training",
        json={
            "course": "x",
            "completed_on": str(today),
            "expires_on": str(today - dt.timedelta(days=3)),
        },
        headers=coord,
    )
    assert_problem(r, 422)


async def test_coordinator_lists_and_updates_users(api: Api) -> None:
    org = await api.org()
    coord_user = await api.user(org, "coordinator")
    coord = await api.login(coord_user)
    for _ in range(4):
        await api.user(org, "citizen_inspector")
    await api.user(org, "service_manager")
    page1 = (await api.client.get("/v1/users?limit=3", headers=coord)).json()
    assert len(page1["items"]) == 3 and page1["next_cursor"]
    page2 = (
        await api.client.get(f"/v1/users?limit=3&cursor={page1['next_cursor']}", headers=coord)
    ).json()
    assert page2["next_cursor"] is None
    ids = [u["id"] for u in page1["items"] + page2["items"]]
    assert len(ids) == len(set(ids)) == 6
    citizens = (await api.client.get("/v1/users?role=citizen_inspector", headers=coord)).json()
    assert len(citizens["items"]) == 4
    assert_problem(
        await api.client.get("/v1/users?cursor=garbage", headers=coord), 400, "bad-cursor"
    )

    target = citizens["items"][0]["id"]
    r = await api.client.patch(
        f"/v1/users/{target}",
        json={"roles": ["citizen_inspector", "scrutiny_member"]},
        headers=coord,
    )
    assert r.status_code == 200 and r.json()["roles"] == ["citizen_inspector", "scrutiny_member"]
    # A coordinator cannot lock themselves out.
    r = await api.client.patch(
        f"/v1/users/{coord_user['id']}", json={"active": False}, headers=coord
    )
    assert_problem(r, 409, "self-lockout")


async def test_people_of_another_organisation_are_invisible(api: Api) -> None:
    north = await api.org("North")
    south = await api.org("South")
    north_coord = await api.login(await api.user(north, "coordinator"))
    south_user = await api.user(south, "citizen_inspector")
    south_tokens = await api.sign_in(south_user)
    uid = south_user["id"]
    for method, path, body in [
        ("GET", f"/v1/users/{uid}", None),
        ("PATCH", f"/v1/users/{uid}", {"active": False}),
        ("POST", f"/v1/users/{uid}/training", {"course": "x", "completed_on": "2026-01-01"}),
        ("GET", f"/v1/users/{uid}/devices", None),
        ("DELETE", f"/v1/users/{uid}/devices/{south_tokens['device_id']}", None),
    ]:
        r = await api.client.request(method, path, json=body, headers=north_coord)
        assert_problem(r, 404)
    listed = (await api.client.get("/v1/users", headers=north_coord)).json()["items"]
    assert uid not in {u["id"] for u in listed}
    # Nothing changed for the southern user.
    south_h = {"Authorization": f"Bearer {south_tokens['access_token']}"}
    assert (await api.client.get("/v1/me", headers=south_h)).status_code == 200
    audit = (await api.client.get("/v1/audit", headers=north_coord)).json()["items"]
    assert all(e["object_id"] != uid for e in audit)


async def test_inspector_sees_self_but_not_others(api: Api) -> None:
    org = await api.org()
    a = await api.user(org, "citizen_inspector")
    b = await api.user(org, "citizen_inspector")
    h = await api.login(a)
    assert (await api.client.get(f"/v1/users/{a['id']}", headers=h)).status_code == 200
    assert_problem(await api.client.get(f"/v1/users/{b['id']}", headers=h), 403)
    assert_problem(await api.client.get(f"/v1/users/{b['id']}/devices", headers=h), 403)


async def test_every_write_is_in_the_audit_log(api: Api) -> None:
    org = await api.org()
    coord_user = await api.user(org, "coordinator")
    coord = await api.login(coord_user)
    code = (await api.invite(coord, "new@example.org", "citizen_inspector"))["code"]
    r = await api.client.post(
        f"/v1/invites/{code}/accept", json={"display_name": "New", "password": PASSWORD}
    )
    new_id = r.json()["id"]
    await api.client.post(
        f"/v1/users/{new_id}/training",
        json={"course": "Basics", "completed_on": "2026-01-01"},
        headers=coord,
    )
    await api.client.patch(f"/v1/users/{new_id}", json={"display_name": "Newer"}, headers=coord)
    r = await api.client.get("/v1/audit", headers=coord)
    assert r.status_code == 200
    actions = [e["action"] for e in r.json()["items"]]
    assert actions[:5] == [
        "user.update",
        "training.record",
        "invite.accept",
        "invite.create",
        "auth.sign_in",
    ]
    entry = r.json()["items"][0]
    # People are named by id in the log, never by name (erasure needs no log edit).
    assert entry["actor_id"] == coord_user["id"] and entry["summary"] == {
        "display_name_changed": True
    }
    assert entry["request_id"]
    only = (
        await api.client.get(f"/v1/audit?object_id={new_id}&action=invite.accept", headers=coord)
    ).json()["items"]
    assert [e["actor_id"] for e in only] == [new_id]
    page = (await api.client.get("/v1/audit?limit=2", headers=coord)).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (
        await api.client.get(f"/v1/audit?limit=50&cursor={page['next_cursor']}", headers=coord)
    ).json()
    assert len(rest["items"]) == 3
    # The log cannot be rewritten, even by the application's own database role.
    import asyncpg
    import pytest

    with pytest.raises(asyncpg.RaiseError):
        await api.conn.execute("update audit_log set action = 'x'")
