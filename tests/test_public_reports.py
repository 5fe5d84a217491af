"""The public side: a published report (page and JSON), open data and Open311, with photos,
and nothing personal or safeguarding-related anywhere in them."""

from __future__ import annotations

import io
import re
import uuid

from PIL import Image

from tests.helpers import Api, assert_problem
from tests.test_evidence import GPS_PHOTO, Photos
from tests.test_findings import CALL_BELLS, CONCERN, GARDEN, NAMES, PUBLISHED_ON, Findings


async def published(api: Api) -> tuple[Findings, dict, dict]:
    """A report published on 15 Dec 2025 with a photo, a response, and a safeguarding
    concern beside it; another visit's report still a draft."""
    f = await Findings(api).build()
    photos = Photos(api, f.s, f.visit)
    r = await photos.upload(f.ann, GPS_PHOTO.read_bytes())
    assert r.status_code in (200, 201), r.text
    photo = r.json()
    assert photo["status"] == "ready"
    bells = (await f.raise_(f.ann, **{**CALL_BELLS, "evidence_ids": [photo["id"]]})).json()
    await f.raise_(f.bob, **NAMES)
    await f.raise_(f.pro, **GARDEN)
    concern = (await f.raise_(f.ann, **CONCERN)).json()
    report = (
        await api.client.put(
            f"/v1/visits/{f.visit['id']}/report", headers=f.coord, json={"summary": "Warm."}
        )
    ).json()
    r = await api.client.post(
        f"/v1/reports/{report['id']}/publish",
        headers=f.coord,
        json={"published_on": PUBLISHED_ON},
    )
    assert r.status_code == 200, r.text
    plan = [{"action": "Bell audit", "owner": "Deputy manager", "target_date": "2026-03-01"}]
    r = await f.update(f.manager, bells["id"], type="accept", actions=plan)
    assert r.status_code == 201, r.text
    f.photo, f.concern, f.bells = photo, concern, bells  # type: ignore[attr-defined]
    return f, report, photo


async def test_the_public_report_shows_responses_and_photos(api: Api) -> None:
    f, report, photo = await published(api)
    anon = api.client
    r = await anon.get(f"/v1/public/reports/{report['id']}")
    assert r.status_code == 200, r.text
    pub = r.json()
    assert pub["team"] == {"citizen": 2, "professional": 1}
    assert pub["published_on"] == PUBLISHED_ON and pub["recommendations"] == 2
    assert pub["overdue"] == 1 and pub["answered_on_time"] == 0
    by_title = {x["title"]: x for x in pub["findings"]}
    assert set(by_title) == {CALL_BELLS["title"], NAMES["title"], GARDEN["title"]}
    bells = by_title[CALL_BELLS["title"]]
    assert bells["status"] == "responded" and bells["responded_on_time"] is False
    assert bells["actions"] == [
        {
            "action": "Bell audit",
            "owner": "Deputy manager",
            "target_date": "2026-03-01",
            "done": False,
        }
    ]
    assert by_title[NAMES["title"]]["overdue"] is True
    assert [h["by"] for h in bells["history"]] == ["coordinator", "service manager"]

    # The photo is the display derivative: upright JPEG, no metadata, no GPS.
    [p] = bells["photos"]
    r = await anon.get(p["display_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(r.content))
    assert not img.getexif() and "exif" not in img.info
    assert (await anon.get(p["thumb_url"])).status_code == 200
    assert_problem(await anon.get(f"/public/evidence/{photo['id']}/original"), 404)

    # The page: the same, in words, with the photo served from this site.
    r = await anon.get(f"/public/reports/{report['id']}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "Call bells left unanswered" in page and "Bell audit" in page
    assert "overdue: response was due 15 January 2026" in page
    assert "2 citizen inspector(s) and 1 professional inspector(s)" in page
    assert f'src="/public/evidence/{photo["id"]}/display"' in page
    assert "img-src 'self'" in r.headers["content-security-policy"]

    # Open data and Open311 carry the same findings.
    feed = (await anon.get("/v1/public/reports")).json()
    assert [x["id"] for x in feed["items"]] == [report["id"]]
    reqs = (await anon.get("/open311/v2/requests.json")).json()
    assert {x["service_request_id"] for x in reqs} == {x["id"] for x in pub["findings"]}
    o = next(x for x in reqs if x["service_request_id"] == f.bells["id"])
    assert o["status"] == "open" and o["service_code"] == "major"
    assert o["lat"] == f.s.service["lat"] and o["long"] == f.s.service["lon"]
    assert o["media_url"].endswith(f"/public/evidence/{photo['id']}/display")
    assert o["expected_datetime"].startswith("2026-01-15")
    assert "Accepted" in o["status_notes"]
    garden = next(x for x in reqs if x["service_code"] == "positive")
    assert garden["status"] == "closed"
    closed = (await anon.get("/open311/v2/requests.json", params={"status": "closed"})).json()
    assert [x["service_code"] for x in closed] == ["positive"]
    one = (await anon.get(f"/open311/v2/requests/{f.bells['id']}.json")).json()
    assert [x["service_request_id"] for x in one] == [f.bells["id"]]
    services = (await anon.get("/open311/v2/services.json")).json()
    assert {s["service_code"] for s in services} == {"positive", "minor", "major"}


async def test_nothing_personal_or_safeguarding_in_any_public_output(api: Api) -> None:
    f, report, photo = await published(api)
    anon = api.client
    people = await api.conn.fetch("select id, email, display_name from users")
    outputs = {
        "report json": (await anon.get(f"/v1/public/reports/{report['id']}")).text,
        "report page": (await anon.get(f"/public/reports/{report['id']}")).text,
        "feed": (await anon.get("/v1/public/reports")).text,
        "open311": (await anon.get("/open311/v2/requests.json")).text,
    }
    for name, text in outputs.items():
        for p in people:
            assert str(p["id"]) not in text, (name, "user id")
            assert p["email"] not in text, (name, "email")
            assert not re.search(rf"\b{re.escape(p['display_name'])}\b", text), (name, p)
        assert f.concern["id"] not in text, name
        assert "Bruising" not in text and "Mrs A." not in text, name
        assert "It was" not in text  # no factual-accuracy comments either
    # The safeguarding concern is not a published request, nor reachable by id.
    assert_problem(await anon.get(f"/open311/v2/requests/{f.concern['id']}.json"), 404)
    # Unpublished reports are not public.
    other = await f.s.visit()
    draft = (
        await api.client.put(f"/v1/visits/{other.json()['id']}/report", headers=f.coord, json={})
    ).json()
    assert_problem(await anon.get(f"/v1/public/reports/{draft['id']}"), 404)
    assert (await anon.get(f"/public/reports/{draft['id']}")).status_code == 404
    assert_problem(await anon.get(f"/v1/public/reports/{uuid.uuid4()}"), 404)
    # A photo not linked to a published finding is not public.
    photos = Photos(api, f.s, f.visit)
    other_photo = sorted((GPS_PHOTO.parent.parent / "orientation").glob("*.jpg"))[0]
    loose = (await photos.upload(f.ann, other_photo.read_bytes())).json()
    assert loose["id"] != photo["id"]
    assert_problem(await anon.get(f"/public/evidence/{loose['id']}/display"), 404)
    # A photo also linked to the safeguarding concern stops being public.
    display = f"/public/evidence/{photo['id']}/display"
    assert (await anon.get(display)).status_code == 200
    r = await api.client.put(
        f"/v1/visits/{f.visit['id']}/findings/{f.concern['id']}",
        headers={**f.ann, "If-Match": f.concern["etag"]},
        json={**CONCERN, "evidence_ids": [photo["id"]]},
    )
    assert r.status_code == 200, r.text
    assert_problem(await anon.get(display), 404)
    pub = (await anon.get(f"/v1/public/reports/{report['id']}")).json()
    assert all(x["photos"] == [] for x in pub["findings"])
