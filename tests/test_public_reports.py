"""The public side: a published report (page and JSON), open data and Open311, with photos,
and nothing personal or safeguarding-related anywhere in them."""

from __future__ import annotations

import io
import re
import uuid

from PIL import Image

from tests.helpers import Api, assert_problem
from tests.scenes import (
    CALL_BELLS,
    CONCERN,
    GARDEN,
    GPS_PHOTO,
    NAMES,
    PUBLISHED_ON,
    Findings,
    Photos,
)


async def published(api: Api) -> tuple[Findings, dict, dict]:
    """A report published on 15 Dec 2025 with a photo, a response, and a safeguarding
    concern beside it; another visit's report still a draft."""
    f = await Findings(api).build()
    photos = Photos(api, f.s, f.visit)
    photo = await photos.upload_ready(f.ann, GPS_PHOTO.read_bytes())
    bells = (await f.raise_(f.ann, **{**CALL_BELLS, "evidence_ids": [photo["id"]]})).json()
    await f.raise_(f.bob, **NAMES)
    await f.raise_(f.pro, **GARDEN)
    concern = (await f.raise_(f.ann, **CONCERN)).json()
    report = await f.published_report()
    plan = [{"action": "Bell audit", "owner": "Deputy manager", "target_date": "2026-03-01"}]
    r = await f.update(f.manager, bells["id"], type="accept", actions=plan)
    assert r.status_code == 201, r.text
    # Written after publication: public once a coordinator approves it (test_moderation.py).
    for item in (await api.client.get("/v1/moderation", headers=f.coord)).json():
        path = f"/v1/moderation/{item['kind']}/{item['id']}/approve"
        assert (await api.client.post(path, headers=f.coord)).status_code == 204
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
    assert "set-cookie" not in r.headers  # cached publicly: nothing of one visitor's in it
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
    assert "made by 2 citizen inspectors and 1 professional inspector together" in page
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
        "organisation page": (await anon.get(f"/public/organisations/{f.s.org}")).text,
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
    # A photo not linked to a published finding is not public (taken at a later visit:
    # the published visit's door is closed).
    photos = Photos(api, f.s, (await f.s.visit()).json())
    other_photo = sorted((GPS_PHOTO.parent.parent / "orientation").glob("*.jpg"))[0]
    loose = await photos.upload_ready(f.ann, other_photo.read_bytes())
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


async def test_history_lines_carry_the_dates_they_stand_for(api: Api) -> None:
    """Published on 15 December 2025 (recorded today): the history agrees with the header."""
    f, report, _ = await published(api)
    pub = (await api.client.get(f"/v1/public/reports/{report['id']}")).json()
    bells = next(x for x in pub["findings"] if x["id"] == f.bells["id"])
    first = bells["history"][0]
    assert first["kind"] == "published" and first["on"] == PUBLISHED_ON
    page = (await api.client.get(f"/public/reports/{report['id']}")).text
    assert "published 15 December 2025" in page
    assert "<li>15 December 2025: published by coordinator" in page
    assert "Response due by 15 January 2026" in page
    # One way to write a date: no leading zeros, never "(s)".
    assert not re.search(
        r"\b0\d (January|February|March|April|May|June|July|August|"
        r"September|October|November|December)\b",
        page,
    )
    assert "(s)" not in page


async def test_each_organisation_has_a_public_index_with_a_contact(api: Api) -> None:
    f, report, _ = await published(api)
    anon = api.client
    org = f.s.org
    name = await api.conn.fetchval("select name from organisations where id = $1", uuid.UUID(org))
    # The report page leads to its organisation, not to a sign-in page.
    page = (await anon.get(f"/public/reports/{report['id']}")).text
    assert f'<a class="brand" href="/public/organisations/{org}">{name}</a>' in page
    assert 'class="brand" href="/"' not in page
    assert "has not published a contact here yet" in page

    # The coordinator sets the organisation's public contact (audited; 422 for nonsense).
    url = "/v1/organisation/public-profile"
    assert_problem(await anon.patch(url, headers=f.coord, json={"public_contact": 5}), 422)
    scrutiny = await api.login(await api.user(org, "scrutiny_member"))
    r = await anon.patch(url, headers=scrutiny, json={"public_contact": "x@example.org"})
    assert_problem(r, 403)
    r = await anon.patch(url, headers=f.coord, json={"public_contact": "enquiries@hw.example"})
    assert r.status_code == 200 and r.json() == {"public_contact": "enquiries@hw.example"}
    assert (await anon.get(url, headers=f.coord)).json()["public_contact"] == "enquiries@hw.example"
    audit = (await anon.get("/v1/audit?action=organisation.public_profile", headers=f.coord)).json()
    assert audit["items"], audit

    index = await anon.get(f"/public/organisations/{org}")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "public, max-age=300"
    assert "set-cookie" not in index.headers  # a shared cache may keep it: no one's cookie
    html = index.text
    assert f"<h1>{name}: published visit reports</h1>" in html
    assert f'<a class="brand" href="/public/organisations/{org}">{name}</a>' in html
    assert f'href="/public/reports/{report["id"]}">Visit of 10 December 2025</a>' in html
    assert "published 15 December 2025 · 2 recommendations" in html
    assert f'href="/v1/public/reports?organisation={org}"' in html
    assert (
        f'To contact {name}: <a href="mailto:enquiries@hw.example">enquiries@hw.example</a>' in html
    )
    report_page = (await anon.get(f"/public/reports/{report['id']}")).text
    assert "To contact" in report_page and "enquiries@hw.example" in report_page
    assert f'href="/public/organisations/{org}?service={f.s.service["id"]}"' in report_page
    # One service's reports; the feed filtered by organisation; another organisation's empty.
    one = (await anon.get(f"/public/organisations/{org}?service={f.s.service['id']}")).text
    assert "Elm House" in one and "Reports on every service" in one
    feed = (await anon.get("/v1/public/reports", params={"organisation": org})).json()
    assert [x["id"] for x in feed["items"]] == [report["id"]]
    assert feed["items"][0]["organisation_id"] == org
    other = await api.org("Southshire")
    assert (await anon.get("/v1/public/reports", params={"organisation": other})).json()[
        "items"
    ] == []
    empty = (await anon.get(f"/public/organisations/{other}")).text
    assert "No report has been published yet." in empty and "Elm House" not in empty
    missing = await anon.get(f"/public/organisations/{uuid.uuid4()}")
    assert missing.status_code == 404
