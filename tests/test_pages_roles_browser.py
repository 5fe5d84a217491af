"""In Chromium, through the pages alone: a service manager accepts one recommendation with
an action plan and declines another by keyboard alone; a safeguarding lead refers a concern;
a scrutiny member reads the league table and opens a scorecard. Every screen at 390 and
1280 px: axe finds nothing serious, nothing scrolls sideways."""

from __future__ import annotations

from tests.browser import activate, browser, check_page, desktop, phone, shoot, sign_in, tab_to
from tests.helpers import Api
from tests.scenes import publish, reported, seeded


async def test_manager_lead_and_scrutiny_do_their_work_in_chromium(
    api: Api, base_url: str, chromium: str
) -> None:
    f, bells, names, concern = await reported(api)
    await publish(api, f)
    s, _ = await seeded(api)  # another organisation, with scores to compare
    await s.ash_court()
    scrutiny = await api.user(s.org, "scrutiny_member")
    seen: dict[str, list[str]] = {}  # each role's screens, checked again at 1280 px

    async with browser(chromium) as b:
        # The manager accepts "Doors have no names" with a plan.
        page = await phone(b)
        await sign_in(page, base_url, f.s.manager["email"])
        await page.get_by_role("link", name="My findings", exact=True).first.click()
        await page.get_by_role("heading", name="My findings", level=1).wait_for()
        await check_page(page, "my findings", "manager-findings")
        await page.get_by_role("link", name="Doors have no names").click()
        await page.get_by_role("heading", name="Accept, with an action plan").wait_for()
        await check_page(page, "a recommendation", "manager-recommendation")
        await page.locator("#action_1").fill("Put each resident's chosen name on their door")
        await page.locator("#owner_1").fill("Home manager")
        await page.locator("#target_1").fill("2027-01-31")
        await page.get_by_role("button", name="Accept with this plan").click()
        await page.get_by_text("Accepted: the action plan is under way").wait_for()
        await check_page(page, "an accepted recommendation", "manager-accepted")
        seen["manager"] = [page.url, base_url + "/my/findings"]

        # ... and declines "Call bells" by keyboard alone, the empty reason first.
        await page.goto(base_url + "/my/findings")
        await activate(page, "el => el.textContent === 'Call bells left unanswered'")
        await page.get_by_role("heading", name="Decline", exact=True).wait_for()
        await activate(page, "el => el.textContent === 'Decline the recommendation'")
        await page.get_by_text("Enter the reason for declining").first.wait_for()
        await check_page(page, "decline without a reason", "manager-decline-error")
        await tab_to(page, "el => el.id === 'reason'")
        await page.keyboard.type("We answer every bell within five minutes; our audit shows it.")
        await activate(page, "el => el.textContent === 'Decline the recommendation'", "Space")
        await page.get_by_text("Your reason for declining:").wait_for()
        seen["manager"].append(page.url)
        # The report they checked for accuracy, with their comments.
        report = base_url + f"/my/reports/{f.report['id']}"  # type: ignore[attr-defined]
        await page.goto(report)
        await page.get_by_role("heading", name="Your comments").wait_for()
        await check_page(page, "a report")
        seen["manager"].append(report)
        await page.context.close()

        # The lead refers the concern with the council's reference.
        page = await phone(b)
        await sign_in(page, base_url, f.lead_user["email"])
        await page.get_by_role("link", name="1 concern is waiting for you").click()
        await page.get_by_role("heading", name="Safeguarding concerns", level=1).wait_for()
        await check_page(page, "concern queue", "concerns-queue")
        await page.get_by_role("link", name="Bruising on a resident's arm").click()
        await page.get_by_role("heading", name="Refer to the local authority").wait_for()
        await check_page(page, "a concern", "concerns-concern")
        await page.get_by_label("The local authority's reference").fill("LA-2026-0042")
        await page.get_by_role("button", name="Record the referral").click()
        await page.get_by_text("Referred to the local authority", exact=True).wait_for()
        await check_page(page, "a referred concern", "concerns-referred")
        seen["lead"] = [page.url, base_url + "/concerns"]
        await page.context.close()

        # The scrutiny member sorts the league table and opens a scorecard.
        page = await phone(b)
        await sign_in(page, base_url, scrutiny["email"])
        await page.get_by_role("link", name="League tables").first.click()
        await page.get_by_role("heading", name="League table: Care home").wait_for()
        await check_page(page, "league table", "league-table")
        await page.get_by_role("link", name="Service", exact=True).click()
        await page.get_by_text("Sorted by name, A to Z").wait_for()
        names_in_order = await page.locator("tbody th[scope=row] a").all_inner_texts()
        assert names_in_order == ["Ash Court", "Elm House"]
        await page.get_by_role("link", name="Elm House", exact=True).click()
        await page.get_by_role("heading", name="Elm House", level=1).wait_for()
        assert await page.locator(".band-word").inner_text() == "Good"
        await check_page(page, "scorecard", "scorecard-phone")
        scorecard = page.url
        await page.get_by_role("link", name="Scorecards", exact=True).click()
        await page.get_by_role("heading", name="Scorecards", level=1).wait_for()
        await check_page(page, "scorecard list")
        seen["scrutiny"] = [base_url + "/league", scorecard, base_url + "/scorecards"]
        await page.context.close()

        # Every screen again at desktop width.
        for who, email in (
            ("manager", f.s.manager["email"]),
            ("lead", f.lead_user["email"]),
            ("scrutiny", scrutiny["email"]),
        ):
            page = await desktop(b)
            await sign_in(page, base_url, email)
            for url in seen[who]:
                response = await page.goto(url)
                assert response is not None and response.status == 200, url
                await check_page(page, f"{url} at 1280")
            if who == "scrutiny":
                await page.goto(base_url + "/league")
                await shoot(page, "league-desktop")
            await page.context.close()

    # What the pages did is what the API shows.
    assert (await f.get(f.manager, names["id"])).json()["status"] == "responded"
    declined = (await f.get(f.manager, bells["id"])).json()
    assert declined["status"] == "declined" and "five minutes" in declined["decline_reason"]
    referred = (await f.get(f.lead, concern["id"])).json()
    assert referred["safeguarding_reference"] == "LA-2026-0042"
