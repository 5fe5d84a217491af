"""The scorecard page for committees: content, sign-in by form, access, escaping, a real browser.

The first part goes through Litestar's test client; the last test starts a real server and
drives Debian's Chromium (installed here if missing) with Playwright at phone and desktop
widths, and prints the page to an A4 PDF.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from litestar.security.jwt import Token
from litestar.testing import AsyncTestClient

from inspections.accounts.signin_page import safe_next
from inspections.scorecards.page import BAND_COLOURS, CITIZEN_COLOUR, PROFESSIONAL_COLOUR
from service.app import create_app
from service.devstack import SeaweedFS
from service.settings import Settings
from tests.browser import SCREENSHOTS, shoot
from tests.browser import browser as open_browser
from tests.browser import phone as phone_page
from tests.conftest import make_settings
from tests.helpers import PASSWORD, Api, form_post
from tests.scenes import Scene, add_service, published_checklist, read, seeded

HTML = "text/html; charset=utf-8"
COOKIE = "coassess_session"
BANDS = ("Inadequate", "Requires improvement", "Good", "Outstanding")
DIGNITY_GAP = (
    "Citizens scored 67 points lower than professionals on dignity. "
    "That is more than chance would explain: the perspectives diverge."
)


async def browser_sign_in(
    client: AsyncTestClient | httpx.AsyncClient, user: dict[str, Any], next_: str = "/"
) -> httpx.Response:
    return await form_post(
        client,
        "/signin",
        data={"email": user["email"], "password": PASSWORD, "next": next_},
        follow_redirects=False,
    )


def page_url(service_id: str) -> str:
    return f"/services/{service_id}/scorecard"


async def test_the_page_shows_the_seeded_care_home(api: Api) -> None:
    s, _ = await seeded(api)
    scrutiny = await api.user(s.org, "scrutiny_member")
    r = await browser_sign_in(api.client, scrutiny)
    assert r.status_code == 303, r.text
    r = await api.client.get(page_url(s.service["id"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == HTML
    assert "script-src" not in r.headers["content-security-policy"]
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.headers["cache-control"] == "no-store"
    html = r.text
    assert html.startswith("<!doctype html>") and '<html lang="en">' in html
    assert '<main id="main">' in html and "<script" not in html
    assert 'name="viewport"' in html
    # The A4 print rules are in the one stylesheet the page links (no inline style).
    css = re.search(r'<link rel="stylesheet" href="(/static/site\.css[^"]*)">', html)
    assert css and "@page{size:A4;margin:15mm}" in (await api.client.get(css.group(1))).text
    text, headings = read(html)

    assert headings[0] == ("h1", "Elm House")
    assert [h for tag, h in headings if tag == "h2"] == [
        "Overall rating",
        "Citizens and professionals, domain by domain",
        "Each domain",
        "Things to know",
        "Items that drive the biggest gaps",
        "Recommendations to this service",
        "How to read this scorecard",
    ]
    assert "No report with recommendations was published in this period." in text
    assert ("h3", "Dignity Good") in headings and ("h3", "Safety Outstanding") in headings
    assert "Care home · scorecard for " in text
    # The band, big, among all four band words.
    assert "Overall band\nGood\n" in text
    for word in BANDS:
        assert word in text
    assert 'class="current" aria-current="true"><span aria-hidden="true">● </span>Good' in html
    # The combined score with both inputs and the interval; the gap; the agreement.
    assert "Combined 83.3 (citizens 66.7, 95% CI 63–71; professionals 100)" in text
    assert "Combined 66.7 (citizens 33.3, 95% CI 26–41; professionals 100)" in text
    assert "Citizens scored 33 points lower than professionals overall." in text
    assert DIGNITY_GAP in text
    assert "Citizens and professionals scored the same on safety." in text
    assert "agreement (Krippendorff's alpha) is −0.40" in text
    assert "1 means full agreement and 0 no better than chance" in text
    # Trends: nothing before this period.
    assert "Trend against the previous period of the same length: no previous data" in text
    assert text.count("Trend: no previous data") == 2

    # The chart: an image with a name and a description, bars for both perspectives.
    svg = re.search(r'<svg [^>]*role="img"[^>]*>.*?</svg>', html, re.S)
    assert svg, html
    chart = svg.group(0)
    assert 'aria-labelledby="chart-title"' in chart and 'aria-describedby="chart-desc"' in chart
    assert '<title id="chart-title">Citizen and professional scores by domain</title>' in chart
    desc = re.search(r'<desc id="chart-desc">(.*?)</desc>', chart, re.S)
    assert desc and "Dignity: citizens 33.3, professionals 100." in desc.group(1)
    assert "Safety: citizens 100, professionals 100." in desc.group(1)
    assert "39 Requires improvement, 63 Good, 88 Outstanding" in desc.group(1)
    assert chart.count("<rect x=") == 4 and 'fill="url(#hatch)"' in chart
    assert "<title>Dignity, citizens: 33.3</title>" in chart
    assert "viewBox=" in chart
    # Its numbers again in a table: the text alternative a screen reader can walk.
    table = re.search(r'<table class="data">.*?</table>', html, re.S)
    assert table
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0))
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in rows]
    assert cells == [
        ["Domain", "Citizens", "Professionals", "Gap"],
        ["Dignity", "33.3", "100", "−66.7"],
        ["Safety", "100", "100", "0"],
    ]
    assert "Citizens (solid bar, upper)" in text and "Professionals (striped bar, lower)" in text

    # Notes in plain words, and the questions behind the gap.
    assert (
        "Dignity: citizens scored 67 points lower than professionals, more than chance would "
        "explain: the perspectives diverge." in text
    )
    items = re.search(r'<ol class="items">(.*?)</ol>', html, re.S)
    assert items
    item_text, _ = read(items.group(1))
    said = (
        "Citizens: 1.3 of 4 on average (6 answers). Professionals: 4 of 4 (Excellent), all 3 "
        "answers. Citizens scored this 67 points lower out of 100."
    )
    # The question as inspectors read it, and the answers in words, not keys and points.
    assert item_text.splitlines() == [
        f"Is privacy respected? (dignity) {said}",
        f"Are people spoken to with respect? (dignity) {said}",
    ]  # call_bells: both 2 of 2, so it drives no gap
    assert "question key" not in text and "<code>" not in items.group(1)
    # The service's published reports, for the public too.
    reports = f"/public/organisations/{s.org}?service={s.service['id']}"
    assert f'<a href="{reports}">This service’s published visit reports</a>' in html
    assert "Citizens 6 submissions" not in text
    assert "Citizens: 6 submissions by 2 people at 3 visits." in text
    assert "Professionals: 3 submissions by 1 person at 3 visits." in text
    assert "below 39 Inadequate" in text and "citizens and professionals count equally" in text


async def test_a_signed_out_browser_signs_in_by_form_and_comes_back(api: Api) -> None:
    s, _ = await seeded(api)
    coord = await api.user(s.org, "coordinator")
    url = page_url(s.service["id"]) + "?from=2020-01-01&to=2020-12-31"
    r = await api.client.get(url, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/signin?next=" + quote(url, safe="")
    assert COOKIE not in r.headers.get("set-cookie", "")  # no session for a signed-out browser

    form = await api.client.get(r.headers["location"])
    assert form.status_code == 200 and form.headers["content-type"] == HTML
    assert f'<input type="hidden" name="next" value="{url.replace("&", "&amp;")}">' in form.text
    assert 'autocomplete="current-password"' in form.text and '<label for="email">' in form.text

    r = await browser_sign_in(api.client, coord, url)
    assert r.status_code == 303 and r.headers["location"] == url
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower() and "Path=/" in cookie and "Max-Age=900" in cookie
    assert "Secure" not in cookie  # plain http here; https gets Secure (next test)

    # The cookie alone (no Authorization header) now opens the page, and the API too.
    page = await api.client.get(url)
    assert page.status_code == 200, page.text
    text, _ = read(page.text)
    assert "scorecard for 1 January 2020 to 31 December 2020" in text
    assert "Overall band\nNot rated" in text and "nothing to chart" in text
    assert (await api.client.get("/v1/me")).json()["email"] == coord["email"]
    # A write signed in by the cookie alone must come from this site's pages.
    invite = {"email": "new@example.org", "roles": ["scrutiny_member"]}
    r = await api.client.post(
        "/v1/invites", json=invite, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 401 and "from this site" in r.json()["detail"]
    origin = "http://" + api.client.base_url.netloc.decode()
    r = await api.client.post("/v1/invites", json=invite, headers={"Origin": origin})
    assert r.status_code == 201, r.text

    device = await api.conn.fetchrow(
        "select id, name, revoked_at from devices where user_id = $1", coord["id"]
    )
    assert device["name"] == "web browser" and device["revoked_at"] is None
    summary = await api.conn.fetchval(
        "select summary from audit_log where action = 'auth.sign_in' and object_id = $1",
        str(device["id"]),
    )
    assert json.loads(summary) == {"device": "web browser", "via": "sign-in page"}
    # Already signed in: the sign-in page sends the browser on.
    again = await api.client.get("/signin?next=/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/"

    # Signing out revokes this browser's device and clears the cookie.
    stolen = api.client.cookies[COOKIE]
    out = await form_post(api.client, "/signout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert await api.conn.fetchval("select revoked_at from devices where id = $1", device["id"])
    assert await api.conn.fetchval(
        "select count(*) from audit_log where action = 'auth.logout' and object_id = $1",
        str(device["id"]),
    )
    assert (await api.client.get(url, follow_redirects=False)).status_code == 303
    api.client.cookies.set(COOKIE, stolen)  # a copied cookie is dead too
    assert (await api.client.get(url, follow_redirects=False)).status_code == 303


async def test_the_cookie_is_secure_behind_https(api: Api) -> None:
    s, _ = await seeded(api)
    r = await form_post(
        api.client,
        "/signin",
        data={"email": (await api.user(s.org, "scrutiny_member"))["email"], "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


async def test_a_wrong_password_shows_the_form_again_with_401(api: Api) -> None:
    s, _ = await seeded(api)
    coord = await api.user(s.org, "coordinator", email="Coord@Example.org")
    for email, password in ((coord["email"], "not-the-password"), ("nobody@example.org", "p4ss")):
        r = await form_post(
            api.client,
            "/signin",
            data={"email": email, "password": password, "next": "/"},
            follow_redirects=False,
        )
        assert r.status_code == 401 and r.headers["content-type"] == HTML
        assert "set-cookie" not in r.headers
        assert '<p class="error" role="alert" id="signin-error">Wrong email or password.' in r.text
        assert f'value="{email}"' in r.text and password not in r.text
    # Missing fields are a failed sign-in, not a crash.
    r = await form_post(api.client, "/signin", data={}, follow_redirects=False)
    assert r.status_code == 401
    await api.conn.execute("update users set active = false where id = $1", coord["id"])
    r = await browser_sign_in(api.client, coord)
    assert r.status_code == 403 and "deactivated" in r.text and "set-cookie" not in r.headers
    assert not await api.conn.fetchval("select count(*) from devices where name = 'web browser'")


@pytest.mark.parametrize(
    ("next_", "expected"),
    [
        ("//evil.example", "/"),
        ("https://evil.example/scorecard", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
        ("/services/x/scorecard?from=2026-01-01", "/services/x/scorecard?from=2026-01-01"),
    ],
)
def test_next_only_goes_to_a_path_on_this_site(next_: str, expected: str) -> None:
    assert safe_next(next_) == expected


async def test_sign_in_never_redirects_off_site(api: Api) -> None:
    s, _ = await seeded(api)
    for target in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        api.client.cookies.clear()
        r = await browser_sign_in(api.client, await api.user(s.org, "scrutiny_member"), target)
        assert r.status_code == 303 and r.headers["location"] == "/", target
        assert "evil" not in (await api.client.get(f"/signin?next={quote(target)}")).text
    # The form refuses a post from another site's page (login CSRF).
    api.client.cookies.clear()
    r = await form_post(
        api.client,
        "/signin",
        data={"email": s.manager["email"], "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "set-cookie" not in r.headers


async def test_who_sees_which_page(api: Api) -> None:
    s, _ = await seeded(api)
    url = page_url(s.service["id"])

    async def get_as(user: dict[str, Any], path: str = url) -> httpx.Response:
        api.client.cookies.clear()
        assert (await browser_sign_in(api.client, user)).status_code == 303
        return await api.client.get(path, follow_redirects=False)

    r = await get_as(s.ann)  # a citizen inspector
    assert r.status_code == 403 and r.headers["content-type"] == HTML
    assert "<h1>Not available to your account</h1>" in r.text and "Sign out" in r.text
    r = await get_as(await api.user(s.org, "professional_inspector"))
    assert r.status_code == 403
    assert (await get_as(s.manager)).status_code == 200
    r = await get_as(await api.user(s.org, "service_manager"))  # of another service
    assert r.status_code == 403 and "services they manage" in r.text
    stranger = await api.user(await api.org("Southshire"), "scrutiny_member")
    r = await get_as(stranger)
    assert r.status_code == 404 and "<h1>Service not found</h1>" in r.text
    assert "Elm House" not in r.text
    coord = await api.user(s.org, "coordinator")
    r = await get_as(coord, page_url("00000000-0000-4000-8000-000000000000"))
    assert r.status_code == 404 and r.headers["content-type"] == HTML
    r = await get_as(coord, url + "?from=2026-13-01")
    assert r.status_code == 422 and "2026-01-31" in r.text
    r = await get_as(coord, url + "?from=2026-02-01&to=2026-01-01")
    assert r.status_code == 422 and "before the end" in r.text
    # The phone's bearer token opens the page too; the home page lists what one may read.
    api.client.cookies.clear()
    r = await api.client.get(url, headers=s.coord)
    assert r.status_code == 200 and "<h1>Elm House</h1>" in r.text
    home = await api.client.get("/scorecards", headers=s.coord)
    assert f'<a href="{url}">Elm House</a>' in home.text
    home = await api.client.get("/scorecards", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/signin?next=%2Fscorecards"


async def test_names_are_escaped(api: Api) -> None:
    s, _ = await seeded(api)
    evil = "<script>alert(1)</script> & \"Sons\" 'Ltd'"
    r = await api.client.patch(
        f"/v1/services/{s.service['id']}", headers=s.coord, json={"name": evil}
    )
    assert r.status_code == 200, r.text
    r = await api.client.get(page_url(s.service["id"]), headers=s.coord)
    assert r.status_code == 200
    assert "<script>" not in r.text and "alert(1)</script>" not in r.text
    # (Jinja's autoescape writes quotes as &#34; and &#39;.)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Sons&#34; &#39;Ltd&#39;"
    assert f"<h1>{escaped}</h1>" in r.text and f"<title>{escaped}: scorecard" in r.text
    home = await api.client.get("/scorecards", headers=s.coord)
    assert "<script>" not in home.text and escaped in home.text
    # And on the sign-in form, a hostile email or next is text, not markup.
    r = await form_post(
        api.client,
        "/signin",
        data={"email": '"><script>x()</script>', "password": "p", "next": '/"><script>'},
        follow_redirects=False,
    )
    assert r.status_code == 401 and "<script>" not in r.text


async def test_an_old_session_is_renewed_on_a_page_load(api: Api, settings: Settings) -> None:
    s, _ = await seeded(api)
    r = await browser_sign_in(api.client, await api.user(s.org, "scrutiny_member"))
    token = Token.decode(api.client.cookies[COOKIE], settings.jwt_secret or "", "HS256")
    now = dt.datetime.now(dt.UTC)
    old = Token(
        sub=token.sub,
        exp=now + dt.timedelta(minutes=5),
        iat=now - dt.timedelta(minutes=10),
        extras=token.extras,
    ).encode(settings.jwt_secret or "", "HS256")
    domain = next(c.domain for c in api.client.cookies.jar if c.name == COOKIE)
    api.client.cookies.set(COOKIE, old, domain=domain)
    r = await api.client.get(page_url(s.service["id"]))
    assert r.status_code == 200 and "Max-Age=900" in r.headers["set-cookie"]
    assert api.client.cookies[COOKIE] != old
    # A fresh one is left alone.
    r = await api.client.get(page_url(s.service["id"]))
    assert "set-cookie" not in r.headers


async def test_sign_in_by_form_shares_the_api_rate_limit(
    api: Api, database_url: str, seaweed: SeaweedFS
) -> None:
    s, _ = await seeded(api)
    limited = make_settings(database_url, seaweed, signin_rate_per_minute=3)
    async with AsyncTestClient(app=create_app(limited)) as c:
        bad = {"email": s.manager["email"], "password": "guess", "device": "phone"}
        assert (await c.post("/v1/auth/token", json=bad)).status_code == 401
        assert (await c.post("/v1/auth/token", json=bad)).status_code == 401
        r = await form_post(c, "/signin", data=bad, follow_redirects=False)
        assert r.status_code == 401
        r = await form_post(c, "/signin", data=bad, follow_redirects=False)
        assert r.status_code == 429 and r.headers["content-type"] == HTML
        assert "Too many sign-in attempts" in r.text
        assert (await c.post("/v1/auth/token", json=bad)).status_code == 429
        # Reading the form is not an attempt.
        assert (await c.get("/signin")).status_code == 200


async def test_openapi_lists_the_pages_and_the_cookie(client: AsyncTestClient) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    for path in ("/signin", "/signout", "/services/{service_id}/scorecard", "/scorecards"):
        assert path in spec["paths"], path
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerToken"]["scheme"] == "bearer"
    assert schemes["SessionCookie"] == {
        "type": "apiKey",
        "name": COOKIE,
        "in": "cookie",
        "description": schemes["SessionCookie"]["description"],
    }
    assert {"SessionCookie": []} in spec["security"] and {"BearerToken": []} in spec["security"]


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_colours_meet_wcag_contrast() -> None:
    for colour in [*BAND_COLOURS.values(), CITIZEN_COLOUR, PROFESSIONAL_COLOUR]:
        assert contrast(colour, "#ffffff") >= 4.5, colour  # white words on the band boxes
    for text in ("#1a1a1a", "#4d4d4d", "#0b4f8a"):  # body text, muted text, links
        assert contrast(text, "#ffffff") >= 4.5, text


# --------------------------------------------------------------------------- a real browser


async def test_in_headless_chromium_at_phone_and_desktop_widths_and_on_a4(
    api: Api, base_url: str, chromium: str
) -> None:
    s, _ = await seeded(api)
    scrutiny = await api.user(s.org, "scrutiny_member")
    url = base_url + page_url(s.service["id"])
    async with httpx.AsyncClient(base_url=base_url) as c:
        r = await browser_sign_in(c, scrutiny)
        assert r.status_code == 303, r.text
        cookie = c.cookies[COOKIE]

    async with open_browser(chromium) as browser:
        # Phone: a person signs in through the form, and lands back on the scorecard.
        page = await phone_page(browser)
        await page.goto(url)
        assert page.url.startswith(base_url + "/signin?next=")
        await shoot(page, "scorecard-signin")
        await page.get_by_label("Email").fill(scrutiny["email"])
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(url)
        jar = {c["name"]: c for c in await page.context.cookies()}
        assert jar[COOKIE]["httpOnly"] and jar[COOKIE]["sameSite"] == "Strict"
        assert await page.evaluate("document.cookie") == ""  # scripts cannot read it
        await shows_the_scorecard(page, width=390)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await shoot(page, "scorecard-phone")

        # Desktop, with the cookie from an httpx sign-in.
        desktop = await browser.new_context(viewport={"width": 1280, "height": 900})
        await desktop.add_cookies(
            [
                {
                    "name": COOKIE,
                    "value": cookie,
                    "url": base_url,
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            ]
        )
        page = await desktop.new_page()
        response = await page.goto(url)
        assert response is not None and response.status == 200
        await shows_the_scorecard(page, width=1280)
        await shoot(page, "scorecard-desktop")

        # Paper: A4, without the navigation, black on white.
        await page.emulate_media(media="print")
        assert await page.locator("header.site").is_hidden()
        assert await page.locator("form.period").is_hidden()
        colour = await page.locator("main").evaluate("e => getComputedStyle(e).color")
        assert colour == "rgb(0, 0, 0)"
        band = page.locator(".band-box")
        assert await band.evaluate("e => getComputedStyle(e).color") == "rgb(0, 0, 0)"
        pdf = await page.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF")
        pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        assert 1 <= pages <= 3, pages
        (SCREENSHOTS / "scorecard-a4.pdf").write_bytes(pdf)  # for people to look at


async def shows_the_scorecard(page: Any, width: int) -> None:
    main = await page.locator("main").inner_text()
    for words in (*BANDS, "Dignity", "Safety", DIGNITY_GAP, "Items that drive the biggest gaps"):
        assert words in " ".join(main.split()), words
    assert await page.locator(".band-word").inner_text() == "Good"
    assert await page.get_by_role("heading", level=1).inner_text() == "Elm House"
    chart = page.get_by_role("img", name="Citizen and professional scores by domain")
    assert await chart.count() == 1
    description = await chart.get_attribute("aria-describedby")
    assert description == "chart-desc"
    box = await chart.bounding_box()
    assert box is not None and 0 < box["width"] <= width
    table = page.get_by_role("table")
    assert "Dignity 33.3 100 −66.7" in " ".join((await table.inner_text()).split())
    await assert_numbers_whole(page, width)
    # The chart scales with the page (viewBox), yet its words stay at 12 px or more.
    scale = await page.locator("svg[role=img]").evaluate(
        "e => e.getBoundingClientRect().width / e.viewBox.baseVal.width"
    )
    assert 14 * scale >= 12 if width < 500 else scale >= 1, scale


async def assert_numbers_whole(page: Any, width: int) -> None:
    """Every number and column heading of every table sits on one line (never "−63.|1" or
    "Citize|ns"), and nothing scrolls sideways."""
    lines = await page.locator("table td, table th[scope=col]").evaluate_all(
        """cells => cells.map(c => {
             const r = document.createRange(); r.selectNodeContents(c);
             const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
             return [c.textContent, tops.size];
           })"""
    )
    assert lines, "no table cells"
    wrapped = [text for text, n in lines if n > 1]
    assert not wrapped, (width, wrapped)
    assert await page.evaluate("document.documentElement.scrollWidth") <= width


def _stats(score: float, n: int, lower: float | None = None, upper: float | None = None) -> Any:
    from inspections.scorecards.schemas import Stats

    counts = dict(submissions=n, raters=n, visits=1, answers=n * 2)
    return Stats(score=score, lower=lower, upper=upper, low_confidence=n < 3, **counts)


def test_render_words_for_trends_one_perspective_overrides_and_no_agreement() -> None:
    """The pure renderer, on a scorecard the seeded care home does not produce."""
    from inspections.scorecards.page import render
    from inspections.scorecards.schemas import (
        Combined,
        DomainCard,
        Override,
        QuestionCard,
        Scorecard,
        ScoringSettings,
    )

    def card(name: str, c: Any, p: Any, combined: float, trend: Any, band: Any) -> DomainCard:
        return DomainCard(
            domain=name,
            citizen=c,
            professional=p,
            combined=Combined(
                score=combined, citizen_weight=0.75, single_perspective=c is None or p is None
            ),
            gap=None if c is None or p is None else c.score - p.score,
            diverges=False,
            band=band,
            trend=trend,
            previous=50.0 if trend else None,
        )

    now = dt.datetime(2026, 6, 30, tzinfo=dt.UTC)
    food = card("food_and_drink", _stats(80, 1), None, 80, "up", "good")
    clean = card("cleanliness", _stats(30, 4, 20, 40), _stats(31, 2, 25, 37), 30.5, "down", None)
    steady = card("safe", None, _stats(95, 5, 90, 100), 95, "steady", "outstanding")
    scorecard = Scorecard(
        service_id=uuid.uuid4(),
        service_name="Ward 7 <Acute>",
        kind="hospital_ward",
        period_from=now - dt.timedelta(days=182),
        period_to=now,
        overall=card("overall", _stats(55, 5), _stats(63, 7), 57, "steady", "requires_improvement"),
        band="inadequate",
        computed_band="requires_improvement",
        band_reason=None,
        provisional=False,
        provisional_reason=None,
        override=Override(
            band="inadequate", reason="Safeguarding <alert> raised", by=uuid.uuid4(), at=now
        ),
        agreement_alpha=None,
        domains=[food, clean, steady],
        questions=[
            QuestionCard(
                question_key="meals_hot",
                domain="food_and_drink",
                max_points=2,
                citizen_mean_points=None,
                professional_mean_points=2,
                gap_pct=None,
            )
        ],
        notes=["Food and drink: only citizens rated this, so the combined score is theirs alone."],
    )
    title, body = render(scorecard, ScoringSettings(citizen_weight=0.75))
    text, headings = read(body)
    assert title == "Ward 7 <Acute>: scorecard (Inadequate)"  # escaped when placed in <title>
    assert (
        "<h1>Ward 7 &lt;Acute&gt;</h1>" in body
        and "coordinator: Safeguarding &lt;alert&gt; raised" in body
    )
    assert "Hospital ward · scorecard for 30 December 2025 to 29 June 2026" in text
    assert "Overall band\nInadequate" in text
    assert "Overall band\nInadequate\nBand set by the coordinator: Safeguarding <alert> raised" in (
        text
    )
    assert (
        "Computed from the scores: Requires improvement. Set by a coordinator on 30 June 2026"
        in (text)
    )
    assert "Combined 80 (citizens 80; no professionals)" in text
    assert "Only citizens rated food and drink in this period, so there is no gap" in text
    assert "Only professionals rated safe in this period" in text
    assert "Combined 30.5 (citizens 30, 95% CI 20–40; professionals 31, 95% CI 25–37)" in text
    assert "Citizens scored 1 point lower than professionals on cleanliness." in text
    assert "↑</span> up</span> (previous period: 50)" in body
    assert "↓</span> down</span>" in body and "→</span> steady</span>" in body
    assert "Trend: ↑ up (previous period: 50)" in text and "Trend: ↓ down" in text
    assert ("h3", "Cleanliness Not rated") in headings
    assert "cannot be measured" in text
    assert "citizens count 75% and professionals 25%" in text
    assert "No question was scored differently" in text
    assert "no ratings from professionals</text>" in body  # in the chart, for food
    assert "Food and drink: citizens 80, professionals no ratings." in text  # its description


# --------------------------------------------------------------------------- why this band

FIVE_DOMAINS = ("staff_interaction", "food_and_drink", "overall_impressions", "activities", "safe")
LOW = FIVE_DOMAINS[:3]  # citizens rate these 1 of 4, professionals 4 of 4: Requires improvement


def five_domain_checklist() -> dict[str, Any]:
    labels = ["Poor", "Fair", "Good", "Excellent"]
    return {
        "title": "Five domains",
        "service_kinds": ["care_home"],
        "content": {
            "sections": [
                {
                    "title": d.replace("_", " ").capitalize(),
                    "questions": [
                        {
                            "type": "rating",
                            "key": f"{d}_q",
                            "prompt": f"How was {d.replace('_', ' ')}?",
                            "domain": d,
                            "labels": labels,
                        }
                    ],
                }
                for d in FIVE_DOMAINS
            ]
        },
    }


async def committee_services(api: Api) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Two care homes on a five-domain checklist: Oak Lodge, with 3 visits by 2 citizens and a
    professional (combined 77.5, but 3 domains Requires improvement), and Birch Court, with
    a single citizen submission and nothing from professionals."""
    s = await Scene(api).build()
    checklist = await published_checklist(api, s.coord, five_domain_checklist())
    services = {}
    for name in ("Oak Lodge", "Birch Court"):
        services[name] = await add_service(api, s.coord, name, lat=43.4, lon=11.8)
    now = dt.datetime.now(dt.UTC)

    async def visit(service: dict[str, Any], days_ago: int, raters: list[Any]) -> None:
        start = now - dt.timedelta(days=days_ago)
        r = await api.client.post(
            "/v1/visits",
            headers=s.coord,
            json={
                "service_id": service["id"],
                "checklist_id": checklist["id"],
                "starts_at": start.isoformat(),
                "ends_at": (start + dt.timedelta(hours=2)).isoformat(),
                "team": s.team(*((who, side) for who, side in raters)),
            },
        )
        assert r.status_code == 201, r.text
        visit_id = r.json()["id"]
        for who, side in raters:
            answers = [
                {"question_key": f"{d}_q", "value": 1 if side == "citizen" and d in LOW else 4}
                for d in FIVE_DOMAINS
            ]
            r = await api.client.put(
                f"/v1/visits/{visit_id}/submissions/{uuid.uuid4()}",
                headers=await api.login(who),
                json={"state": "final", "answers": answers},
            )
            assert r.status_code == 201, r.text

    for days_ago in (30, 20, 10):
        await visit(
            services["Oak Lodge"],
            days_ago,
            [(s.ann, "citizen"), (s.bob, "citizen"), (s.pro, "professional")],
        )
    await visit(services["Birch Court"], 5, [(s.ann, "citizen")])
    return s, services["Oak Lodge"], services["Birch Court"]


CAPPED = "77.5 would be Good; capped at Requires improvement because 3 domains require improvement."
PROVISIONAL = "Provisional: 1 citizen visit, no professional visits."


async def test_the_band_says_why_it_is_capped_or_provisional(api: Api) -> None:
    s, oak, birch = await committee_services(api)
    r = await api.client.get(page_url(oak["id"]), headers=s.coord)
    assert r.status_code == 200, r.text
    box = re.search(r'<div class="band-box[^"]*">(.*?)</div>', r.text, re.S)
    assert box
    box_text, _ = read(box.group(1))
    # The reason sits beside the band, from the maths' own rule, not at the foot of the page.
    assert box_text.splitlines() == ["Overall band", "Requires improvement", CAPPED]
    card = (await api.client.get(f"/v1/services/{oak['id']}/scorecard", headers=s.coord)).json()
    assert card["band_reason"]["rule"] == "two_requires_improvement_domains"
    assert card["band_reason"]["score_band"] == "good"
    assert card["band_reason"]["requires_improvement_domains"] == 3
    # A domain is never called plain "Overall" (the band's word): it is Overall impressions.
    text, headings = read(r.text)
    assert ("h3", "Overall impressions Requires improvement") in headings

    r = await api.client.get(page_url(birch["id"]), headers=s.coord)
    box = re.search(r'<div class="band-box[^"]*">(.*?)</div>', r.text, re.S)
    assert box
    box_text, _ = read(box.group(1))
    lines = box_text.splitlines()
    assert lines[:2] == ["Overall band", "Inadequate"]
    assert lines[2] == (
        f"{PROVISIONAL} A firm band needs 3 submissions from citizens and as many from "
        "professionals."
    )
    assert lines[3].startswith("55 would be Requires improvement; capped at Inadequate")
    text, _ = read(r.text)
    notes = re.search(r'<ul class="notes">(.*?)</ul>', r.text, re.S)
    assert notes
    said = re.findall(r"<li>(.*?)</li>", notes.group(1))
    # Each caveat once, not once per domain.
    assert said == [
        "Only citizens rated this service in this period, so every combined score is theirs alone.",
        "Every citizen score rests on fewer than 3 submissions: treat it with caution.",
    ]
    assert "professionals submissions" not in text and "No professional submissions." in text


def test_notes_name_the_domains_a_caveat_holds_for_once() -> None:
    from inspections.scorecards.compute import OVERALL, notes
    from inspections.scorecards.schemas import Combined, DomainCard

    def card(name: str, c: Any, p: Any) -> DomainCard:
        return DomainCard(
            domain=name,
            citizen=c,
            professional=p,
            combined=Combined(
                score=50, citizen_weight=0.5, single_perspective=c is None or p is None
            ),
            gap=None,
            diverges=False,
            band="requires_improvement",
            trend=None,
            previous=None,
        )

    said = notes(
        card(OVERALL, _stats(50, 5), _stats(50, 2)),
        [card("dignity", _stats(50, 5), _stats(50, 2)), card("safety", _stats(50, 5), None)],
        3,
    )
    assert said == [
        "Only citizens rated safety, so the combined score there is theirs alone.",
        "Fewer than 3 professional submissions behind overall and dignity: treat with caution.",
    ]


async def test_committee_pages_in_chromium_keep_numbers_whole_and_reasons_beside_the_band(
    api: Api, base_url: str, chromium: str
) -> None:
    s, oak, birch = await committee_services(api)
    scrutiny = await api.user(s.org, "scrutiny_member")
    async with httpx.AsyncClient(base_url=base_url) as c:
        assert (await browser_sign_in(c, scrutiny)).status_code == 303
        cookie = c.cookies[COOKIE]
    async with open_browser(chromium) as browser:
        for width in (390, 1280):
            context = await browser.new_context(viewport={"width": width, "height": 900})
            await context.add_cookies(
                [{"name": COOKIE, "value": cookie, "url": base_url, "httpOnly": True}]
            )
            page = await context.new_page()
            for name, service, why in (
                ("capped", oak, CAPPED),
                ("provisional", birch, PROVISIONAL),
            ):
                response = await page.goto(base_url + page_url(service["id"]))
                assert response is not None and response.status == 200
                box = " ".join((await page.locator(".band-box").inner_text()).split())
                assert why in box, (width, box)
                await assert_numbers_whole(page, width)
                await shoot(page, f"committee-{name}-{width}")
            await context.close()
