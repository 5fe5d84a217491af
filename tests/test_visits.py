"""Visits, teams and the phone's offline flow: bundle, drafts, retries, final, locks."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import uuid

import httpx

from tests.helpers import Api, assert_problem
from tests.scenes import NOW, SMALL, WINDOW, Scene, answers


async def test_the_phone_flow_end_to_end(api: Api) -> None:
    s = await Scene(api).build()
    r = await s.visit()
    assert r.status_code == 201, r.text
    visit = r.json()
    assert visit["status"] == "planned" and visit["checklist_version"] == 1
    ann = await api.login(s.ann)

    # The inspector's list shows the visit with its bundle's ETag.
    page = (await api.client.get("/v1/me/visits", headers=ann)).json()
    assert page["next_cursor"] is None
    mine = page["items"]
    assert [v["id"] for v in mine] == [visit["id"]]
    assert mine[0]["perspective"] == "citizen" and mine[0]["submission"] is None

    # Download the bundle, then 304 on the second download.
    r = await api.client.get(f"/v1/visits/{visit['id']}/bundle", headers=ann)
    assert r.status_code == 200
    etag = r.headers["etag"]
    assert etag == mine[0]["bundle_etag"] and not etag.startswith("W/")
    bundle = r.json()
    assert bundle["service"]["lat"] == 43.467 and bundle["service"]["geofence_m"] == 150
    assert bundle["checklist"]["version"] == 1
    assert [q["key"] for q in bundle["checklist"]["content"]["sections"][0]["questions"]] == [
        "respect",
        "smells",
    ]
    assert sorted(m["display_name"] for m in bundle["team"]) == ["Ann", "Bob", "Dr Pat"]
    assert all(set(m) == {"display_name", "perspective", "lead"} for m in bundle["team"])
    r = await api.client.get(
        f"/v1/visits/{visit['id']}/bundle", headers={**ann, "If-None-Match": etag}
    )
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag

    # Save a draft; the network drops, so the phone repeats the same PUT.
    sub_id = str(uuid.uuid4())
    url = f"/v1/visits/{visit['id']}/submissions/{sub_id}"
    draft = {"state": "draft", "answers": answers()[:1], "device": "Ann's phone"}
    first = await api.client.put(url, headers=ann, json=draft)
    assert first.status_code == 201, first.text
    again = await api.client.put(url, headers=ann, json=draft)
    assert again.status_code == 200 and again.json() == first.json()
    assert await api.conn.fetchval("select count(*) from submissions") == 1
    assert (await api.client.get(f"/v1/visits/{visit['id']}", headers=s.coord)).json()[
        "status"
    ] == "in_progress"

    # A final with everything answered, sent twice (retry), then a change is refused.
    final = {"state": "final", "answers": answers(), "device": "Ann's phone"}
    r = await api.client.put(url, headers={**ann, "If-Match": first.headers["etag"]}, json=final)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "final" and body["finalised_at"]
    assert [(a["points"], a["max_points"]) for a in body["answers"]] == [(3, 4), (2, 2)]
    r2 = await api.client.put(url, headers={**ann, "If-Match": first.headers["etag"]}, json=final)
    assert r2.status_code == 200 and r2.json() == body
    # Its per-domain sums are kept for scorecards (points x weight over max x weight).
    rows = await api.conn.fetch(
        "select domain, wp, wm, perspective from submission_scores where submission_id = $1"
        " order by domain",
        uuid.UUID(sub_id),
    )
    assert [tuple(r) for r in rows] == [
        ("dignity", 3, 4, "citizen"),
        ("environment", 2, 2, "citizen"),
    ]
    changed = {**final, "answers": answers(respect=1)}
    assert_problem(
        await api.client.put(url, headers={**ann, "If-Match": r.headers["etag"]}, json=changed),
        409,
        "submission-final",
    )

    # The others finish; the visit is then submitted.
    for who, perspective_answers in ((s.bob, answers(2, True)), (s.pro, answers(4, False))):
        h = await api.login(who)
        r = await api.client.put(
            f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}",
            headers=h,
            json={"state": "final", "answers": perspective_answers},
        )
        assert r.status_code == 201, r.text
    v = (await api.client.get(f"/v1/visits/{visit['id']}", headers=s.coord)).json()
    assert v["status"] == "submitted"

    # The coordinator reads them side by side.
    r = await api.client.get(f"/v1/visits/{visit['id']}/submissions", headers=s.coord)
    side = {
        row["question_key"]: sorted(row["answers"].values(), key=str)
        for row in r.json()["side_by_side"]
    }
    assert side["respect"] == [2, 3, 4]
    assert {x["perspective"] for x in r.json()["submissions"]} == {"citizen", "professional"}
    assert_problem(await api.client.get(f"/v1/visits/{visit['id']}/submissions", headers=ann), 403)

    # A new checklist version does not change this visit.
    content = copy.deepcopy(SMALL["content"])
    content["sections"][0]["questions"][0]["prompt"] = "New wording"
    await api.client.patch(
        f"/v1/checklists/{s.checklist['id']}", headers=s.coord, json={"content": content}
    )
    r = await api.client.post(f"/v1/checklists/{s.checklist['id']}/publish", headers=s.coord)
    assert r.json()["version"] == 2
    r = await api.client.get(
        f"/v1/visits/{visit['id']}/bundle", headers={**ann, "If-None-Match": etag}
    )
    assert r.status_code in (200, 304)
    r = await api.client.get(f"/v1/visits/{visit['id']}/bundle", headers=ann)
    assert r.json()["checklist"]["version"] == 1
    assert r.json()["checklist"]["content"]["sections"][0]["questions"][0]["prompt"] != (
        "New wording"
    )


async def test_my_visits_are_a_cursor_paginated_list_like_every_other(api: Api) -> None:
    s = await Scene(api).build()
    ids = []
    for hours in (30, 10, 20, 40, 50):  # made out of order, listed soonest first
        starts = NOW + dt.timedelta(hours=hours)
        r = await s.visit(
            starts_at=starts.isoformat(), ends_at=(starts + dt.timedelta(hours=2)).isoformat()
        )
        assert r.status_code == 201, r.text
        ids.append((starts, r.json()["id"]))
    ann = await api.login(s.ann)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await api.client.get("/v1/me/visits", headers=ann, params=params)
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"items", "next_cursor"}
        seen += [v["id"] for v in r.json()["items"]]
        pages += 1
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [i for _, i in sorted(ids)] and pages == 3
    # Someone else's visits are not mine; a forged cursor is a clear 400.
    assert (await api.client.get("/v1/me/visits", headers=s.coord)).json()["items"] == []
    r = await api.client.get("/v1/me/visits", headers=ann, params={"cursor": "bm9wZQ"})
    assert_problem(r, 400, "bad-cursor")


async def test_team_rules_are_422_with_reasons(api: Api) -> None:
    s = await Scene(api).build()
    expired = await api.user(s.org, "citizen_inspector", name="Eve")
    await api.conn.execute(
        """insert into training_records (organisation_id, user_id, kind, course, completed_on,
               expires_on) values ($1, $2, 'course', 'x', '2020-01-01', '2021-01-01')""",
        s.org,
        expired["id"],
    )
    r = await s.visit(s.team((expired, "citizen"), (s.ann, "citizen"), (s.pro, "professional")))
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "$.team[0]"
    assert (
        "Eve is not cleared for this visit: Inspector training expired on 2021-01-01."
        in (body["detail"])
    )

    # The service's manager cannot inspect it.
    await api.conn.execute(
        "update users set roles = roles || '{citizen_inspector}' where id=$1", s.manager["id"]
    )
    r = await s.visit(s.team((s.manager, "citizen"), (s.ann, "citizen"), (s.bob, "citizen")))
    assert "manages this service" in assert_problem(r, 422)["detail"]

    # Citizens must be at least half the team, and at least 2 in a team of 4 or more.
    pro2 = await api.user(s.org, "professional_inspector")
    pro3 = await api.user(s.org, "professional_inspector")
    r = await s.visit(s.team((s.ann, "citizen"), (s.pro, "professional"), (pro2, "professional")))
    assert "at least 2 citizen inspectors out of 3" in assert_problem(r, 422)["detail"]
    await api.conn.execute(
        "update organisations set settings = '{\"min_citizen_share\": 0.25}' where id = $1", s.org
    )
    r = await s.visit(
        s.team(
            (s.ann, "citizen"),
            (s.pro, "professional"),
            (pro2, "professional"),
            (pro3, "professional"),
        )
    )
    assert "at least 2 citizen inspectors out of 4" in assert_problem(r, 422)["detail"]
    r = await s.visit(s.team((s.ann, "citizen"), (s.pro, "professional"), (pro2, "professional")))
    assert r.status_code == 201

    # A citizen in a professional seat, a stranger, and a window backwards.
    other_org = await api.org("Elsewhere")
    stranger = await api.cleared_citizen(other_org)
    r = await s.visit(s.team((s.ann, "professional"), (stranger, "citizen")))
    reasons = [e["reason"] for e in assert_problem(r, 422)["errors"]]
    assert "Ann is not a professional inspector" in reasons
    assert "no such person in your organisation" in reasons
    r = await s.visit(starts_at=WINDOW["ends_at"], ends_at=WINDOW["starts_at"])
    assert assert_problem(r, 422)["errors"][0]["field"] == "$.ends_at"
    assert await api.conn.fetchval("select count(*) from visits") == 1


async def test_uncleared_citizen_and_non_member_are_refused_with_reasons(api: Api) -> None:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    outsider = await api.login(await api.cleared_citizen(s.org))
    url = f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}"
    body = {"state": "draft", "answers": answers()}
    r = await api.client.put(url, headers=outsider, json=body)
    assert "team" in assert_problem(r, 403)["detail"]
    assert_problem(await api.client.get(f"/v1/visits/{visit['id']}/bundle", headers=outsider), 403)
    # Ann's safeguarding check lapses after she was scheduled.
    await api.conn.execute(
        """update training_records set expires_on = current_date - 1
            where user_id = $1 and kind = 'safeguarding_check'""",
        s.ann["id"],
    )
    ann = await api.login(s.ann)
    r = await api.client.put(url, headers=ann, json=body)
    assert "Safeguarding check expired" in assert_problem(r, 403, "not-cleared")["detail"]
    # Another organisation's coordinator cannot even see the visit.
    stranger = await api.login(await api.user(await api.org("B"), "coordinator"))
    assert_problem(await api.client.get(f"/v1/visits/{visit['id']}/bundle", headers=stranger), 404)
    assert_problem(await api.client.get(f"/v1/visits/{visit['id']}", headers=stranger), 404)
    assert await api.conn.fetchval("select count(*) from submissions") == 0


async def test_final_validation_lists_every_problem(api: Api) -> None:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    ann = await api.login(s.ann)
    url = f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}"

    async def final(*answers: dict) -> httpx.Response:
        return await api.client.put(
            url, headers=ann, json={"state": "final", "answers": list(answers)}
        )

    r = await final({"question_key": "respect", "value": 9}, {"question_key": "nope", "value": 1})
    reasons = [e["reason"] for e in assert_problem(r, 422)["errors"]]
    assert "question 'respect': the answer must be a whole number from 1 to 4" in reasons
    assert "no question 'nope' in this checklist" in reasons
    assert "question 'smells' is required" in reasons
    r = await final({"question_key": "respect", "na": True}, {"question_key": "smells", "na": True})
    reasons = [e["reason"] for e in assert_problem(r, 422)["errors"]]
    assert reasons == ["question 'respect' cannot be answered N/A"]
    r = await final(
        {"question_key": "respect", "value": "3"}, {"question_key": "smells", "value": 1}
    )
    assert len(assert_problem(r, 422)["errors"]) == 2
    r = await final({"question_key": "respect", "value": 2}, {"question_key": "smells", "na": True})
    assert r.status_code == 201
    assert r.json()["answers"][1] == {
        "question_key": "smells",
        "value": None,
        "na": True,
        "comment": None,
        "points": None,
        "max_points": None,
    }


async def test_drafts_need_if_match_and_stale_etags_get_412(api: Api) -> None:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    phone = await api.login(s.ann, device="phone")
    tablet = await api.login(s.ann, device="tablet")
    url = f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}"
    r = await api.client.put(url, headers=phone, json={"state": "draft", "answers": answers()})
    etag = r.headers["etag"]
    r = await api.client.put(
        url, headers=tablet, json={"state": "draft", "answers": answers(respect=1)}
    )
    assert_problem(r, 428, "precondition-required")
    r = await api.client.put(
        url,
        headers={**tablet, "If-Match": etag},
        json={"state": "draft", "answers": answers(respect=1)},
    )
    assert r.status_code == 200
    r = await api.client.put(
        url,
        headers={**phone, "If-Match": etag},
        json={"state": "draft", "answers": answers(respect=4)},
    )
    assert_problem(r, 412, "stale-draft")
    saved = (await api.client.get(url, headers=phone)).json()
    assert saved["answers"][0]["value"] == 1
    # One submission per inspector per visit, even with a second client id.
    r = await api.client.put(
        f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}",
        headers=phone,
        json={"state": "draft", "answers": []},
    )
    assert_problem(r, 409, "one-submission-per-inspector")


async def test_two_devices_racing_the_same_put_make_one_submission(api: Api) -> None:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    phone = await api.login(s.ann, device="phone")
    tablet = await api.login(s.ann, device="tablet")
    for _ in range(5):
        url = f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}"
        await api.conn.execute("delete from submissions")
        body = {"state": "draft", "answers": answers()}
        results = await asyncio.gather(
            *(api.client.put(url, headers=h, json=body) for h in (phone, tablet, phone, tablet))
        )
        codes = sorted(r.status_code for r in results)
        assert codes.count(201) == 1 and codes.count(200) == 3, codes
        assert await api.conn.fetchval("select count(*) from submissions") == 1
        assert len({r.json()["id"] for r in results}) == 1


async def test_cancelled_visits_refuse_submissions(api: Api) -> None:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    r = await api.client.post(
        f"/v1/visits/{visit['id']}/cancel",
        headers=s.coord,
        json={"reason": "Outbreak of norovirus"},
    )
    assert r.json()["status"] == "cancelled"
    ann = await api.login(s.ann)
    r = await api.client.put(
        f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}",
        headers=ann,
        json={"state": "draft", "answers": []},
    )
    assert_problem(r, 409, "visit-cancelled")
    assert_problem(
        await api.client.post(
            f"/v1/visits/{visit['id']}/cancel", headers=s.coord, json={"reason": "again"}
        ),
        409,
    )
    bundle = (await api.client.get(f"/v1/visits/{visit['id']}/bundle", headers=ann)).json()
    assert bundle["visit"]["status"] == "cancelled"


async def test_team_change_changes_the_bundle_etag(api: Api) -> None:
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    ann = await api.login(s.ann)
    etag = (await api.client.get(f"/v1/visits/{visit['id']}/bundle", headers=ann)).headers["etag"]
    carol = await api.cleared_citizen(s.org, name="Carol")
    r = await api.client.patch(
        f"/v1/visits/{visit['id']}",
        headers=s.coord,
        json={"team": s.team((s.ann, "citizen"), (carol, "citizen"), (s.pro, "professional"))},
    )
    assert r.status_code == 200, r.text
    r = await api.client.get(
        f"/v1/visits/{visit['id']}/bundle", headers={**ann, "If-None-Match": etag}
    )
    assert r.status_code == 200 and r.headers["etag"] != etag
    assert "Carol" in [m["display_name"] for m in r.json()["team"]]
    bob = await api.login(s.bob)
    assert_problem(await api.client.get(f"/v1/visits/{visit['id']}/bundle", headers=bob), 403)
