"""The inspector's app (/app/): served with a strict CSP, and used the way it will be, in
headless Chromium at phone size with the network cut: sign in, make a visit ready, inspect
offline, photos with the phone's location, findings and a safeguarding concern, a reload
with no signal, finalise; back online everything arrives once. Also two devices editing
one draft, an access token expiring offline, axe-core on every screen, 200% text and a
visit by keyboard alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx
import msgspec

from service.settings import Settings
from tests.browser import SCREENSHOTS, activate, axe_check, tab_to
from tests.browser import browser as open_browser
from tests.conftest import PHOTOS, ROOT, start_live_server, stop_live_server
from tests.helpers import PASSWORD, Api
from tests.scenes import SMALL, add_service, published_checklist

STARTER = json.loads(
    (ROOT / "inspections" / "checklists" / "starter" / "care_home_visit.json").read_text()
)
SHOTS = SCREENSHOTS  # a temporary folder unless SCREENSHOTS_DIR says (tests/browser.py)
HERE = {"latitude": 52.6309, "longitude": 1.2974, "accuracy": 12}  # the care home's garden
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "has_touch": True,
    "is_mobile": True,
    "geolocation": HERE,
    "permissions": ["geolocation"],
}


# --------------------------------------------------------------------------- the shell


async def test_the_shell_is_served_with_a_strict_csp_and_client_routes(api: Api) -> None:
    c = api.client
    r = await c.get("/app/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    for rule in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
    ):
        assert rule in csp
    html = r.text
    # No inline script or style; nothing from another origin.
    assert re.findall(r"<script[^>]*>", html) == ['<script type="module" src="/app/app.js">']
    assert "<style" not in html and " style=" not in html and "http" not in html
    # A client route is the same page, so a reload there works.
    assert (await c.get("/app/visits/abc/sections/2")).text == html
    assert (await c.get("/app")).text == html
    assert (await c.get("/app/nothing.js")).status_code == 404
    sw = await c.get("/app/sw.js")
    assert sw.headers["content-type"].startswith("text/javascript")
    assert "__VERSION__" not in sw.text and '"/app/app.js"' in sw.text
    manifest = (await c.get("/app/manifest.webmanifest")).json()
    assert manifest["start_url"] == "/app/" and manifest["scope"] == "/app/"
    for icon in manifest["icons"]:
        got = await c.get(icon["src"])
        assert got.status_code == 200 and got.content.startswith(b"\x89PNG")
    words = (await c.get("/app/text/en.json")).json()
    assert words["concern.title"] == "Raise a safeguarding concern"
    # Compressed for the phone, revalidated with its ETag.
    r = await c.get("/app/app.js", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    again = await c.get("/app/app.js", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304


async def test_my_visits_list_the_address_and_the_team(api: Api) -> None:
    s = await AppScene(api).build()
    ann = await api.login(s.ann)
    items = (await api.client.get("/v1/me/visits", headers=ann)).json()["items"]
    assert [v["id"] for v in items] == [s.visit["id"]]
    assert items[0]["address"] == "1 Elm Road, Northshire"
    assert items[0]["team"] == [
        {"display_name": "Ann", "perspective": "citizen", "lead": True},
        {"display_name": "Dr Pat", "perspective": "professional", "lead": False},
    ]


# --------------------------------------------------------------------------- scene


class AppScene:
    """A care home with an address, the starter care-home checklist, Ann (a cleared citizen,
    the lead) and Dr Pat, a safeguarding lead, and a visit happening now."""

    def __init__(self, api: Api, checklist: dict[str, Any] | None = None) -> None:
        self.api = api
        self.content = checklist or {**STARTER, "service_kinds": ["care_home"]}

    async def build(self) -> AppScene:
        api = self.api
        self.org = await api.org("Healthwatch Northshire")
        self.coord = await api.login(await api.user(self.org, "coordinator"))
        self.service = await add_service(
            api,
            self.coord,
            address="1 Elm Road, Northshire",
            lat=HERE["latitude"],
            lon=HERE["longitude"],
        )
        self.checklist = await published_checklist(api, self.coord, self.content)
        self.ann = await api.cleared_citizen(self.org, name="Ann")
        self.pro = await api.user(self.org, "professional_inspector", name="Dr Pat")
        self.lead = await api.user(self.org, "safeguarding_lead", email="lead@example.org")
        now = dt.datetime.now(dt.UTC)
        r = await api.client.post(
            "/v1/visits",
            headers=self.coord,
            json={
                "service_id": self.service["id"],
                "checklist_id": self.checklist["id"],
                "starts_at": (now - dt.timedelta(minutes=30)).isoformat(),
                "ends_at": (now + dt.timedelta(hours=3)).isoformat(),
                "team": [
                    {"user_id": self.ann["id"], "perspective": "citizen", "lead": True},
                    {"user_id": self.pro["id"], "perspective": "professional"},
                ],
            },
        )
        assert r.status_code == 201, r.text
        self.visit = r.json()
        return self


# --------------------------------------------------------------------------- browser helpers


async def screen(page: Any, name: str, shot: str | None = None) -> None:
    """The screen whose h1 is ``name`` is drawn; axe finds nothing serious; a screenshot."""
    await page.get_by_role("heading", level=1, name=name).wait_for()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390, name
    await axe_check(page, name)
    if shot:
        await page.screenshot(path=SHOTS / f"app-{shot}.png", full_page=True)


async def sign_in(page: Any, base: str, user: dict[str, Any], device: str) -> None:
    await page.goto(base + "/app/")
    await page.get_by_role("heading", level=1, name="Sign in").wait_for()
    await page.get_by_label("Email address").fill(user["email"])
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Name for this phone").fill(device)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", level=1, name="My visits").wait_for()
    # The shell is cached and the service worker answers: the app opens with no signal.
    await page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller")


def snap(name: str) -> dict[str, Any]:
    """A photo as the camera hands it over: made just now (no EXIF time or GPS)."""
    data = (PHOTOS / "orientation" / name).read_bytes()
    return {"name": name, "mimeType": "image/jpeg", "buffer": data}


def good_choice(q: dict[str, Any]) -> str:
    """The label of a good answer to a radio question."""
    match q["type"]:
        case "rating":
            return f"{len(q['labels'])} · {q['labels'][-1]}"
        case "pass_fail":
            return "Pass"
        case "yes_no":
            return "Yes" if q.get("good_answer", True) else "No"
        case _:
            return q["options"][0]["label"]


async def answer_section(page: Any, section: dict[str, Any], special: dict[str, str]) -> None:
    for q in section["questions"]:
        block = page.locator(f"#q-{q['key']}")
        if q["key"] in special:
            choice = special[q["key"]]
            if choice == "N/A":
                await block.get_by_label("Not applicable, or I could not see").check()
            else:
                await block.get_by_label(choice, exact=True).check()
        elif q["type"] == "number":
            await block.get_by_label(re.compile("^Number")).fill("4")
        elif q["type"] == "text":
            await block.get_by_label("Your answer", exact=True).fill("A warm welcome.")
        elif q["type"] == "choice" and q.get("multiple"):
            await block.get_by_label(q["options"][0]["label"], exact=True).check()
        else:
            await block.get_by_label(good_choice(q), exact=True).check()


async def until(check: Any, what: str) -> None:
    """Wait for a condition (polled; the deadline only turns a hang into a failure)."""
    async with asyncio.timeout(120):
        while True:
            if await check():
                return
            await asyncio.sleep(0.1)  # between polls of the condition


async def db_counts(api: Api, visit_id: str) -> dict[str, Any]:
    c = api.conn
    return {
        "submissions": await c.fetchval(
            "select count(*) from submissions where visit_id = $1", visit_id
        ),
        "final": await c.fetchval(
            "select count(*) from submissions where visit_id = $1 and state = 'final'", visit_id
        ),
        "evidence": await c.fetchval(
            "select count(*) from evidence where visit_id = $1 and deleted_at is null", visit_id
        ),
        "findings": await c.fetchval("select count(*) from findings where visit_id = $1", visit_id),
        "lead_told": await c.fetchval(
            "select count(*) from outbox where event = 'safeguarding.raised'"
        ),
    }


# --------------------------------------------------------------------------- the journey


async def test_a_whole_visit_offline_arrives_once_when_back_online(
    api: Api, base_url: str, chromium: str
) -> None:
    s = await AppScene(api).build()
    visit_id = s.visit["id"]
    sections = STARTER["content"]["sections"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with open_browser(chromium) as browser:
        context = await browser.new_context(**PHONE)
        page = await context.new_page()
        await page.goto(base_url + "/app/")
        await screen(page, "Sign in", "signin")
        await sign_in(page, base_url, s.ann, "Ann's phone")
        await screen(page, "My visits", "visits")
        text = await page.locator("main").inner_text()
        assert "Elm House" in text and "1 Elm Road, Northshire" in text
        assert "Ann (citizen inspector, lead)" in text
        assert "Dr Pat (professional inspector)" in text
        await page.get_by_role("button", name="Make ready offline").click()
        await screen(page, "Elm House", "visit")

        # No signal from here on.
        await context.set_offline(True)
        await page.get_by_role("link", name=sections[0]["title"]).click()
        await screen(page, sections[0]["title"], "section")
        await page.get_by_label("Easy read: shorter, simpler questions").check()
        easy = sections[0]["questions"][0]["easy_read"]
        await page.get_by_role("heading", level=2, name=easy).wait_for()
        await page.get_by_label("Easy read: shorter, simpler questions").uncheck()
        special = {
            "dignity_rooms_personalised": "N/A",
            "environment_clean": "Qualified pass (mostly, with some problems)",
        }
        for n, section in enumerate(sections, 1):
            if n > 1:
                await page.get_by_role("link", name="Next section").click()
                await page.get_by_role("heading", level=1, name=section["title"]).wait_for()
            await answer_section(page, section, special)
            if section["title"] == "The environment":
                # A qualified pass on cleanliness needs a photo (the evidence rule).
                clean = page.locator("#q-environment_clean")
                await clean.get_by_text("This answer needs a photo.").wait_for()
                await clean.get_by_label("Photo for this question").set_input_files(
                    snap("landscape_1.jpg")
                )
                await clean.get_by_text("1 photo added.").wait_for()
        await page.locator("#q-dignity_privacy").wait_for(state="detached")
        await page.get_by_text("30 of 30 questions answered").wait_for()

        # A photo of the visit, with the phone's location.
        await page.goto(base_url + f"/app/visits/{visit_id}/photos")
        await page.get_by_label("What does it show? (optional)").fill("The garden gate")
        await page.get_by_label("Take or choose a photo").set_input_files(snap("portrait_1.jpg"))
        await page.get_by_text("Photo saved on this phone with your location").wait_for()
        await screen(page, "Photos", "photos")
        assert (await page.get_by_text("Waiting to send.").count()) == 2

        # A recommendation, and a safeguarding concern.
        await page.goto(base_url + f"/app/visits/{visit_id}/findings")
        await screen(page, "Findings", "findings")
        await page.get_by_role("link", name="A recommendation").click()
        await screen(page, "A recommendation", "finding")
        await page.get_by_label("In a few words").fill("Garden gate locked")
        await page.get_by_label("What you saw").fill("Residents could not go out.")
        await page.get_by_label("What should change").fill("Keep the gate open by day.")
        await page.get_by_label("The garden gate").check()
        await page.get_by_role("button", name="Save").click()
        await page.get_by_role("heading", level=1, name="Findings").wait_for()
        await page.get_by_role("link", name="Raise a safeguarding concern").click()
        await screen(page, "Raise a safeguarding concern", "concern")
        main = await page.locator("main").inner_text()
        assert "safeguarding leads" in main and "The service and its managers" in main
        await page.get_by_label("What is the concern, in a few words?").fill("Bruising")
        await page.get_by_label("What did you see or hear?").fill("Mrs A's arm, room 4.")
        await page.get_by_role("button", name="Raise the concern").click()
        await page.get_by_text("Your concern is saved.").wait_for()

        # A reload with no signal: the shell and everything given are still there.
        await page.reload()
        await page.get_by_role("heading", level=1, name="Elm House").wait_for()
        await page.goto(base_url + f"/app/visits/{visit_id}")
        await page.get_by_text("30 of 30 questions answered").first.wait_for()
        await page.goto(base_url + f"/app/visits/{visit_id}/sections/4")
        await page.get_by_role("heading", level=1, name="The environment").wait_for()
        assert (
            await page.locator("#q-environment_clean")
            .get_by_label("Qualified pass (mostly, with some problems)", exact=True)
            .is_checked()
        )
        await page.goto(base_url + f"/app/visits/{visit_id}/findings")
        await page.get_by_role("heading", level=1, name="Findings").wait_for()
        assert (await page.get_by_text("Saved on this phone; waiting to send.").count()) == 2

        await page.goto(base_url + f"/app/visits/{visit_id}/review")
        await screen(page, "Review and send", "review")
        await page.get_by_text("Every answer that needs a photo has one.").wait_for()
        await page.get_by_role("button", name="Send my answers as final").click()
        await page.get_by_text("Your answers are final.").wait_for()
        await page.goto(base_url + "/app/outbox")
        await screen(page, "Sending", "outbox")
        # Nothing reached the server while offline.
        assert await db_counts(api, visit_id) == {
            "submissions": 0,
            "final": 0,
            "evidence": 0,
            "findings": 0,
            "lead_told": 0,
        }

        # Signal again: everything goes, in order, once.
        await context.set_offline(False)
        await page.locator("#net").get_by_text("Everything sent").wait_for(timeout=120_000)
        assert await db_counts(api, visit_id) == {
            "submissions": 1,
            "final": 1,
            "evidence": 2,
            "findings": 2,
            "lead_told": 1,
        }
        ev = await api.conn.fetch(
            "select location_source, question_key from evidence where visit_id = $1",
            visit_id,
        )
        assert sorted(r["question_key"] or "" for r in ev) == ["", "environment_clean"]
        # The photos' results, in words.
        await page.goto(base_url + f"/app/visits/{visit_id}/photos")
        await page.get_by_text("Taken on site.").nth(1).wait_for(timeout=120_000)
        assert (await page.get_by_text("Taken during the visit.").count()) == 2
        await page.screenshot(path=SHOTS / "app-photos-sent.png", full_page=True)
        # Once more online (a reload runs the outbox again): still exactly once.
        await page.reload()
        await page.locator("#net").get_by_text("Everything sent").wait_for()
        assert (await db_counts(api, visit_id))["findings"] == 2
        assert (await db_counts(api, visit_id))["submissions"] == 1
        await page.goto(base_url + "/app/signout")
        await screen(page, "Sign out", "signout")
        # Signing out revokes this phone's sign-in and leaves nothing on it.
        await page.get_by_role("button", name="Sign out", exact=True).click()
        await page.get_by_role("heading", level=1, name="Sign in").wait_for()
        revoked = await api.conn.fetchval(
            "select revoked_at is not null from devices where name = $1", "Ann's phone"
        )
        assert revoked
        assert await page.evaluate(SESSION_JS) is None


# --------------------------------------------------------------------------- two devices


async def test_two_devices_editing_one_draft_see_the_conflict_explained(
    api: Api, base_url: str, chromium: str
) -> None:
    s = await AppScene(api).build()
    visit_id = s.visit["id"]
    labels = STARTER["content"]["sections"][0]["questions"][0]["labels"]
    rating = [f"{n} · {label}" for n, label in enumerate(labels, 1)]

    async def answered() -> Any:
        return await api.conn.fetchval(
            """select a.value::int from answers a join submissions s on s.id = a.submission_id
                where s.visit_id = $1 and a.question_key = 'dignity_privacy'""",
            visit_id,
        )

    async def has(value: int) -> bool:
        return await answered() == value

    async with open_browser(chromium) as browser:
        one = await (await browser.new_context(**PHONE)).new_page()
        two = await (await browser.new_context(**PHONE)).new_page()
        await sign_in(one, base_url, s.ann, "Ann's phone")
        await one.get_by_role("button", name="Make ready offline").click()
        await one.get_by_role("heading", level=1, name="Elm House").wait_for()
        await one.goto(base_url + f"/app/visits/{visit_id}/sections/1")
        privacy = one.locator("#q-dignity_privacy")
        await privacy.get_by_label(rating[2], exact=True).check()
        await until(lambda: has(3), "the phone's first answer arrived")

        # The tablet picks the draft up where the phone left it.
        await sign_in(two, base_url, s.ann, "Ann's tablet")
        await two.get_by_role("button", name="Make ready offline").click()
        await two.get_by_role("heading", level=1, name="Elm House").wait_for()
        await two.goto(base_url + f"/app/visits/{visit_id}/sections/1")
        await two.get_by_role("heading", level=1, name="Dignity and respect").wait_for()
        assert (
            await two.locator("#q-dignity_privacy").get_by_label(rating[2], exact=True).is_checked()
        )

        # Both change it; the phone's change reaches the server first.
        await privacy.get_by_label(rating[3], exact=True).check()
        await until(lambda: has(4), "the phone's change arrived")
        await two.locator("#q-dignity_privacy").get_by_label(rating[1], exact=True).check()
        await two.locator("#net").get_by_text("1 thing needs you").wait_for()
        assert await answered() == 4  # nothing was overwritten silently

        await two.goto(base_url + "/app/outbox")
        await screen(two, "Sending", "conflict")
        said = await two.locator("main").inner_text()
        assert "changed on another device" in said and "Nothing has been overwritten" in said
        # The way forward: keep this device's answers, knowingly.
        await two.get_by_role("button", name="Keep the answers on this phone").click()
        await until(lambda: has(2), "the tablet's answer, kept knowingly, arrived")
        await two.locator("#net").get_by_text("Everything sent").wait_for()
        count = "select count(*) from submissions where visit_id = $1"
        assert await api.conn.fetchval(count, visit_id) == 1


# --------------------------------------------------------------------------- token expiry


async def test_an_access_token_that_expired_offline_is_renewed_on_reconnect(
    api: Api, settings: Settings, tmp_path: Path, chromium: str
) -> None:
    s = await AppScene(api, checklist=SMALL).build()
    visit_id = s.visit["id"]
    short = msgspec.structs.replace(settings, access_token_ttl_s=5)
    proc, base = start_live_server(short, tmp_path)
    try:
        async with open_browser(chromium) as browser:
            context = await browser.new_context(**PHONE)
            page = await context.new_page()
            await sign_in(page, base, s.ann, "Ann's phone")
            await page.get_by_role("button", name="Make ready offline").click()
            await page.get_by_role("heading", level=1, name="Elm House").wait_for()
            await context.set_offline(True)
            await page.goto(base + f"/app/visits/{visit_id}/sections/1")
            await page.locator("#q-respect").get_by_label("3 · Good", exact=True).check()
            await page.locator("#q-smells").get_by_label("No", exact=True).check()
            session = await page.evaluate(SESSION_JS)
            device = session["device_id"]
            renewed = "select count(*) from refresh_tokens where device_id = $1"
            before = await api.conn.fetchval(renewed, device)
            # Wait (for a condition) until the server refuses the phone's access token.
            async with httpx.AsyncClient(base_url=base) as http:
                headers = {"authorization": f"Bearer {session['access_token']}"}
                async with asyncio.timeout(60):
                    while True:
                        if (await http.get("/v1/me", headers=headers)).status_code == 401:
                            break
                        await asyncio.sleep(0.2)  # between polls of the condition
            assert await api.conn.fetchval("select count(*) from submissions") == 0

            await context.set_offline(False)
            await page.locator("#net").get_by_text("Everything sent").wait_for()
            # Renewed with the refresh token, without asking Ann to sign in again.
            assert await api.conn.fetchval(renewed, device) > before
            assert await page.get_by_role("heading", level=1, name="Sign in").count() == 0
            answers = await api.conn.fetch(
                """select a.question_key, a.value from answers a
                     join submissions s on s.id = a.submission_id
                    where s.visit_id = $1 order by 1""",
                visit_id,
            )
            assert [(a["question_key"], json.loads(a["value"])) for a in answers] == [
                ("respect", 3),
                ("smells", False),
            ]
    finally:
        stop_live_server(proc)


SESSION_JS = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("inspector");
  open.onsuccess = () => {
    const get = open.result.transaction("kv").objectStore("kv").get("session");
    get.onsuccess = () => resolve(get.result);
    get.onerror = () => reject(get.error);
  };
})"""


# --------------------------------------------------------------------------- keyboard, zoom


def named(tag: str, text: str) -> str:
    return f"el => el.tagName === {tag!r} && el.textContent.trim() === {text!r}"


async def test_a_visit_by_keyboard_alone_and_at_200_percent_text(
    api: Api, base_url: str, chromium: str
) -> None:
    s = await AppScene(api, checklist=SMALL).build()
    visit_id = s.visit["id"]
    async with open_browser(chromium) as browser:
        page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
        await page.goto(base_url + "/app/")
        await page.get_by_role("heading", level=1, name="Sign in").wait_for()
        kb = page.keyboard
        await tab_to(page, "el => el.id === 'email'")
        await kb.type(s.ann["email"])
        await kb.press("Tab")
        await kb.type(PASSWORD)
        await activate(page, named("BUTTON", "Sign in"))
        await page.get_by_role("heading", level=1, name="My visits").wait_for()
        await activate(page, named("BUTTON", "Make ready offline"))
        await page.get_by_role("heading", level=1, name="Elm House").wait_for()
        await activate(page, named("A", "Dignity"))
        await page.get_by_role("heading", level=1, name="Dignity").wait_for()
        await tab_to(page, "el => el.id === 'q-respect-0'")
        for _ in range(3):  # arrows move along the scale: Poor, Fair, Good, Great
            await kb.press("ArrowDown")
        await tab_to(page, "el => el.id === 'q-smells-0'")
        await kb.press("ArrowDown")  # No
        await page.get_by_text("2 of 2 questions answered").wait_for()
        await activate(page, named("A", "Review and send"))
        await page.get_by_role("heading", level=1, name="Review and send").wait_for()
        await activate(page, named("BUTTON", "Send my answers as final"))
        await page.get_by_text("Your answers, photos and findings have all been sent.").wait_for()
        row = await api.conn.fetchrow(
            "select state, id from submissions where visit_id = $1", visit_id
        )
        assert row["state"] == "final"
        values = {
            a["question_key"]: json.loads(a["value"])
            for a in await api.conn.fetch(
                "select question_key, value from answers where submission_id = $1", row["id"]
            )
        }
        assert values == {"respect": 4, "smells": False}

        # Text at 200%: the same phone at half the CSS width; nothing needs sideways
        # scrolling and the buttons stay inside the screen.
        zoomed = await browser.new_context(
            viewport={"width": 195, "height": 422}, device_scale_factor=2
        )
        big = await zoomed.new_page()
        await sign_in(big, base_url, s.ann, "Ann's phone, large text")
        await big.get_by_role("button", name="Make ready offline").click()
        await big.get_by_role("heading", level=1, name="Elm House").wait_for()
        await big.goto(base_url + "/app/")
        for path, title in [
            ("/app/", "My visits"),
            (f"/app/visits/{visit_id}", "Elm House"),
            (f"/app/visits/{visit_id}/sections/1", "Dignity"),
            (f"/app/visits/{visit_id}/concern", "Raise a safeguarding concern"),
            ("/app/outbox", "Sending"),
        ]:
            if path != "/app/":
                await big.goto(base_url + path)
            await big.get_by_role("heading", level=1, name=title).wait_for()
            width = await big.evaluate("document.documentElement.scrollWidth")
            assert width <= 195, (path, width)
            for box in await big.locator("main button, main a.button").all():
                b = await box.bounding_box()
                assert b is None or b["x"] + b["width"] <= 195, path
        await big.screenshot(path=SHOTS / "app-outbox-200.png", full_page=True)
