"""In Chromium, through the pages alone: a coordinator sees what needs doing, invites a
volunteer (who joins from the emailed link), records their training, and adds a service
with its manager by keyboard alone. Every screen at 390 and 1280 px: axe finds no serious
or critical problem and nothing scrolls sideways."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from tests.browser import activate, browser, check_page, desktop, phone, shoot, sign_in, tab_to
from tests.helpers import PASSWORD, Api


def by_id(name: str) -> str:
    return f"el => el.id === {name!r}"


def by_text(text: str) -> str:
    return f"el => el.textContent.trim() === {text!r}"


async def test_in_chromium_a_coordinator_invites_trains_and_adds_a_service(
    api: Api, base_url: str, chromium: str
) -> None:
    org = await api.org("Healthwatch Northshire")
    coord = await api.user(org, "coordinator", name="Priya Shah")
    await api.user(org, "service_manager", name="Mo Khan", email="mo@example.org")
    seen: list[str] = []  # every screen visited, checked again at 1280 px

    async def check(page: Any, what: str, shot: str | None = None) -> None:
        await check_page(page, what, shot)
        seen.append(page.url)

    async with browser(chromium) as b:
        page = await phone(b)
        await sign_in(page, base_url, coord["email"])
        await page.get_by_role("heading", name="What needs doing now").wait_for()
        await check(page, "home")

        # Invite a volunteer: a mistake first, said in words, then the real thing.
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
        await page.get_by_role("heading", name="People", exact=True).wait_for()
        await check(page, "people")
        await page.get_by_role("link", name="Invite someone").click()
        await page.get_by_label("Email address").fill("rose.example.org")
        await page.get_by_role("button", name="Send the invite").click()
        await page.get_by_role("heading", name="There is a problem").wait_for()
        summary = await page.locator(".error-summary li").all_inner_texts()
        assert summary == ["Enter an email address like name@example.org"]
        await check(page, "invite, with errors")
        await page.get_by_label("Email address").fill("rose@example.org")
        await page.get_by_label("Citizen inspector").check()
        await shoot(page, "people-invite")
        await page.get_by_role("button", name="Send the invite").click()
        await page.get_by_text("Invite emailed to rose@example.org.").wait_for()
        await check(page, "invites", "people-invites")

        # Rose opens the emailed link on her own phone and joins.
        email = await api.conn.fetchval(
            "select body from outbox where recipient = 'rose@example.org'"
        )
        link = re.search(r"https?://\S+/invites/\S+", email).group(0)
        rose = await phone(b)
        await rose.goto(base_url + "/invites/" + link.rsplit("/invites/", 1)[1])
        await rose.get_by_label("Your name").fill("Rose Tan")
        await rose.get_by_label("Choose a password").fill(PASSWORD + " rose")
        await rose.get_by_role("button", name="Create my account").click()
        await rose.get_by_text("You're in, Rose Tan").wait_for()

        # Her training and safeguarding check, recorded from her page.
        await page.get_by_role("link", name="Back to people").click()
        await page.get_by_role("link", name="Rose Tan").click()
        await page.get_by_text("Not cleared to inspect").first.wait_for()
        today = dt.date.today()
        for kind, course, expires in (
            ("Inspector training", "Lay assessor training", 365 * 2),
            ("Safeguarding check (DBS)", "Enhanced DBS", 365 * 3),
        ):
            await page.get_by_label(kind).check()
            await page.get_by_label("Course or check").fill(course)
            await page.get_by_label("Date completed").fill(today.isoformat())
            await page.get_by_label("Expiry date (if it expires)").fill(
                (today + dt.timedelta(days=expires)).isoformat()
            )
            await page.get_by_role("button", name="Record it").click()
            await page.get_by_text("Training record saved.").wait_for()
        await page.get_by_text("Cleared to inspect", exact=True).wait_for()
        await check(page, "person", "people-person")

        # A service with its manager, by keyboard alone.
        await activate(page, "el => el.getAttribute('href') === '/services'")
        await page.get_by_role("heading", name="Services").wait_for()
        await check(page, "services, none yet")
        await activate(page, by_text("Add a service"))
        await page.get_by_role("heading", name="Add a service").wait_for()
        await tab_to(page, by_id("name"))
        await page.keyboard.type("Elm House")
        await tab_to(page, by_id("kind"))
        await page.keyboard.type("Care")  # a focused list picks the option typed
        for field, typed in (
            ("address", "1 Elm Road, Northshire"),
            ("lat", "52.6309"),
            ("lon", "1.2974"),
        ):
            await tab_to(page, by_id(field))
            await page.keyboard.type(typed)
        await tab_to(page, by_id("geofence_m"))
        await page.keyboard.press("Control+A")
        await page.keyboard.type("250")
        await activate(page, by_id("manager_ids"), "Space")
        await shoot(page, "services-form")
        await activate(page, by_text("Add the service"))
        await page.get_by_text("Service saved.").wait_for()
        await check(page, "service saved")
        await activate(page, by_text("Back to services"))
        await page.get_by_role("heading", name="Every service").wait_for()
        assert "Managed by Mo Khan" in await page.locator("main").inner_text()
        await check(page, "services", "services-list")

        # Work arrives: an invite not yet accepted, a volunteer whose check runs out soon.
        await api.invite(await api.login(coord), "sam@example.org", "citizen_inspector")
        cy = await api.cleared_citizen(org, name="Cy Jones")
        await api.conn.execute(
            """update training_records set expires_on = current_date + 12
                where user_id = $1 and kind = 'safeguarding_check'""",
            cy["id"],
        )
        await page.goto(base_url + "/people")
        await page.get_by_text("Cleared, but not for long").wait_for()
        await shoot(page, "people-list")
        await page.goto(base_url + "/")
        todo = [" ".join(t.split()) for t in await page.locator(".todo li").all_inner_texts()]
        assert todo == [
            "1 invite not accepted yet",
            "1 citizen inspector whose training or check runs out within 30 days",
        ]
        await page.get_by_role("link", name="citizen inspector whose training").click()
        await page.get_by_role("heading", name="People found").wait_for()
        assert await page.get_by_role("link", name="Cy Jones").count() == 1
        assert await page.get_by_role("link", name="Rose Tan").count() == 0
        await check(page, "people whose checks run out soon")
        await page.goto(base_url + "/notifications?status=all")
        await page.get_by_role("heading", name="Invite to sam@example.org").wait_for()
        await check(page, "notifications")
        await page.goto(base_url + "/")
        await shoot(page, "coord-home")

        # What the pages did is what the API reads.
        row = await api.conn.fetchrow(
            """select s.name, s.kind, s.lat, s.lon, s.geofence_m, u.email manager
                 from services s join service_managers m on m.service_id = s.id
                 join users u on u.id = m.user_id"""
        )
        assert tuple(row) == ("Elm House", "care_home", 52.6309, 1.2974, 250, "mo@example.org")
        kinds = await api.conn.fetch(
            """select t.kind from training_records t join users u on u.id = t.user_id
                where u.email = 'rose@example.org' order by t.kind"""
        )
        assert [k["kind"] for k in kinds] == ["course", "safeguarding_check"]

        # The same screens at 1280 px.
        wide = await desktop(b)
        await sign_in(wide, base_url, coord["email"])
        for url in dict.fromkeys(seen):
            await wide.goto(url)
            await check_page(wide, f"{url} at 1280 px")
        await wide.goto(base_url + "/")
        await shoot(wide, "coord-home-desktop")
