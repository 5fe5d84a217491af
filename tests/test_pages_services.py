"""The Services screens: list and search, add and edit a service with its managers; refused
exactly as the API refuses."""

from __future__ import annotations

import re

from tests.helpers import Api, browser_as, form_post, text_of

ELM = {
    "name": "Elm House",
    "kind": "care_home",
    "address": "1 Elm Road, Northshire",
    "lat": "51.5072",
    "lon": "-0.1276",
    "geofence_m": "200",
}


async def test_services_screens_refuse_whom_the_api_refuses(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    manager = await api.user(org, "service_manager")
    citizen = await api.user(org, "citizen_inspector")
    other = await api.user(await api.org("Southshire"), "coordinator")
    elm = (
        await api.client.post(
            "/v1/services", headers=coord, json={**ELM, "lat": 51.5, "lon": -0.12}
        )
    ).json()
    oak = (
        await api.client.post(
            "/v1/services",
            headers=coord,
            json={
                "name": "Oak Ward",
                "kind": "hospital_ward",
                "lat": 51,
                "lon": 0,
                "manager_ids": [manager["id"]],
            },
        )
    ).json()

    # A citizen inspector: 403, from the API and every screen.
    assert (
        await api.client.get("/v1/services", headers=await api.login(citizen))
    ).status_code == 403
    await browser_as(api, citizen)
    for path in ("/services", "/services/new", f"/services/{elm['id']}"):
        assert (await api.client.get(path)).status_code == 403, path
    assert (await form_post(api.client, "/services/new", ELM)).status_code == 403

    # A manager lists only the services they manage (as the API does) and edits none.
    await browser_as(api, manager)
    r = await api.client.get("/services")
    assert r.status_code == 200 and "Oak Ward" in r.text and "Elm House" not in r.text
    assert "Add a service" not in r.text
    assert (await api.client.get(f"/services/{oak['id']}")).status_code == 403
    r = await form_post(api.client, f"/services/{oak['id']}", {**ELM, "name": "Mine now"})
    assert r.status_code == 403

    # Another organisation's coordinator: the service does not exist for them (404).
    r = await api.client.patch(
        f"/v1/services/{elm['id']}", headers=await api.login(other), json={"name": "x"}
    )
    assert r.status_code == 404
    await browser_as(api, other)
    assert (await api.client.get(f"/services/{elm['id']}")).status_code == 404
    r = await form_post(api.client, f"/services/{elm['id']}", {**ELM, "name": "Taken"})
    assert r.status_code == 404
    assert "Elm House" not in (await api.client.get("/services")).text
    names = {r["name"] for r in await api.conn.fetch("select name from services")}
    assert names == {"Elm House", "Oak Ward"}


async def test_a_coordinator_adds_and_edits_a_service_with_its_managers(api: Api) -> None:
    org = await api.org()
    coord = await api.user(org, "coordinator")
    mo = await api.user(org, "service_manager", name="Manager Mo")
    jo = await api.user(org, "service_manager", name="Manager Jo")
    await api.user(await api.org("Southshire"), "service_manager", name="Elsewhere Ed")
    await browser_as(api, coord)

    r = await api.client.get("/services/new")
    assert "Manager Mo" in r.text and "Manager Jo" in r.text and "Elsewhere Ed" not in r.text
    # Mistakes in words, each linked to its field, what was typed kept; nothing made.
    r = await form_post(
        api.client, "/services/new", {**ELM, "lat": "north", "manager_ids": mo["id"]}
    )
    assert r.status_code == 422
    assert '<a href="#lat">Latitude must be a number from -90 to 90, like 51.5072</a>' in r.text
    assert 'value="Elm House"' in r.text
    assert re.search(f'value="{mo["id"]}" id="[^"]+" checked', r.text)
    r = await form_post(api.client, "/services/new", {**ELM, "geofence_m": "5"})
    assert r.status_code == 422 and "whole number of metres from 10 to 10000" in r.text
    r = await form_post(api.client, "/services/new", {**ELM, "kind": ""})
    assert r.status_code == 422 and '<a href="#kind">Choose the kind of service</a>' in r.text
    # A manager who is not one of ours: the domain's check, said beside the field.
    r = await form_post(
        api.client, "/services/new", {**ELM, "manager_ids": "6f1c0d3e-1111-4c4c-8888-000000000000"}
    )
    assert r.status_code == 422
    assert "Managers: not an active service manager in your organisation" in r.text
    assert await api.conn.fetchval("select count(*) from services") == 0

    r = await form_post(
        api.client, "/services/new", {**ELM, "manager_ids": mo["id"]}, follow_redirects=False
    )
    assert r.status_code == 303
    words = text_of((await api.client.get(r.headers["location"])).text)
    assert "Service saved." in words
    row = await api.conn.fetchrow("select * from services")
    assert (row["name"], row["kind"], row["lat"], row["lon"], row["geofence_m"]) == (
        "Elm House",
        "care_home",
        51.5072,
        -0.1276,
        200,
    )
    # The API reads what the page wrote.
    service = (
        await api.client.get(f"/v1/services/{row['id']}", headers=await api.login(coord))
    ).json()
    assert service["manager_ids"] == [mo["id"]] and service["address"] == ELM["address"]

    # Edit: another manager instead, a wider geofence.
    r = await form_post(
        api.client,
        f"/services/{row['id']}",
        {**ELM, "name": "Elm House Care Home", "geofence_m": "350", "manager_ids": jo["id"]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    service = (
        await api.client.get(f"/v1/services/{row['id']}", headers=await api.login(coord))
    ).json()
    assert service["name"] == "Elm House Care Home" and service["geofence_m"] == 350
    assert service["manager_ids"] == [jo["id"]]
    audit = await api.conn.fetch(
        "select action from audit_log where object_id = $1 order by id", str(row["id"])
    )
    assert [a["action"] for a in audit] == ["service.create", "service.update"]

    # The list: search by name or address, filter by kind, managers by name.
    words = text_of((await api.client.get("/services?q=elm+road")).text)
    assert "Elm House Care Home" in words and "Managed by Manager Jo" in words
    assert "Elm House" not in text_of((await api.client.get("/services?kind=gp_surgery")).text)
