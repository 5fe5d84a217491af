"""What becomes public after publication: notes, action owners, decline reasons and photos
wait for a coordinator; a photo showing a person is never public without a recorded
reason; each person's accepted privacy notice is recorded."""

from __future__ import annotations

import json
from typing import Any

from service.settings import Settings
from tests.browser import browser, check_page, phone, sign_in
from tests.helpers import PASSWORD, Api, assert_problem
from tests.scenes import CALL_BELLS, GPS_PHOTO, NAMES, PHOTOS, Findings, Photos

OTHER_PHOTO = PHOTOS / "orientation" / "landscape_3.jpg"

SECRET_NOTE = "Mr Peter Smith in room 12 told us he waits an hour"
OWNER = "Jane Doe (night nurse)"
REASON = "Took up the bells with the night nurse."


async def _published(
    api: Api, f: Findings | None = None
) -> tuple[Findings, dict[str, Any], dict[str, Any]]:
    """A published report with a photo on its call-bells finding; nothing since."""
    f = f or await Findings(api).build()
    photo = await Photos(api, f.s, f.visit).upload_ready(f.ann, GPS_PHOTO.read_bytes())
    bells = (await f.raise_(f.ann, **{**CALL_BELLS, "evidence_ids": [photo["id"]]})).json()
    names = (await f.raise_(f.bob, **NAMES)).json()
    report = await f.published_report()
    f.bells, f.names = bells, names  # type: ignore[attr-defined]
    return f, report, photo


async def _public_texts(api: Api, report: dict[str, Any]) -> dict[str, str]:
    anon = api.client
    return {
        "report json": (await anon.get(f"/v1/public/reports/{report['id']}")).text,
        "report page": (await anon.get(f"/public/reports/{report['id']}")).text,
        "open311": (await anon.get("/open311/v2/requests.json")).text,
    }


async def test_words_written_after_publication_wait_for_a_coordinator(api: Api) -> None:
    f, report, _ = await _published(api)
    bells, names = f.bells, f.names  # type: ignore[attr-defined]
    plan = [{"action": "Bell audit", "owner": OWNER, "target_date": "2026-03-01"}]
    r = await f.update(f.manager, bells["id"], type="accept", actions=plan, note=SECRET_NOTE)
    assert r.status_code == 201, r.text
    r = await f.update(f.manager, names["id"], type="decline", reason="Mrs Brown refused it.")
    assert r.status_code == 201, r.text

    # Nothing of it is public yet: not the note, the owner, nor the decline reason...
    for name, text in (await _public_texts(api, report)).items():
        assert "Peter Smith" not in text and "Jane Doe" not in text, name
        assert "Mrs Brown" not in text, name
    pub = (await api.client.get(f"/v1/public/reports/{report['id']}")).json()
    by_title = {x["title"]: x for x in pub["findings"]}
    # ...though the public still sees that the service responded.
    assert by_title[CALL_BELLS["title"]]["status"] == "responded"
    assert by_title[CALL_BELLS["title"]]["actions"] == []
    assert by_title[NAMES["title"]]["decline_reason"] is None

    # The manager (and the API) still see their own words, marked pending.
    mine = (await f.get(f.manager, bells["id"])).json()
    assert mine["history"][-1]["note"] == SECRET_NOTE
    assert mine["history"][-1]["moderation"] == "pending"
    assert mine["actions"][0]["moderation"] == "pending"

    # Only coordinators see the queue.
    assert_problem(await api.client.get("/v1/moderation", headers=f.manager), 403)
    r = await api.client.get("/v1/moderation", headers=f.coord)
    assert r.status_code == 200, r.text
    queue = r.json()
    assert {(i["kind"], i["text"]) for i in queue} >= {
        ("update", SECRET_NOTE),
        ("action", "Bell audit"),
        ("update", "Mrs Brown refused it."),
    }
    note = next(i for i in queue if i["text"] == SECRET_NOTE)
    action = next(i for i in queue if i["kind"] == "action")
    decline = next(i for i in queue if i["text"] == "Mrs Brown refused it.")
    assert action["owner"] == OWNER

    # The note names a resident: rejected (a reason is required), never public.
    path = f"/v1/moderation/update/{note['id']}"
    assert_problem(await api.client.post(path + "/reject", headers=f.coord, json={}), 422)
    r = await api.client.post(
        path + "/reject", headers=f.coord, json={"reason": "Names a resident"}
    )
    assert r.status_code == 204, r.text
    assert_problem(await api.client.post(path + "/approve", headers=f.coord), 409)
    assert_problem(await api.client.post(path + "/approve", headers=f.manager), 403)
    # The plan and the decline are approved: now public.
    for item in (action, decline):
        r = await api.client.post(
            f"/v1/moderation/{item['kind']}/{item['id']}/approve", headers=f.coord
        )
        assert r.status_code == 204, r.text

    texts = await _public_texts(api, report)
    for name, text in texts.items():
        assert "Peter Smith" not in text, name
    assert OWNER in texts["report page"] and "Mrs Brown refused it." in texts["report json"]
    pub = (await api.client.get(f"/v1/public/reports/{report['id']}")).json()
    bells_pub = next(x for x in pub["findings"] if x["title"] == CALL_BELLS["title"])
    assert [a["owner"] for a in bells_pub["actions"]] == [OWNER]
    reqs = (await api.client.get("/open311/v2/requests.json")).json()
    o = next(x for x in reqs if x["service_request_id"] == bells["id"])
    assert "Peter Smith" not in o["status_notes"] + o["description"]
    assert (
        o["description"]
        == f"{f.s.service['name']}: {CALL_BELLS['title']}. " + (CALL_BELLS["description"])
    )
    assert (await api.client.get("/v1/moderation", headers=f.coord)).json() == []

    audit = await api.conn.fetch(
        "select action, object_id, summary from audit_log where action like 'moderation.%'"
    )
    assert {(a["action"], a["object_id"]) for a in audit} == {
        ("moderation.reject", note["id"]),
        ("moderation.approve", action["id"]),
        ("moderation.approve", decline["id"]),
    }


async def test_a_photo_added_after_publication_waits_too(api: Api) -> None:
    f = await Findings(api).build()
    # Taken on the visit, in no finding: added to one only after the report is published.
    later = await Photos(api, f.s, f.visit).upload_ready(f.ann, OTHER_PHOTO.read_bytes())
    f, report, _ = await _published(api, f)
    bells = f.bells  # type: ignore[attr-defined]
    plan = [{"action": "New bells", "owner": "Maintenance", "target_date": "2026-03-01"}]
    assert (await f.update(f.manager, bells["id"], type="accept", actions=plan)).status_code == 201
    r = await f.update(
        f.manager, bells["id"], type="progress", note="New bells", evidence_ids=[later["id"]]
    )
    assert r.status_code == 201, r.text
    assert_problem(await api.client.get(f"/public/evidence/{later['id']}/display"), 404)
    assert later["id"] not in (await _public_texts(api, report))["report json"]
    queue = (await api.client.get("/v1/moderation", headers=f.coord)).json()
    [item] = [i for i in queue if i["evidence_ids"]]
    assert item["evidence_ids"] == [later["id"]] and item["text"] == "New bells"
    r = await api.client.post(f"/v1/moderation/update/{item['id']}/approve", headers=f.coord)
    assert r.status_code == 204, r.text
    assert (await api.client.get(f"/public/evidence/{later['id']}/display")).status_code == 200


async def test_a_photo_showing_a_person_is_public_only_with_a_recorded_reason(api: Api) -> None:
    f, report, photo = await _published(api)
    url = f"/public/evidence/{photo['id']}/display"
    assert (await api.client.get(url)).status_code == 200
    put = f"/v1/evidence/{photo['id']}/person"

    # Another inspector may not mark it; the one who took it may.
    assert_problem(await api.client.put(put, headers=f.bob, json={"shows_person": True}), 403)
    r = await api.client.put(put, headers=f.ann, json={"shows_person": True})
    assert r.status_code == 200 and r.json()["shows_person"] is True, r.text
    assert_problem(await api.client.get(url), 404)
    assert photo["id"] not in (await _public_texts(api, report))["report json"]

    # Only a coordinator records why it may be public, and only for a photo of a person.
    body = {"shows_person": True, "public_reason": "Resident consented in writing, 2 March"}
    assert_problem(await api.client.put(put, headers=f.ann, json=body), 403)
    bad = {"shows_person": False, "public_reason": "x"}
    assert_problem(await api.client.put(put, headers=f.coord, json=bad), 422)
    r = await api.client.put(put, headers=f.coord, json=body)
    assert r.status_code == 200 and r.json()["public_reason"] == body["public_reason"], r.text
    assert (await api.client.get(url)).status_code == 200
    texts = await _public_texts(api, report)
    assert photo["id"] in texts["report json"] and "consented" not in texts["report json"]

    # Marked again by its inspector: the earlier reason no longer stands.
    await api.client.put(put, headers=f.ann, json={"shows_person": True})
    assert_problem(await api.client.get(url), 404)
    audit = await api.conn.fetch(
        "select summary from audit_log where action = 'evidence.person' order by id"
    )
    reasons = [json.loads(a["summary"]).get("public_reason") for a in audit]
    assert reasons == [None, body["public_reason"], None]


async def test_accepting_an_invite_records_the_privacy_notice_version(
    api: Api, settings: Settings
) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    code = (await api.invite(coord, "rose@example.org", "citizen_inspector"))["code"]
    version = settings.privacy_notice_version
    page = await api.client.get(f"/invites/{code}")
    assert f"version {version}" in page.text and 'href="/privacy"' in page.text
    notice = await api.client.get("/privacy")
    assert notice.status_code == 200 and f"Version {version}" in notice.text
    assert "What becomes public" in notice.text

    r = await api.client.post(
        f"/v1/invites/{code}/accept", json={"display_name": "Rose", "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["privacy_notice_version"] == version and user["privacy_accepted_at"]
    listed = (await api.client.get(f"/v1/users/{user['id']}", headers=coord)).json()
    assert listed["privacy_notice_version"] == version


async def test_in_chromium_a_coordinator_reviews_what_waits(
    api: Api, base_url: str, chromium: str
) -> None:
    f, report, _ = await _published(api)
    plan = [{"action": "Bell audit", "owner": OWNER, "target_date": "2026-03-01"}]
    r = await f.update(f.manager, f.bells["id"], type="accept", actions=plan, note=SECRET_NOTE)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    coord = await api.conn.fetchrow(
        "select email from users where organisation_id = $1 and 'coordinator' = any(roles)",
        f.s.org,
    )
    async with browser(chromium) as b:
        page = await phone(b)
        await sign_in(page, base_url, coord["email"])
        await page.get_by_role("link", name="2 items wait for your review").click()
        await page.wait_for_url(f"{base_url}/moderation")
        assert SECRET_NOTE in await page.content()
        await check_page(page, "moderation, 390 px", "moderation")
        # Rejecting needs a reason, said beside the box.
        note = page.get_by_role("region", name=f"Note or photos: {CALL_BELLS['title']}")
        await note.get_by_role("button", name="Reject").click()
        await page.get_by_role("alert").wait_for()
        await check_page(page, "moderation with an error, 390 px")
        note = page.get_by_role("region", name=f"Note or photos: {CALL_BELLS['title']}")
        await note.get_by_label("Why it is not published (to reject)").fill("Names a resident")
        await note.get_by_role("button", name="Reject").click()
        await page.wait_for_url(f"{base_url}/moderation")  # from the form's 422 page, back
        step = page.get_by_role("region", name=f"Action plan step: {CALL_BELLS['title']}")
        await step.get_by_role("button", name="Approve").click()
        await page.get_by_text("Nothing waits for review.").wait_for()
    text = (await api.client.get(f"/public/reports/{report['id']}")).text
    assert OWNER in text and "Peter Smith" not in text
