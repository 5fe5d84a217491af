"""Services and co-designed, versioned checklists."""

from __future__ import annotations

import copy

from inspections.checklists.starter import load_starters
from tests.helpers import Api, assert_problem
from tests.scenes import SMALL


async def test_services_crud_filters_and_managers(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    manager = await api.user(org, "service_manager")
    mh = await api.login(manager)
    r = await api.client.post(
        "/v1/services",
        headers=coord,
        json={
            "name": "Elm House",
            "kind": "care_home",
            "address": "1 Elm Road",
            "lat": 52.1,
            "lon": -1.2,
            "manager_ids": [manager["id"]],
        },
    )
    assert r.status_code == 201, r.text
    elm = r.json()
    assert elm["geofence_m"] == 150 and elm["manager_ids"] == [manager["id"]]
    await api.client.post(
        "/v1/services",
        headers=coord,
        json={"name": "Ward 7", "kind": "hospital_ward", "lat": 52.2, "lon": -1.3},
    )
    assert [
        s["name"]
        for s in (await api.client.get("/v1/services?kind=care_home", headers=coord)).json()[
            "items"
        ]
    ] == ["Elm House"]
    assert [
        s["name"]
        for s in (await api.client.get("/v1/services?q=ward", headers=coord)).json()["items"]
    ] == ["Ward 7"]
    # The manager sees only their own service.
    assert [
        s["name"] for s in (await api.client.get("/v1/services", headers=mh)).json()["items"]
    ] == ["Elm House"]
    bad = await api.client.post(
        "/v1/services", headers=coord, json={"name": "X", "kind": "Care Home!", "lat": 91, "lon": 0}
    )
    fields = {e["field"] for e in assert_problem(bad, 422)["errors"]}
    assert fields & {"$.kind", "$.lat"}
    r = await api.client.patch(
        f"/v1/services/{elm['id']}", headers=coord, json={"geofence_m": 300, "manager_ids": []}
    )
    assert r.json()["geofence_m"] == 300 and r.json()["manager_ids"] == []
    assert_problem(await api.client.get(f"/v1/services/{elm['id']}", headers=mh), 403)
    not_manager = await api.user(org, "citizen_inspector")
    r = await api.client.patch(
        f"/v1/services/{elm['id']}", headers=coord, json={"manager_ids": [not_manager["id"]]}
    )
    assert assert_problem(r, 422)["errors"][0]["field"] == "$.manager_ids[0]"


async def test_checklist_draft_publish_versions_and_retire(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    r = await api.client.post("/v1/checklists", headers=coord, json=SMALL)
    assert r.status_code == 201, r.text
    cl = r.json()
    assert cl["has_draft"] and cl["latest_version"] == 0
    r = await api.client.post(f"/v1/checklists/{cl['id']}/publish", headers=coord)
    assert r.status_code == 200 and r.json()["version"] == 1
    assert_problem(
        await api.client.post(f"/v1/checklists/{cl['id']}/publish", headers=coord), 409, "no-draft"
    )
    # Editing a published checklist starts a new draft; v1 stays as it was.
    content = copy.deepcopy(SMALL["content"])
    content["sections"][0]["questions"][0]["prompt"] = "Changed prompt"
    r = await api.client.patch(
        f"/v1/checklists/{cl['id']}", headers=coord, json={"content": content}
    )
    assert r.json()["has_draft"] and r.json()["latest_version"] == 1
    r = await api.client.post(f"/v1/checklists/{cl['id']}/publish", headers=coord)
    assert r.json()["version"] == 2
    v1 = (await api.client.get(f"/v1/checklists/{cl['id']}/versions/1", headers=coord)).json()
    v2 = (await api.client.get(f"/v1/checklists/{cl['id']}/versions/2", headers=coord)).json()
    assert v1["content"]["sections"][0]["questions"][0]["prompt"].startswith("Are people")
    assert v2["content"]["sections"][0]["questions"][0]["prompt"] == "Changed prompt"
    assert v1["contributors"] == SMALL["contributors"]
    assert_problem(
        await api.client.get(f"/v1/checklists/{cl['id']}/versions/3", headers=coord), 404
    )
    r = await api.client.post(f"/v1/checklists/{cl['id']}/retire", headers=coord)
    assert r.json()["retired"] is True
    listed = (await api.client.get("/v1/checklists", headers=coord)).json()["items"]
    assert cl["id"] not in [c["id"] for c in listed]
    listed = (await api.client.get("/v1/checklists?include_retired=true", headers=coord)).json()[
        "items"
    ]
    assert cl["id"] in [c["id"] for c in listed]


async def test_malformed_checklists_are_422_naming_the_question(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))

    async def post(mutate) -> dict:  # type: ignore[no-untyped-def]
        body = copy.deepcopy(SMALL)
        mutate(body["content"]["sections"][0]["questions"])
        return assert_problem(
            await api.client.post("/v1/checklists", headers=coord, json=body), 422
        )

    def dup(qs):  # type: ignore[no-untyped-def]
        qs[1]["key"] = "respect"

    body = await post(dup)
    assert "question 'respect': duplicate key" in body["errors"][0]["reason"]
    assert body["errors"][0]["field"] == "$.content.sections[0].questions[1]"

    def empty_scale(qs):  # type: ignore[no-untyped-def]
        qs[0]["labels"] = []

    body = await post(empty_scale)
    assert body["errors"][0]["field"] == "$.content.sections[0].questions[0].labels"
    assert body["errors"][0]["reason"].startswith("question 'respect': labels: ")
    assert "question 'respect'" in body["detail"]

    def bad_type(qs):  # type: ignore[no-untyped-def]
        qs[0]["type"] = "stars"

    body = await post(bad_type)
    assert body["errors"][0]["field"] == "$.content.sections[0].questions[0].type"
    assert body["errors"][0]["reason"] == (
        "question 'respect': unknown type 'stars'; "
        "one of rating, pass_fail, yes_no, choice, number, text"
    )

    def zero_weight(qs):  # type: ignore[no-untyped-def]
        qs[1]["weight"] = 0

    body = await post(zero_weight)
    assert body["errors"][0]["field"] == "$.content.sections[0].questions[1].weight"
    assert body["errors"][0]["reason"].startswith("question 'smells': weight: ")

    def unknown_field(qs):  # type: ignore[no-untyped-def]
        qs[0]["colour"] = "red"

    body = await post(unknown_field)
    assert body["errors"][0]["field"] == "$.content.sections[0].questions[0].colour"
    assert body["errors"][0]["reason"].startswith("question 'respect': ")

    # No domain may pass for the scorecard's overall band, however it is written.
    for name in ("overall", "Overall", "overall band", "OVERALL_BAND", "over_all"):

        def overall(qs, name=name):  # type: ignore[no-untyped-def]
            qs[1]["domain"] = name

        body = await post(overall)
        assert body["errors"][0]["field"] == "$.content.sections[0].questions[1].domain", name
        reason = body["errors"][0]["reason"]
        assert reason.startswith(f"question 'smells': the domain cannot be called {name!r}")
        assert "overall band" in reason

    assert await api.conn.fetchval("select count(*) from checklists") == 0

    # ... nor on a PATCH of the draft.
    created = await api.client.post("/v1/checklists", headers=coord, json=SMALL)
    content = copy.deepcopy(SMALL["content"])
    content["sections"][0]["questions"][0]["domain"] = "overall"
    r = await api.client.patch(
        f"/v1/checklists/{created.json()['id']}", headers=coord, json={"content": content}
    )
    assert "question 'respect': the domain cannot" in assert_problem(r, 422)["detail"]
    r = await api.client.get(f"/v1/checklists/{created.json()['id']}", headers=coord)
    assert r.json()["content"]["sections"][0]["questions"][0]["domain"] == "dignity"


async def test_other_roles_and_organisations_cannot_touch_checklists(api: Api) -> None:
    org, other = await api.org("A"), await api.org("B")
    coord = await api.login(await api.user(org, "coordinator"))
    citizen = await api.login(await api.user(org, "citizen_inspector"))
    stranger = await api.login(await api.user(other, "coordinator"))
    cl = (await api.client.post("/v1/checklists", headers=coord, json=SMALL)).json()
    assert_problem(await api.client.post("/v1/checklists", headers=citizen, json=SMALL), 403)
    assert_problem(await api.client.get(f"/v1/checklists/{cl['id']}", headers=stranger), 404)
    assert_problem(
        await api.client.patch(
            f"/v1/checklists/{cl['id']}", headers=stranger, json={"title": "mine"}
        ),
        404,
    )
    assert_problem(
        await api.client.post(f"/v1/checklists/{cl['id']}/publish", headers=stranger), 404
    )


def test_starter_checklists_are_valid_and_realistic() -> None:
    starters = {c.title: c for c in load_starters()}
    assert set(starters) == {"Care home visit", "Hospital ward walk-round"}
    care = starters["Care home visit"]
    domains = {q.domain for s in care.content.sections for q in s.questions}
    assert {
        "dignity",
        "food_and_drink",
        "activities",
        "environment",
        "staff_interaction",
        "safety",
    } <= domains
    ward = starters["Hospital ward walk-round"]
    assert {q.domain for s in ward.content.sections for q in s.questions} >= {
        "welcoming",
        "safe",
        "caring_and_involving",
        "well_organised_and_calm",
    }
    for c in starters.values():
        assert all(q.easy_read for s in c.content.sections for q in s.questions)
