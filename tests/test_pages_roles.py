"""The screens of the safeguarding lead, the service manager and the scrutiny member, through
HTTP: each does their work by forms, and whoever may not gets the API's own 403 or 404."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

from tests.helpers import Api, browser_as, form_post
from tests.scenes import (
    publish,
    read,
    reported,
    seeded,
)


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert m, name
    return m.group(1)


async def post_update(api: Api, page: str, url: str, action: str, fields: dict[str, str]) -> Any:
    """Send one of a finding page's forms as its browser would: with the update id it gave."""
    return await form_post(
        api.client,
        f"{url}/{action}",
        {"update_id": hidden(page, "update_id"), **fields},
        follow_redirects=False,
    )


async def test_a_manager_comments_accepts_and_declines_through_the_pages(api: Api) -> None:
    f, bells, names, concern = await reported(api)
    manager = f.s.manager
    await browser_as(api, manager)

    # The report waits for the manager's factual check: a comment on one finding.
    page = await api.client.get("/my/findings")
    assert page.status_code == 200, page.text
    report_url = f"/my/reports/{f.report['id']}"  # type: ignore[attr-defined]
    assert f'href="{report_url}"' in page.text
    page = await api.client.get(report_url)
    text, _ = read(page.text)
    assert "Call bells left unanswered" in text and "Bruising" not in text  # never the concern
    said = {"comment_id": hidden(page.text, "comment_id"), "finding_id": bells["id"]}
    r = await form_post(api.client, report_url + "/comments", {**said, "comment": ""})
    assert r.status_code == 422 and "Enter your comment" in r.text
    comment = {**said, "comment": "It was one bell, for eight minutes."}
    r = await form_post(api.client, report_url + "/comments", comment, follow_redirects=False)
    assert r.status_code == 303
    # Sent twice (a double click): one comment.
    r = await form_post(api.client, report_url + "/comments", comment, follow_redirects=False)
    assert r.status_code == 303
    api_report = (await api.client.get(f"/v1/reports/{f.report['id']}", headers=f.coord)).json()  # type: ignore[attr-defined]
    assert [c["comment"] for c in api_report["comments"]] == [comment["comment"]]

    await publish(api, f)
    # Names is due later than bells: bells overdue first, then by due date.
    await api.conn.execute(
        "update findings set due_on = current_date + 12 where id = $1", uuid.UUID(names["id"])
    )
    page = await api.client.get("/my/findings")
    text, _ = read(page.text)
    assert text.index("Call bells left unanswered") < text.index("Doors have no names")
    assert "Response was due 15 January 2026:" in text and "days overdue" in text
    assert "Response due " in text and "12 days left" in text
    assert "2 recommendations to answer or act on, 1 overdue" in text
    assert f'href="/services/{f.s.service["id"]}/scorecard"' in page.text

    # Accept with a plan: a half-filled row is named in words, and nothing changes.
    url = f"/my/findings/{names['id']}"
    page = await api.client.get(url)
    form = {"update_id": hidden(page.text, "update_id")}
    r = await form_post(
        api.client, url + "/accept", {**form, "action_1": "Name every door", "owner_1": ""}
    )
    assert r.status_code == 422
    text, _ = read(r.text)
    assert "Enter who will do action 1" in text and "Enter a target date for action 1" in text
    assert "$." not in r.text and 'value="Name every door"' in r.text
    assert (await f.get(f.manager, names["id"])).json()["status"] == "open"
    plan = {
        **form,
        "action_1": "Name every door",
        "owner_1": "Home manager",
        "target_1": "2027-01-31",
        "action_2": "Ask residents which photo they want",
        "owner_2": "Activities lead",
        "target_2": "2027-02-28",
    }
    r = await form_post(api.client, url + "/accept", plan, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == url
    seen = (await f.get(f.manager, names["id"])).json()
    assert seen["status"] == "responded"
    assert [(a["action"], a["owner"], a["target_date"]) for a in seen["actions"]] == [
        ("Name every door", "Home manager", "2027-01-31"),
        ("Ask residents which photo they want", "Activities lead", "2027-02-28"),
    ]
    # The same form again (the back button, a double click) records nothing more.
    r = await form_post(api.client, url + "/accept", plan, follow_redirects=False)
    assert r.status_code == 303
    assert len((await f.get(f.manager, names["id"])).json()["history"]) == 3

    # Progress, each action done: it goes to the citizens to check.
    page = await api.client.get(url)
    assert "Mark action 1 done" in page.text
    r = await post_update(api, page.text, url, "progress", {"note": "Signs ordered."})
    assert r.status_code == 303
    for n in (1, 2):
        page = await api.client.get(url)
        r = await post_update(api, page.text, url, "action-done", {"action": str(n)})
        assert r.status_code == 303, r.text
    seen = (await f.get(f.manager, names["id"])).json()
    assert seen["status"] == "done_by_service"
    text, _ = read((await api.client.get(url)).text)
    assert "Done: waiting for citizen inspectors to check" in text
    assert ": answered on time" in text  # accepted before its due date
    assert "Progress by the service manager: Signs ordered." in text

    # Decline needs a reason, which then is published.
    url = f"/my/findings/{bells['id']}"
    page = await api.client.get(url)
    form = {"update_id": hidden(page.text, "update_id")}
    r = await form_post(api.client, url + "/decline", {**form, "reason": "  "})
    assert r.status_code == 422 and "Enter the reason for declining" in r.text
    reason = "We answer bells within five minutes; our audit shows it."
    r = await form_post(
        api.client, url + "/decline", {**form, "reason": reason}, follow_redirects=False
    )
    assert r.status_code == 303
    seen = (await f.get(f.manager, bells["id"])).json()
    assert seen["status"] == "declined" and seen["decline_reason"] == reason
    # Declined cannot be accepted afterwards: the API's 409, as a page in its words.
    page = await api.client.get(url)
    assert "Accept with this plan" not in page.text
    r = await form_post(api.client, url + "/accept", {**plan, "update_id": str(uuid.uuid4())})
    assert r.status_code == 409 and "cannot be accepted" in r.text


async def test_only_the_services_managers_answer_and_as_the_api_says(api: Api) -> None:
    f, bells, _, concern = await reported(api)
    await publish(api, f)
    url = f"/my/findings/{bells['id']}"

    async def both(user: dict[str, Any]) -> tuple[int, int]:
        """The page's status and the API's for the same finding."""
        api_status = (await f.get(await api.login(user), bells["id"])).status_code
        await browser_as(api, user)
        return (await api.client.get(url, follow_redirects=False)).status_code, api_status

    other_manager = await api.user(f.s.org, "service_manager")  # of no service here
    assert await both(other_manager) == (404, 404)
    stranger = await api.user(await api.org("Southshire"), "service_manager")
    assert await both(stranger) == (404, 404)
    # Their post is refused as the API refuses it, and changes nothing.
    r = await form_post(
        api.client, url + "/decline", {"update_id": str(uuid.uuid4()), "reason": "No."}
    )
    assert r.status_code == 404 and "No such finding." in r.text
    assert (await f.get(f.manager, bells["id"])).json()["status"] == "open"
    # A citizen may read the published finding; this screen is the managers'.
    page, api_status = await both(f.s.ann)
    assert (page, api_status) == (403, 200)
    assert (await api.client.get("/my/findings")).status_code == 403
    # The concern is never a manager's: 404 from the page as from the API.
    await browser_as(api, f.s.manager)
    r = await api.client.get(f"/my/findings/{concern['id']}")
    assert r.status_code == 404 and "Bruising" not in r.text
    assert (await f.get(f.manager, concern["id"])).status_code == 404
    assert "Bruising" not in (await api.client.get("/my/findings")).text


async def test_the_lead_acknowledges_refers_and_closes_a_concern(api: Api) -> None:
    f, _, _, concern = await reported(api)
    await browser_as(api, f.lead_user)
    home = await api.client.get("/")
    assert "1 concern is waiting for you" in read(home.text)[0]
    page = await api.client.get("/concerns")
    assert page.status_code == 200
    text, _ = read(page.text)
    assert "1 concern waiting for you" in text and "Bruising on a resident's arm" in text
    url = f"/concerns/{concern['id']}"
    page = await api.client.get(url)
    text, _ = read(page.text)
    assert "Mrs A. said staff were rough with her last night." in text
    assert "Raised: not yet acknowledged" in text
    r = await post_update(api, page.text, url, "acknowledge", {"note": "Seen; calling the home."})
    assert r.status_code == 303
    page = await api.client.get(url)
    assert "Acknowledge the concern" not in page.text
    form = {"update_id": hidden(page.text, "update_id")}
    r = await form_post(api.client, url + "/refer", {**form, "reference": ""})
    assert r.status_code == 422
    text, _ = read(r.text)
    assert "Enter the local authority's reference" in text and "$." not in r.text
    r = await form_post(
        api.client, url + "/refer", {**form, "reference": "LA-2026-0042"}, follow_redirects=False
    )
    assert r.status_code == 303
    seen = (await f.get(f.lead, concern["id"])).json()
    assert seen["status"] == "referred" and seen["safeguarding_reference"] == "LA-2026-0042"
    page = await api.client.get(url)
    r = await post_update(api, page.text, url, "close", {"note": "The council is satisfied."})
    assert r.status_code == 303
    text, _ = read((await api.client.get(url)).text)
    history = text[text.index("History") :]
    assert [line.split(": ", 1)[1] for line in history.splitlines()[1:]] == [
        "Raised by the citizen inspector",
        "Acknowledged by the safeguarding lead: Seen; calling the home.",
        "Referred by the safeguarding lead",
        "Closed by the safeguarding lead: The council is satisfied.",
    ]
    text, _ = read((await api.client.get("/concerns")).text)
    assert "0 concerns waiting for you" in text and "Closed" in text


async def test_nobody_else_sees_the_concern_screens(api: Api) -> None:
    f, _, _, concern = await reported(api)
    url = f"/concerns/{concern['id']}"

    async def page_and_api(user: dict[str, Any], path: str = url) -> tuple[int, int]:
        api_status = (await f.get(await api.login(user), concern["id"])).status_code
        await browser_as(api, user)
        return (await api.client.get(path, follow_redirects=False)).status_code, api_status

    # The service's manager: the concern does not exist for them, here as in the API.
    assert await page_and_api(f.s.manager) == (404, 404)
    r = await form_post(api.client, url + "/acknowledge", {"update_id": str(uuid.uuid4())})
    assert r.status_code == 404 and "Bruising" not in r.text
    assert (await api.client.get("/concerns")).status_code == 403
    assert "concern" not in read((await api.client.get("/")).text)[0].lower()
    # A lead of another organisation: 404 too.
    outsider = await api.user(await api.org("Southshire"), "safeguarding_lead")
    assert await page_and_api(outsider) == (404, 404)
    # The coordinator may handle a concern through the API (GET is 200), but these
    # screens and their counts are the lead's: 403, and no count on the home page.
    coordinator = await api.user(f.s.org, "coordinator")
    assert await page_and_api(coordinator) == (403, 200)
    assert (await api.client.get("/concerns")).status_code == 403
    r = await form_post(api.client, url + "/close", {"update_id": str(uuid.uuid4())})
    assert r.status_code == 403
    assert (await f.get(f.lead, concern["id"])).json()["status"] == "raised"
    assert "waiting for you" not in read((await api.client.get("/")).text)[0]
    # The citizen who raised it sees it in the API, not on the lead's screen.
    assert await page_and_api(f.s.ann) == (403, 200)


async def test_the_league_table_sorts_by_links_and_downloads_the_apis_csv(api: Api) -> None:
    s, _ = await seeded(api)
    await s.ash_court()
    scrutiny = await api.user(s.org, "scrutiny_member")
    await browser_as(api, scrutiny)
    page = await api.client.get("/league")
    assert page.status_code == 200, page.text
    text, headings = read(page.text)
    assert headings[0] == ("h1", "League table: Care home")
    assert "Sorted by combined, highest first" in text
    rows = re.findall(r'<th scope="row"><a href="([^"]+)">([^<]+)</a>', page.text)
    assert rows == [(f"/services/{s.service['id']}/scorecard", "Elm House")] + [
        (rows[1][0], "Ash Court")
    ]
    assert f"/public/organisations/{s.org}?service={s.service['id']}" in page.text
    assert (
        'aria-sort="descending"><a href="/league?kind=care_home&amp;sort=combined&amp;order=asc"'
        in page.text
    )
    # Sorting is a link: by name, A first.
    r = await api.client.get("/league?kind=care_home&sort=name&order=asc")
    names = re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a>', r.text)
    assert names == ["Ash Court", "Elm House"]
    assert "Sorted by name, A to Z" in read(r.text)[0]
    # The CSV link beside it is the API's CSV of the same rows.
    link = re.search(r'<a href="(/league\.csv\?[^"]+)" download>', r.text)
    assert link
    download = await api.client.get(link.group(1).replace("&amp;", "&"))
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    from_api = await api.client.get(
        "/v1/scorecards?kind=care_home&sort=name&descending=false",
        headers={**s.coord, "Accept": "text/csv"},
    )
    assert download.text == from_api.text
    assert [row["service_name"] for row in csv.DictReader(io.StringIO(download.text))] == [
        "Ash Court",
        "Elm House",
    ]

    # Who may not: the API's 403 for a citizen; bad input is the API's 4xx as a page, not a 500.
    r = await api.client.get("/league?sort=loudest")
    bad = await api.client.get("/v1/scorecards?kind=care_home&sort=loudest", headers=s.coord)
    assert r.status_code == bad.status_code == 422
    assert r.headers["content-type"].startswith("text/html") and "$." not in r.text
    await browser_as(api, s.ann)
    assert (await api.client.get("/league")).status_code == 403
    assert (await api.client.get("/league.csv?kind=care_home")).status_code == 403
    api_status = (
        await api.client.get("/v1/scorecards?kind=care_home", headers=await api.login(s.ann))
    ).status_code
    assert api_status == 403
    # Another organisation's scrutiny member sees none of these services.
    await browser_as(api, await api.user(await api.org("Southshire"), "scrutiny_member"))
    r = await api.client.get("/league?kind=care_home")
    assert r.status_code == 200 and "Elm House" not in r.text


async def test_a_manager_reads_only_their_services_scorecards(api: Api) -> None:
    s, _ = await seeded(api)
    await browser_as(api, s.manager)
    page = await api.client.get("/scorecards")
    assert f'<a href="/services/{s.service["id"]}/scorecard">Elm House</a>' in page.text
    other = await s.ash_court()
    r = await api.client.get(f"/services/{other['id']}/scorecard")
    assert r.status_code == 403 and "services they manage" in r.text
    assert "Ash Court" not in (await api.client.get("/scorecards")).text


async def test_a_stale_form_sent_again_with_other_words_is_explained(api: Api) -> None:
    f, _, names, _ = await reported(api)
    await publish(api, f)
    await browser_as(api, f.s.manager)
    url = f"/my/findings/{names['id']}"
    page = await api.client.get(url)
    ids = re.findall(r'name="update_id" value="([^"]+)"', page.text)
    assert len(ids) == len(set(ids)) == 2  # accept and decline: each form its own change
    said = {"update_id": ids[1], "reason": "We cannot afford new signs this year."}
    r = await form_post(api.client, url + "/decline", said, follow_redirects=False)
    assert r.status_code == 303
    # The back button, other words, the same form: refused in words, nothing changes.
    r = await form_post(api.client, url + "/decline", {**said, "reason": "Other words."})
    assert r.status_code == 409 and "This form was already sent" in r.text
    seen = (await f.get(f.manager, names["id"])).json()
    assert seen["decline_reason"] == said["reason"] and len(seen["history"]) == 3
