"""The coordinator's People screens: list and search, invite and send again, name and roles,
training and safeguarding checks, devices, deactivating; refused exactly as the API refuses."""

from __future__ import annotations

import datetime as dt
import re

from tests.helpers import PASSWORD, Api, browser_as, form_post, text_of


async def test_people_screens_refuse_whom_the_api_refuses(api: Api) -> None:
    org = await api.org()
    coord = await api.user(org, "coordinator")
    citizen = await api.user(org, "citizen_inspector")
    other_coord = await api.user(await api.org("Southshire"), "coordinator")
    device = await api.sign_in(citizen)
    training = {
        "kind": "course",
        "course": "Lay assessor",
        "completed_on": "2026-01-05",
    }

    # A citizen inspector: 403 from the API and from every People screen.
    headers = await api.login(citizen)
    assert (await api.client.get("/v1/users", headers=headers)).status_code == 403
    await browser_as(api, citizen)
    for path in ("/people", "/people/invite", "/people/invites", f"/people/{coord['id']}"):
        r = await api.client.get(path)
        assert r.status_code == 403, path
        assert "This needs one of the roles: coordinator." in r.text
    r = await form_post(
        api.client, "/people/invite", {"email": "x@example.org", "roles": "coordinator"}
    )
    assert r.status_code == 403
    assert await api.conn.fetchval("select count(*) from invites") == 0

    # A coordinator of another organisation: the person does not exist for them (404),
    # as in the API.
    headers = await api.login(other_coord)
    r = await api.client.get(f"/v1/users/{citizen['id']}", headers=headers)
    assert r.status_code == 404
    r = await api.client.post(f"/v1/users/{citizen['id']}/training", headers=headers, json=training)
    assert r.status_code == 404
    await browser_as(api, other_coord)
    assert (await api.client.get(f"/people/{citizen['id']}")).status_code == 404
    for path, data in (
        (f"/people/{citizen['id']}", {"display_name": "Taken over", "roles": "coordinator"}),
        (f"/people/{citizen['id']}/training", training),
        (f"/people/{citizen['id']}/active", {"active": "no"}),
        (f"/people/{citizen['id']}/devices/{device['device_id']}/revoke", {}),
    ):
        r = await form_post(api.client, path, data)
        assert r.status_code == 404, path
        assert "<h1>Not found</h1>" in r.text or "Not found" in r.text
    row = await api.conn.fetchrow(
        "select display_name, roles, active from users where id = $1", citizen["id"]
    )
    assert row["roles"] == ["citizen_inspector"] and row["active"]
    assert await api.conn.fetchval("select count(*) from training_records") == 0
    assert (
        await api.conn.fetchval("select revoked_at from devices where id = $1", device["device_id"])
        is None
    )
    # Their own list shows only their own organisation.
    r = await api.client.get("/people")
    assert r.status_code == 200 and citizen["email"] not in r.text
    # Signed out: to the sign-in page and back.
    api.client.cookies.clear()
    r = await api.client.get("/people", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fpeople"


async def test_a_coordinator_invites_and_sends_again_in_words(api: Api) -> None:
    org = await api.org()
    coord = await api.user(org, "coordinator")
    await api.user(org, "citizen_inspector", email="sam@example.org")
    await browser_as(api, coord)

    r = await api.client.get("/people/invite")
    assert r.status_code == 200 and 'name="_csrf_token"' in r.text
    # Mistakes come back in words, linked to the field, what was typed kept.
    r = await form_post(api.client, "/people/invite", {"email": "rose at example"})
    assert r.status_code == 422
    assert '<a href="#email">Enter an email address like name@example.org</a>' in r.text
    assert 'value="rose at example"' in r.text
    r = await form_post(api.client, "/people/invite", {"email": "rose@example.org"})
    assert r.status_code == 422 and '<a href="#roles">Choose at least one role</a>' in r.text
    # Someone already here: the API's 409, said on the form.
    r = await form_post(
        api.client, "/people/invite", {"email": "SAM@example.org", "roles": "citizen_inspector"}
    )
    assert r.status_code == 409
    assert "already has an account with this email address" in r.text
    assert await api.conn.fetchval("select count(*) from invites") == 0

    r = await form_post(
        api.client,
        "/people/invite",
        {"email": "rose@example.org", "roles": ["citizen_inspector", "safeguarding_lead"]},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/people/invites?sent=")
    invite = await api.conn.fetchrow("select id, roles, sent_count from invites")
    assert invite["roles"] == ["citizen_inspector", "safeguarding_lead"]
    r = await api.client.get(r.headers["location"])
    words = text_of(r.text)
    assert "Invite emailed to rose@example.org." in words
    assert "As citizen inspector and safeguarding lead. Sent 1 time" in words
    # The code is emailed, never shown on a page.
    email = await api.conn.fetchval("select body from outbox where recipient = 'rose@example.org'")
    code = re.search(r"/invites/(\S+)", email).group(1)
    assert code not in r.text

    r = await form_post(
        api.client, f"/people/invites/{invite['id']}/resend", {}, follow_redirects=False
    )
    assert r.status_code == 303
    assert await api.conn.fetchval("select sent_count from invites") == 2
    # Expired since the list was shown: the API's 410, and what to do instead.
    await api.conn.execute("update invites set expires_at = now() - interval '1 day'")
    r = await form_post(api.client, f"/people/invites/{invite['id']}/resend", {})
    assert r.status_code == 410
    assert "This invite has expired. Invite the person again." in r.text
    r = await api.client.get("/people/invites?status=expired")
    assert "Invite again" in r.text
    again = re.search(r'href="(/people/invite\?[^"]+)"', r.text).group(1).replace("&amp;", "&")
    r = await api.client.get(again)
    assert 'value="rose@example.org"' in r.text
    assert 'value="safeguarding_lead" id="roles-safeguarding_lead" checked' in r.text


async def test_roles_training_devices_and_deactivation_through_the_person_page(
    api: Api,
) -> None:
    org = await api.org()
    coord = await api.user(org, "coordinator", name="Cora")
    rose = await api.user(org, "citizen_inspector", name="Rose")
    phone = await api.sign_in(rose, "Rose's phone")
    await browser_as(api, coord)
    page = f"/people/{rose['id']}"

    words = text_of((await api.client.get(page)).text)
    assert "Not cleared to inspect: No inspector training recorded." in words
    assert "Rose's phone" in words

    # Training: the expiry before completion is refused in words, nothing recorded.
    today = dt.date.today()
    bad = {
        "kind": "course",
        "course": "Lay assessor training",
        "completed_on": today.isoformat(),
        "expires_on": (today - dt.timedelta(days=1)).isoformat(),
    }
    r = await form_post(api.client, f"{page}/training", bad)
    assert r.status_code == 422
    assert '<a href="#expires_on">Expiry date: must not be before the date completed</a>' in r.text
    assert 'value="Lay assessor training"' in r.text
    r = await form_post(api.client, f"{page}/training", {**bad, "completed_on": "31/02/2026"})
    assert r.status_code == 422 and "Enter the date it was completed, like 31/01/2027" in r.text
    assert await api.conn.fetchval("select count(*) from training_records") == 0
    # Both records, the check expiring within 30 days: cleared, but not for long.
    for kind, expires in (("course", 400), ("safeguarding_check", 20)):
        r = await form_post(
            api.client,
            f"{page}/training",
            {
                "kind": kind,
                "course": "Enhanced DBS" if kind != "course" else "Lay assessor training",
                "completed_on": (today - dt.timedelta(days=10)).isoformat(),
                "expires_on": (today + dt.timedelta(days=expires)).isoformat(),
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    words = text_of((await api.client.get(page)).text)
    assert "Cleared, but not for long: Safeguarding check expires on" in words
    assert "Safeguarding check (DBS): Enhanced DBS" in words
    # The same record the API reads.
    detail = (
        await api.client.get(f"/v1/users/{rose['id']}", headers=await api.login(coord))
    ).json()
    assert detail["cleared_to_inspect"] and len(detail["training"]) == 2
    # The list finds her among those whose checks expire soon.
    r = await api.client.get("/people?clearance=expiring")
    assert "Rose" in r.text and "Cora" not in r.text
    r = await api.client.get("/people?q=cor")
    assert "Cora" in r.text and ">Rose<" not in r.text

    # Roles: a coordinator cannot remove their own coordinator role (the API's 409).
    r = await form_post(
        api.client, f"/people/{coord['id']}", {"display_name": "Cora", "roles": "citizen_inspector"}
    )
    assert r.status_code == 409 and "You cannot deactivate yourself" in r.text
    r = await form_post(
        api.client,
        page,
        {"display_name": "Rose Tan", "roles": ["citizen_inspector", "scrutiny_member"]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    words = text_of((await api.client.get(r.headers["location"])).text)
    assert "Name and roles saved." in words
    assert "Citizen inspector and scrutiny committee member" in words

    # Devices: signing one out ends its refresh token.
    r = await form_post(
        api.client, f"{page}/devices/{phone['device_id']}/revoke", {}, follow_redirects=False
    )
    assert r.status_code == 303
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert r.status_code == 401
    # Deactivating: she cannot sign in; reactivating: she can.
    r = await form_post(api.client, f"{page}/active", {"active": "no"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("saved=deactivated")
    r = await api.client.post(
        "/v1/auth/token", json={"email": rose["email"], "password": PASSWORD, "device": "p"}
    )
    assert r.status_code == 403
    r = await api.client.get("/people")
    assert ">Rose Tan<" not in r.text
    r = await api.client.get("/people?status=deactivated")
    assert ">Rose Tan<" in r.text and "Deactivated" in r.text
    await form_post(api.client, f"{page}/active", {"active": "yes"})
    await api.sign_in(rose)
    actions = await api.conn.fetch(
        "select action from audit_log where object_id = $1 order by id", rose["id"]
    )
    assert [a["action"] for a in actions].count("training.record") == 2
