"""The coordinator's visit and report pages, through the HTTP client: scheduling with the
team rules beside the form, a visit's answers side by side and its photos, reviewing,
sending and publishing a report; and each page refusing whom the API refuses."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from typing import Any

from inspections.findings.workdays import add_working_days
from inspections.wording import long_date
from tests.browser import activate, browser, check_page, desktop, phone, shoot, sign_in, tab_to
from tests.conftest import PHOTOS
from tests.helpers import Api, browser_as, form_post
from tests.scenes import (
    CALL_BELLS,
    GARDEN,
    NAMES,
    PUBLISHED_ON,
    Findings,
    Photos,
    Scene,
    answers,
    read,
    scene_with_visit,
)


def schedule_form(s: Scene, *team: tuple[dict[str, Any], str], lead: str = "") -> dict[str, Any]:
    day = dt.date.today() + dt.timedelta(days=7)
    return {
        "service_id": s.service["id"],
        "checklist": f"{s.checklist['id']}/1",
        "day": day.isoformat(),
        "starts_at": "10:00",
        "ends_at": "13:00",
        "announced": "no",
        "citizens": [u["id"] for u, p in team if p == "citizen"],
        "professionals": [u["id"] for u, p in team if p == "professional"],
        "lead": lead,
    }


async def test_a_coordinator_schedules_a_visit_with_the_team_rules_beside_the_form(
    api: Api,
) -> None:
    s = await Scene(api).build()
    coordinator = await api.user(s.org, "coordinator")
    newcomer = await api.user(s.org, "citizen_inspector", name="Nia New")
    await browser_as(api, coordinator)

    page = await api.client.get("/visits/new")
    assert page.status_code == 200, page.text
    text, _ = read(page.text)
    # Each inspector with their clearance; the reason when they are not cleared.
    assert "Ann Cleared" in text and "Dr Pat Cleared" in text
    assert (
        "Nia New Not cleared: No inspector training recorded. No safeguarding check recorded."
        in text
    )

    # The team rules answer beside the form, in words, and nothing is scheduled.
    r = await form_post(
        api.client, "/visits/new", schedule_form(s, (newcomer, "citizen"), (s.pro, "professional"))
    )
    assert r.status_code == 422, r.text
    text, _ = read(r.text)
    assert "There is a problem" in text
    assert "Team: Nia New is not cleared for this visit: No inspector training recorded." in text
    assert "$." not in r.text and "team[" not in text
    assert 'href="#team"' in r.text and 'id="team"' in r.text
    # What was chosen is still chosen.
    assert f'value="{newcomer["id"]}" aria-describedby="clear-{newcomer["id"]}" checked' in r.text
    assert await api.conn.fetchval("select count(*) from visits") == 0

    # An end before the start, in words.
    bad = schedule_form(s, (s.ann, "citizen"), (s.pro, "professional")) | {"ends_at": "09:00"}
    r = await form_post(api.client, "/visits/new", bad)
    assert r.status_code == 422
    assert "End time: must be after the start time" in read(r.text)[0]
    for change, words in (
        ({"day": "3000-01-01"}, "Date must be between 1900 and 2200"),
        ({"starts_at": "10 o'clock"}, "Enter start time like 10:30"),
        ({"lead": s.bob["id"]}, "Team lead: choose someone you put in the team"),
        ({"citizens": [], "professionals": []}, "Team: choose at least one person for the team"),
    ):
        r = await form_post(api.client, "/visits/new", bad | {"ends_at": "13:00"} | change)
        assert r.status_code == 422 and words in read(r.text)[0], (change, r.text)

    # A good team: scheduled through the same operation as POST /v1/visits.
    form = schedule_form(
        s, (s.ann, "citizen"), (s.bob, "citizen"), (s.pro, "professional"), lead=s.ann["id"]
    )
    r = await form_post(api.client, "/visits/new", form, follow_redirects=False)
    assert r.status_code == 303, r.text
    visit_id = r.headers["location"].rsplit("/", 1)[1]
    visit = (await api.client.get(f"/v1/visits/{visit_id}", headers=s.coord)).json()
    assert visit["announced"] is False and visit["checklist_version"] == 1
    assert {(m["display_name"], m["perspective"], m["lead"]) for m in visit["team"]} == {
        ("Ann", "citizen", True),
        ("Bob", "citizen", False),
        ("Dr Pat", "professional", False),
    }
    # 10:00 where the services are (the site's time zone), one week on.
    assert visit["starts_at"].startswith(form["day"])
    action = await api.conn.fetchval(
        "select action from audit_log where object_id = $1 order by id limit 1", visit_id
    )
    assert action == "visit.create"

    page = await api.client.get(f"/visits/{visit_id}")
    text, _ = read(page.text)
    assert "Visit to Elm House" in text and "Ann, citizen inspector (lead)" in text
    assert "No, unannounced" in text and "No one has sent answers yet." in text

    # The list: upcoming, soonest first; filtered by service.
    listed = await api.client.get(f"/visits?when=upcoming&service={s.service['id']}")
    assert f'href="/visits/{visit_id}"' in listed.text and "Planned" in listed.text
    assert f'href="/visits/{visit_id}"' not in (await api.client.get("/visits?when=recent")).text

    # Cancel, with a reason; then it is cancelled for the API too.
    r = await form_post(api.client, f"/visits/{visit_id}/cancel", {"reason": ""})
    assert r.status_code == 422 and "Enter reason for cancelling" in r.text
    r = await form_post(
        api.client,
        f"/visits/{visit_id}/cancel",
        {"reason": "Outbreak of flu"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    visit = (await api.client.get(f"/v1/visits/{visit_id}", headers=s.coord)).json()
    assert visit["status"] == "cancelled" and visit["cancelled_reason"] == "Outbreak of flu"
    page = await api.client.get(f"/visits/{visit_id}")
    assert "Cancelled: Outbreak of flu" in read(page.text)[0]
    # Closing a cancelled visit is the API's 409, as a page.
    r = await form_post(api.client, f"/visits/{visit_id}/close", {})
    assert r.status_code == 409 and "A cancelled visit cannot become submitted." in r.text


async def test_the_visit_page_shows_answers_side_by_side_and_the_photos(api: Api) -> None:
    photos = await scene_with_visit(api)
    s, visit = photos.scene, photos.visit
    ann = await api.login(s.ann)
    photo = await photos.upload_ready(
        ann, (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes(), caption="Call bell behind the bed"
    )
    for who, respect, smells in ((s.ann, 2, True), (s.bob, 3, False), (s.pro, 4, False)):
        r = await api.client.put(
            f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}",
            headers=await api.login(who),
            json={"state": "final", "answers": answers(respect, smells)},
        )
        assert r.status_code == 201, r.text
    coordinator = await api.user(s.org, "coordinator")
    await browser_as(api, coordinator)

    page = await api.client.get(f"/visits/{visit['id']}")
    assert page.status_code == 200, page.text
    table = re.search(r'<table class="answers">.*?</table>', page.text, re.S)
    assert table
    rows = [
        [" ".join(read(c)[0].split()) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)
    ]
    # Citizens then the professional, each question's answers in words, with comments.
    assert rows == [
        ["Question", "Ann citizen", "Bob citizen", "Dr Pat professional"],
        [
            "Are people treated with respect? (dignity)",
            "2 of 4: Fair “kind staff”",
            "3 of 4: Good “kind staff”",
            "4 of 4: Great “kind staff”",
        ],
        ["Unpleasant smells? (environment)", "Yes", "No", "No"],
    ]
    # The photo, served by this site (the page's CSP loads images from itself only).
    thumb = f"/evidence/{photo['id']}/thumb"
    assert f'<img src="{thumb}" alt="Call bell behind the bed, by Ann"' in page.text
    assert "img-src 'self'" in page.headers["content-security-policy"]
    r = await api.client.get(thumb)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8" and len(r.content) < len(
        (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    )
    # Another organisation's coordinator: the API's 404, for the page and the photo.
    other = await api.user(await api.org("Southshire"), "coordinator")
    await browser_as(api, other)
    assert (await api.client.get(f"/visits/{visit['id']}")).status_code == 404
    assert (await api.client.get(thumb)).status_code == 404
    # A citizen of the team: the API's 403 for the side by side (coordinators only).
    await browser_as(api, s.ann)
    r = await api.client.get(f"/visits/{visit['id']}")
    api_r = await api.client.get(f"/v1/visits/{visit['id']}/submissions", headers=ann)
    assert r.status_code == api_r.status_code == 403
    assert "This needs one of the roles: coordinator." in r.text
    assert (await api.client.get("/visits")).status_code == 403
    assert (await api.client.get("/v1/visits", headers=ann)).status_code == 403
    assert (await api.client.get(f"/visits/{visit['id']}/cancel")).status_code == 403
    assert (await api.client.get("/visits/new")).status_code == 403
    r = await form_post(api.client, f"/visits/{visit['id']}/cancel", {"reason": "I'm ill"})
    api_r = await api.client.post(
        f"/v1/visits/{visit['id']}/cancel", headers=ann, json={"reason": "I'm ill"}
    )
    assert r.status_code == api_r.status_code == 403
    r = await form_post(api.client, "/visits/new", schedule_form(s, (s.ann, "citizen")))
    assert r.status_code == 403


async def test_a_coordinator_reviews_sends_and_publishes_a_report(api: Api) -> None:
    f = await Findings(api).build()
    visit_id = f.visit["id"]
    bells = (await f.raise_(f.ann, **CALL_BELLS)).json()
    names = (await f.raise_(f.bob, **NAMES)).json()
    await f.raise_(f.pro, **GARDEN)
    coordinator = await api.user(f.s.org, "coordinator")
    await browser_as(api, coordinator)

    page = await api.client.get(f"/reports/{visit_id}")
    assert page.status_code == 200, page.text
    assert "No report yet. The team raised 3 findings" in read(page.text)[0]
    listed = await api.client.get("/reports")
    assert f'href="/reports/{visit_id}"' in listed.text and "No report yet" in listed.text
    r = await form_post(api.client, f"/reports/{visit_id}/start", {}, follow_redirects=False)
    assert r.status_code == 303

    # Review: a summary, and the good practice left out.
    r = await form_post(
        api.client,
        f"/reports/{visit_id}",
        {"summary": "A caring home; call bells need work.", "included": [bells["id"], names["id"]]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    report = (await api.client.get(f"/v1/visits/{visit_id}/report", headers=f.coord)).json()
    assert report["summary"] == "A caring home; call bells need work."
    assert {x["title"]: x["in_report"] for x in report["findings"]} == {
        CALL_BELLS["title"]: True,
        NAMES["title"]: True,
        GARDEN["title"]: False,
    }

    # Edit a finding (the coordinator can, until publication); a stale copy is not saved.
    edit = f"/reports/{visit_id}/findings/{bells['id']}"
    page = await api.client.get(edit)
    etag = re.search(r'name="etag" value="([^"]+)"', page.text)
    assert etag and html.unescape(etag.group(1)) == bells["etag"]
    form = {
        "title": "Call bells unanswered for ten minutes",
        "description": CALL_BELLS["description"],
        "severity": "major",
        "recommendation": CALL_BELLS["recommendation"],
        "etag": html.unescape(etag.group(1)),
    }
    r = await form_post(api.client, edit, form, follow_redirects=False)
    assert r.status_code == 303, r.text
    r = await form_post(api.client, edit, form | {"title": "Stale"})
    assert r.status_code == 409 and "Someone changed this finding" in r.text
    assert "Call bells unanswered for ten minutes" in r.text  # as it is now
    r = await form_post(api.client, edit, form | {"title": ""})
    assert r.status_code == 422 and "Enter title" in r.text

    # The due date publishing today would set, from the same calculation.
    page = await api.client.get(f"/reports/{visit_id}")
    today = dt.date.today()
    due = add_working_days(today, 20, "england-and-wales")
    assert f"if you publish today, by {long_date(due)}" in " ".join(read(page.text)[0].split())

    # Send for the factual check; the manager's comment appears on the page.
    r = await form_post(api.client, f"/reports/{visit_id}/send", {}, follow_redirects=False)
    assert r.status_code == 303
    comment = {"comment": "The bells were being serviced that day.", "finding_id": bells["id"]}
    r = await api.client.put(
        f"/v1/reports/{report['id']}/comments/{uuid.uuid4()}", headers=f.manager, json=comment
    )
    assert r.status_code == 201, r.text
    page = await api.client.get(f"/reports/{visit_id}")
    text = " ".join(read(page.text)[0].split())
    assert "With the service for a factual check" in text
    assert (
        "The bells were being serviced that day. Service manager, " in text
    ) and "about “Call bells unanswered for ten minutes”" in text

    # Publish on a past date: due 20 working days later, skipping the bank holidays.
    r = await form_post(api.client, f"/reports/{visit_id}/publish", {"published_on": "2025-12-01"})
    assert r.status_code == 422
    assert "Publication date must be between the day of the visit and today" in r.text
    r = await form_post(
        api.client,
        f"/reports/{visit_id}/publish",
        {"published_on": PUBLISHED_ON},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = await api.client.get(f"/reports/{visit_id}")
    text = " ".join(read(page.text)[0].split())
    assert "Published on 15 December 2025." in text
    assert "Answer due by 15 January 2026" in text
    public = f"/public/reports/{report['id']}"
    assert f'<a href="{public}">' in page.text
    assert (await api.client.get(public)).status_code == 200
    assert 'action="/reports/' + visit_id + '/publish"' not in page.text
    # Due in January 2026, unanswered since: the list says so (the home page links here).
    listed = " ".join(read((await api.client.get("/reports")).text)[0].split())
    assert "Published · 3 findings · 1 comment from the service" in listed
    assert "published 15 December 2025 · 2 recommendations overdue" in listed


async def test_report_pages_refuse_whom_the_api_refuses(api: Api) -> None:
    f = await Findings(api).build()
    visit_id = f.visit["id"]
    await f.raise_(f.ann, **CALL_BELLS)
    citizen = await api.cleared_citizen(f.s.org, name="Cy")  # not on the team
    await browser_as(api, citizen)
    api_r = await api.client.get(f"/v1/visits/{visit_id}/report", headers=await api.login(citizen))
    r = await api.client.get(f"/reports/{visit_id}")
    assert r.status_code == api_r.status_code == 404
    assert (await api.client.get("/reports")).status_code == 403
    r = await form_post(api.client, f"/reports/{visit_id}/start", {})
    assert r.status_code == 403 and "coordinator" in r.text
    other = await api.user(await api.org("Southshire"), "coordinator")
    await browser_as(api, other)
    assert (await api.client.get(f"/reports/{visit_id}")).status_code == 404
    r = await form_post(api.client, f"/reports/{visit_id}/start", {})
    assert r.status_code == 404
    assert "/reports/" + visit_id not in (await api.client.get("/reports")).text


# --------------------------------------------------------------------------- in Chromium


def button(text: str) -> str:
    return f"el => el.tagName === 'BUTTON' && el.textContent.trim() === {text!r}"


def link(text: str) -> str:
    return f"el => el.tagName === 'A' && el.textContent.trim() === {text!r}"


def box(name: str, user: dict[str, Any]) -> str:
    return f"el => el.name === {name!r} && el.value === {user['id']!r}"


async def visit_with_findings(api: Api, s: Scene) -> tuple[str, str]:
    """Yesterday's visit by Ann, Bob and Dr Pat: answers, a photo and two findings, sent
    through the API as the phones send them. Its id and the photo's."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    r = await s.visit(
        starts_at=start.isoformat(), ends_at=(start + dt.timedelta(hours=3)).isoformat()
    )
    assert r.status_code == 201, r.text
    visit = r.json()
    ann = await api.login(s.ann)
    photo = await Photos(api, s, visit).upload_ready(
        ann, (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes(), caption="Call bell behind the bed"
    )
    for who, respect, smells in ((s.ann, 2, True), (s.bob, 3, False), (s.pro, 4, False)):
        r = await api.client.put(
            f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}",
            headers=ann if who is s.ann else await api.login(who),
            json={"state": "final", "answers": answers(respect, smells)},
        )
        assert r.status_code == 201, r.text
    for who, body in ((ann, CALL_BELLS | {"evidence_ids": [photo["id"]]}), (ann, GARDEN)):
        r = await api.client.put(
            f"/v1/visits/{visit['id']}/findings/{uuid.uuid4()}", headers=who, json=body
        )
        assert r.status_code == 201, r.text
    return visit["id"], photo["id"]


async def test_in_chromium_a_coordinator_schedules_by_keyboard_then_publishes_a_report(
    api: Api, base_url: str, chromium: str
) -> None:
    s = await Scene(api).build()
    coordinator = await api.user(s.org, "coordinator", name="Cora")
    newcomer = await api.user(s.org, "citizen_inspector", name="Nia New")
    seeded_visit, photo_id = await visit_with_findings(api, s)
    day = dt.date.today() + dt.timedelta(days=7)

    async with browser(chromium) as b:
        page = await phone(b)
        await sign_in(page, base_url, coordinator["email"])
        kb = page.keyboard

        # Scheduling, by keyboard alone.
        await activate(page, link("Visits"))
        await page.get_by_role("heading", level=1, name="Visits").wait_for()
        await check_page(page, "visits list", "visits-list")
        await activate(page, link("Schedule a visit"))
        await page.get_by_role("heading", level=1, name="Schedule a visit").wait_for()
        # Each person's clearance, and why not, before choosing.
        reason = "Not cleared: No inspector training recorded. No safeguarding check recorded."
        await page.get_by_text(reason).wait_for()
        await check_page(page, "schedule a visit", "visits-new")
        await tab_to(page, "el => el.id === 'service_id'")
        await kb.press("ArrowDown")  # from "Choose a service" to Elm House
        await tab_to(page, "el => el.id === 'day'")
        await kb.type(f"{day.month:02d}{day.day:02d}{day.year}")  # month, day, year
        # (Tab also stops on a date or time input's own picker button.)
        await tab_to(page, "el => el.id === 'starts_at'")
        await kb.type("1000A")
        await tab_to(page, "el => el.id === 'ends_at'")
        await kb.type("0100P")
        assert await page.input_value("#day") == day.isoformat()
        assert await page.input_value("#starts_at") == "10:00"
        assert await page.input_value("#ends_at") == "13:00"
        await activate(page, box("citizens", newcomer), "Space")
        await activate(page, box("professionals", s.pro), "Space")
        await activate(page, button("Schedule the visit"))
        # The team rules answer beside the form.
        await page.get_by_role("heading", name="There is a problem").wait_for()
        said = "Team: Nia New is not cleared for this visit: No inspector training recorded."
        assert said in await page.locator(".error-summary").inner_text()
        await check_page(page, "schedule, team refused", "visits-new-team-refused")
        for name, who in (("citizens", newcomer), ("citizens", s.ann), ("citizens", s.bob)):
            await activate(page, box(name, who), "Space")
        await activate(page, button("Schedule the visit"))
        await page.get_by_role("heading", level=1, name="Visit to Elm House").wait_for()
        await page.get_by_text("Dr Pat, professional inspector").wait_for()
        assert "Nia New" not in await page.locator("main").inner_text()
        visit_id = page.url.rsplit("/", 1)[1]
        planned = (await api.client.get(f"/v1/visits/{visit_id}", headers=s.coord)).json()
        assert planned["starts_at"].startswith(day.isoformat())
        assert {m["display_name"] for m in planned["team"]} == {"Ann", "Bob", "Dr Pat"}
        await check_page(page, "a new visit")

        # Yesterday's visit: answers side by side, its photo loaded from this site.
        await page.goto(f"{base_url}/visits/{seeded_visit}")
        thumb = page.locator(f'img[src="/evidence/{photo_id}/thumb"]')
        await thumb.wait_for()
        assert await thumb.evaluate("img => img.complete && img.naturalWidth > 0")
        await page.get_by_role("cell", name="2 of 4: Fair “kind staff”").wait_for()
        await check_page(page, "a visit with answers", "visits-visit")

        # The report: start, review, send for the factual check, read a comment, publish.
        await page.get_by_role("link", name="Findings and report").click()
        await page.get_by_role("button", name="Start the report from these findings").click()
        await page.get_by_label("Summary for the public report").fill(
            "A caring home where call bells go unanswered."
        )
        await page.get_by_label("Include “A lovely garden, used every day” in the report").uncheck()
        await page.get_by_role("button", name="Save the report").click()
        await page.get_by_text("Draft: not sent yet").wait_for()
        await check_page(page, "report review", "reports-review")
        await page.get_by_role("button", name="Send to the service for a factual check").click()
        await page.get_by_text("With the service for a factual check").first.wait_for()
        report = (await api.client.get(f"/v1/visits/{seeded_visit}/report", headers=s.coord)).json()
        manager = await api.login(s.manager)
        r = await api.client.put(
            f"/v1/reports/{report['id']}/comments/{uuid.uuid4()}",
            headers=manager,
            json={"comment": "Two bells were being repaired that afternoon."},
        )
        assert r.status_code == 201, r.text
        await page.reload()
        await page.get_by_text("Two bells were being repaired that afternoon.").wait_for()
        due = add_working_days(dt.date.today(), 20, "england-and-wales")
        await page.get_by_text(f"if you publish today, by {long_date(due)}").wait_for()
        await check_page(page, "report in factual check", "reports-factual-check")
        await page.get_by_role("button", name="Publish the report").click()
        await page.get_by_text("Anyone can read it at its public page").wait_for()
        await page.get_by_text(f"Answer due by {long_date(due)}").wait_for()
        await check_page(page, "published report", "reports-published")
        await page.get_by_role("link", name=f"/public/reports/{report['id']}").click()
        await page.get_by_role("heading", level=1).wait_for()
        assert "Call bells left unanswered" in await page.locator("main").inner_text()
        await page.goto(base_url + "/reports")
        await check_page(page, "reports list", "reports-list")

        # The same screens on a desktop.
        wide = await desktop(b)
        await sign_in(wide, base_url, coordinator["email"])
        for path, what in (
            ("/visits", "visits list"),
            ("/visits/new", "schedule a visit"),
            (f"/visits/{seeded_visit}", "a visit with answers"),
            (f"/visits/{visit_id}/cancel", "cancel a visit"),
            ("/reports", "reports list"),
            (f"/reports/{seeded_visit}", "published report"),
            (f"/reports/{seeded_visit}/findings/{report['findings'][0]['id']}", "edit finding"),
        ):
            await wide.goto(base_url + path)
            await check_page(wide, what + " at 1280")
        await wide.goto(f"{base_url}/visits/{seeded_visit}")
        await shoot(wide, "visits-visit-1280")
        # Earlier visits, latest first: yesterday's is there, next week's is not.
        await wide.goto(base_url + "/visits?when=recent")
        await wide.locator(f'a[href="/visits/{seeded_visit}"]').wait_for()
        assert await wide.locator(f'a[href="/visits/{visit_id}"]').count() == 0
        await page.goto(f"{base_url}/visits/{visit_id}/cancel")
        await check_page(page, "cancel a visit")
