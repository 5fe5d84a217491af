"""On the visit page, a coordinator marks whether each photo shows a person and records why
such a photo may still be public: the form saves through PUT /v1/evidence/{id}/person's own
operation (evidence.operations.mark_person), refused and audited as the API."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

from tests.browser import browser, check_page, desktop, phone, sign_in
from tests.conftest import PHOTOS
from tests.helpers import Api, browser_as, form_post
from tests.scenes import Photos, scene_with_visit

REASON = "Resident consented in writing, 2 March"


async def visit_with_photo(api: Api) -> tuple[Photos, dict[str, Any]]:
    photos = await scene_with_visit(api)
    photo = await photos.upload_ready(
        await api.login(photos.scene.ann),
        (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes(),
        caption="Call bell behind the bed",
    )
    return photos, photo


async def person_audit(api: Api) -> list[tuple[str, dict[str, Any]]]:
    rows = await api.conn.fetch(
        "select actor_id, summary from audit_log where action = 'evidence.person' order by id"
    )
    return [(str(r["actor_id"]), json.loads(r["summary"])) for r in rows]


async def marked(api: Api, photo: dict[str, Any]) -> tuple[bool, str | None]:
    row = await api.conn.fetchrow(
        "select shows_person, public_reason from evidence where id = $1", photo["id"]
    )
    return row["shows_person"], row["public_reason"]


def error_beside(html: str, field_id: str) -> str:
    m = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', html, re.S)
    assert m, f"no error beside {field_id}"
    return unescape(re.sub(r"<[^>]+>", "", m.group(1))).replace("Error:", "").strip()


async def test_a_coordinator_marks_a_photo_as_showing_a_person_as_the_api_does(
    api: Api,
) -> None:
    photos, photo = await visit_with_photo(api)
    s, visit = photos.scene, photos.visit
    coord = await api.user(s.org, "coordinator")
    await browser_as(api, coord)
    page = f"/visits/{visit['id']}"
    form = f"{page}/photos/{photo['id']}/person"

    r = await api.client.get(page)
    assert f'id="shows_person-{photo["id"]}"' in r.text
    assert f'id="public_reason-{photo["id"]}"' in r.text

    # Ticked (the checkbox's "true" comes before its hidden "false"): saved, then shown.
    r = await form_post(
        api.client, form, {"shows_person": ["true", "false"]}, follow_redirects=False
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"{page}?marked={photo['id']}#photo-{photo['id']}"
    shown = await api.client.get(r.headers["location"])
    assert "Saved." in shown.text
    assert re.search(f'id="shows_person-{photo["id"]}"[^>]*checked', shown.text)
    assert await marked(api, photo) == (True, None)

    # A reason for a photo not marked as showing a person: the API's 422, said beside the
    # reason, what was typed kept; nothing changes.
    r = await form_post(api.client, form, {"shows_person": "false", "public_reason": REASON})
    assert r.status_code == 422
    assert error_beside(r.text, f"public_reason-{photo['id']}").startswith(
        "Reason it may be public: only for a photo that shows a person"
    )
    assert f'value="{REASON}"' in r.text
    assert await marked(api, photo) == (True, None)

    r = await form_post(
        api.client, form, {"shows_person": ["true", "false"], "public_reason": REASON}
    )
    assert r.status_code == 200 and await marked(api, photo) == (True, REASON)
    # The API marks it the same way: the same audit rows, action, actor and summary.
    headers = await api.login(coord)
    r = await api.client.put(
        f"/v1/evidence/{photo['id']}/person",
        headers=headers,
        json={"shows_person": True, "public_reason": REASON},
    )
    assert r.status_code == 200
    assert await person_audit(api) == [
        (coord["id"], {"shows_person": True, "public_reason": None}),
        (coord["id"], {"shows_person": True, "public_reason": REASON}),
        (coord["id"], {"shows_person": True, "public_reason": REASON}),
    ]
    # Unticked: no longer a photo of a person, and its reason goes with it.
    await form_post(api.client, form, {"shows_person": "false", "public_reason": ""})
    assert await marked(api, photo) == (False, None)


async def test_whom_the_api_refuses_the_form_refuses(api: Api) -> None:
    photos, photo = await visit_with_photo(api)
    s, visit = photos.scene, photos.visit
    form = f"/visits/{visit['id']}/photos/{photo['id']}/person"
    put = f"/v1/evidence/{photo['id']}/person"

    # Bob, of the same team, did not take it: 403 from the API and the form alike.
    api_r = await api.client.put(put, headers=await api.login(s.bob), json={"shows_person": True})
    await browser_as(api, s.bob)
    r = await form_post(api.client, form, {"shows_person": "true"})
    assert r.status_code == api_r.status_code == 403
    assert api_r.json()["detail"] in unescape(r.text)
    # Ann took it: she may mark it, but only a coordinator records why it may be public.
    await browser_as(api, s.ann)
    body = {"shows_person": True, "public_reason": REASON}
    api_r = await api.client.put(put, headers=await api.login(s.ann), json=body)
    r = await form_post(api.client, form, {"shows_person": "true", "public_reason": REASON})
    assert r.status_code == api_r.status_code == 403
    assert "Only a coordinator can record why" in unescape(r.text)
    assert await marked(api, photo) == (False, None)
    # Another organisation's coordinator: the photo does not exist for them.
    await browser_as(api, await api.user(await api.org("Southshire"), "coordinator"))
    r = await form_post(api.client, form, {"shows_person": "true"})
    assert r.status_code == 404
    assert await person_audit(api) == []


async def test_in_chromium_a_coordinator_marks_a_photo_that_shows_a_person(
    api: Api, base_url: str, chromium: str
) -> None:
    photos, photo = await visit_with_photo(api)
    coord = await api.user(photos.scene.org, "coordinator")
    url = f"{base_url}/visits/{photos.visit['id']}"
    async with browser(chromium) as b:
        narrow = await phone(b)
        await sign_in(narrow, base_url, coord["email"])
        await narrow.goto(url)
        await check_page(narrow, "visit with a photo, 390 px")
        reason = narrow.get_by_label("Reason it may be public")
        await reason.fill(REASON)
        await narrow.get_by_role("button", name="Save photo 1").click()
        # A reason without "Shows a person": refused beside the reason.
        await narrow.wait_for_selector(f"#public_reason-{photo['id']}-error")
        assert await reason.get_attribute("aria-invalid") == "true"
        await check_page(narrow, "photo form refused, 390 px", "photo-person-refused")
        await narrow.get_by_label("Shows a person").check()
        await narrow.get_by_role("button", name="Save photo 1").click()
        await narrow.wait_for_url(f"{url}?marked={photo['id']}#photo-{photo['id']}")
        assert "Saved." in await narrow.get_by_role("status").inner_text()

        wide = await desktop(b)
        await sign_in(wide, base_url, coord["email"])
        await wide.goto(url)
        assert await wide.get_by_label("Shows a person").is_checked()
        assert await wide.get_by_label("Reason it may be public").input_value() == REASON
        await check_page(wide, "visit with a marked photo, 1280 px", "photo-person")
    assert await marked(api, photo) == (True, REASON)
