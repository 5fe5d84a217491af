"""People join by email and reset forgotten passwords in a browser.

Emails go through the outbox to a real SMTP server (aiosmtpd, as in test_notifications);
the last test drives Debian's Chromium through a real server: invite email -> page -> sign
in, and forgotten password -> email -> new password, with axe-core on every page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.devstack import SeaweedFS, free_port
from service.logs import mask_path
from service.settings import Settings
from tests.browser import axe_check, check_page, phone
from tests.browser import browser as open_browser
from tests.conftest import (
    Mailbox,
    Worker,
    make_settings,
    start_live_server,
    stop_live_server,
)
from tests.helpers import PASSWORD, Api, assert_problem, form_post, post_token
from tests.scenes import read

BASE = "https://coassess.example"
HTML = "text/html; charset=utf-8"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def settings(mail_settings: Settings) -> Settings:
    # Mail to the local SMTP server, delivered when each test chooses; links to BASE.
    return msgspec.structs.replace(mail_settings, public_base_url=BASE)


def link_in(text: str, path: str) -> str:
    found = re.findall(r"https?://\S+" + re.escape(path) + r"[A-Za-z0-9_-]+", text)
    assert len(found) == 1, text
    return found[0]


async def coordinator(api: Api, org: str) -> tuple[dict[str, Any], dict[str, str]]:
    user = await api.user(org, "coordinator", name="Priya Shah")
    return user, await api.login(user)


def assert_page(r: httpx.Response, status: int) -> str:
    """A template page: its status, its headers, no inline style or script; its words."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == HTML
    csp = r.headers["content-security-policy"]
    assert "style-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "same-origin"
    html = r.text
    assert html.startswith("<!doctype html>") and '<html lang="en">' in html
    assert "<script" not in html and "<style" not in html and "style=" not in html
    assert re.search(r'<link rel="stylesheet" href="/static/site\.css\?v=[0-9a-f]{12}">', html)
    text, _ = read(html)
    return text


# --------------------------------------------------------------------------- invites


async def test_an_invite_is_emailed_in_words_and_its_page_makes_the_account(
    api: Api,
    worker: Worker,
    smtp: Mailbox,
) -> None:
    org = await api.org("Northshire Healthwatch")
    coord_user, coord = await coordinator(api, org)
    created = await api.invite(coord, "rose@example.org", "citizen_inspector")
    code = created["code"]
    assert created["link"] == f"{BASE}/invites/{code}"

    report = await worker.deliver()
    assert report.delivered == 1
    [msg] = smtp.parsed()
    assert msg["To"] == "rose@example.org"
    assert msg["Subject"] == "Priya Shah invited you to join Northshire Healthwatch"
    body = msg.get_content()
    assert link_in(body, "/invites/") == created["link"]
    assert code not in msg["Subject"]
    words = " ".join(body.split())
    assert (
        "Priya Shah has invited you to join Northshire Healthwatch on Co-assessment, "
        "as a citizen inspector." in words
    )
    assert "visit services with the team and give the view of people who use them" in words
    assert "sign in on the Co-assessment app on your phone" in words
    assert re.search(r"The link works once, until \d{1,2} \w+ 20\d\d at \d\d:\d\d", words)
    assert "ask Priya Shah to send you a new invite" in words
    # Nothing secret where coordinators can read it.
    listed = (await api.client.get("/v1/notifications", headers=coord)).json()
    assert code not in str(listed)

    # The page: who, where, as what.
    page_url = urlsplit(created["link"]).path
    r_page = await api.client.get(page_url)
    text = assert_page(r_page, 200)
    assert "Join Northshire Healthwatch" in text
    assert "Priya Shah has invited you to join Northshire Healthwatch" in text
    assert "<dt>You will join as</dt><dd>citizen inspector</dd>" in r_page.text
    assert "rose@example.org" in text

    # Another site's page cannot post it.
    form = {"display_name": "Rose", "password": PASSWORD}
    r = await form_post(api.client, page_url, data=form, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "another website" in r.text

    # Mistakes come back in words, each linked to its field.
    r = await form_post(api.client, page_url, data={"display_name": " ", "password": "short"})
    text = assert_page(r, 422)
    assert "<title>Error: Join Northshire Healthwatch" in r.text
    assert "There is a problem" in text
    assert '<a href="#display_name">Enter your name, as others will see it.</a>' in r.text
    assert '<a href="#password">Your password must be at least 15 characters.' in r.text
    assert re.search(
        r'<input id="password"[^>]*aria-describedby="password-hint password-error"'
        r'[^>]*aria-invalid="true"',
        r.text,
    )
    assert (
        await api.conn.fetchval("select count(*) from users where email = 'rose@example.org'") == 0
    )

    r = await form_post(api.client, page_url, data=form)
    text = assert_page(r, 200)
    assert "You're in, Rose" in text
    assert "Open the Co-assessment app on your phone and sign in with rose@example.org" in text
    assert '<a href="/signin">Sign in</a>' in r.text

    # The same domain function as the phone app's: the code is spent for both.
    r = await api.client.post(f"/v1/invites/{code}/accept", json=form)
    assert_problem(r, 410, "invite-used")
    text = assert_page(await api.client.get(page_url), 410)
    assert "This invite has already been used" in text
    r = await form_post(api.client, page_url, data=form)
    assert r.status_code == 410
    assert (
        await api.conn.fetchval("select count(*) from users where email = 'rose@example.org'") == 1
    )

    r = await post_token(api.client, "rose@example.org")
    assert r.status_code == 200, r.text
    audit = (await api.client.get("/v1/audit?action=invite.create", headers=coord)).json()["items"]
    assert audit[0]["summary"]["emailed"] is True and audit[0]["actor_id"] == coord_user["id"]
    # The stylesheet the page links is served, public and typed.
    css = await api.client.get("/static/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"
    assert ".error-summary" in css.text


async def test_coordinators_list_and_resend_invites_without_showing_the_code(
    api: Api,
    worker: Worker,
    smtp: Mailbox,
    app_logs: pytest.LogCaptureFixture,
) -> None:
    org, other = await api.org(), await api.org("Southshire Council")
    _, coord = await coordinator(api, org)
    first = await api.invite(coord, "sam@example.org", "scrutiny_member", "service_manager")
    await worker.deliver()

    r = await api.client.get("/v1/invites", headers=coord)
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["id"] == first["id"] and item["status"] == "open" and item["sent_count"] == 1
    assert "code" not in item and first["code"] not in r.text

    r = await api.client.post(f"/v1/invites/{first['id']}/resend", headers=coord)
    assert r.status_code == 200, r.text
    assert r.json()["sent_count"] == 2 and first["code"] not in r.text and "code" not in r.json()
    await worker.deliver()
    old_mail, new_mail = smtp.parsed()
    assert old_mail["Subject"] == new_mail["Subject"]
    assert "as a scrutiny committee member and service manager" in " ".join(
        new_mail.get_content().split()
    )
    assert "sign in on the website" in new_mail.get_content()
    new_link = link_in(new_mail.get_content(), "/invites/")
    assert new_link != first["link"]
    # The earlier link stops working, and says what to do.
    text = assert_page(await api.client.get(urlsplit(first["link"]).path), 404)
    assert "use the link in the latest email" in text
    assert_page(await api.client.get(urlsplit(new_link).path), 200)
    new_code = new_link.rsplit("/", 1)[1]

    # No code reaches a log, not even the request log of the page's own path.
    # (The test client's own httpx log of the URL it asked for is the browser's side.)
    server = [r for r in app_logs.records if not r.name.startswith(("httpx", "httpcore"))]
    assert "/invites/***" in [r.__dict__.get("path") for r in server]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server)
    assert first["code"] not in logged and new_code not in logged

    # Only its own organisation's coordinators.
    citizen = await api.login(await api.user(org, "citizen_inspector"))
    assert_problem(await api.client.get("/v1/invites", headers=citizen), 403)
    assert_problem(await api.client.post(f"/v1/invites/{first['id']}/resend", headers=citizen), 403)
    _, stranger = await coordinator(api, other)
    r = await api.client.post(f"/v1/invites/{first['id']}/resend", headers=stranger)
    assert_problem(r, 404, "not-found")
    assert (await api.client.get("/v1/invites?status=all", headers=stranger)).json()["items"] == []

    # Accepted: nothing to resend. Expired: invite again.
    r = await api.client.post(
        f"/v1/invites/{new_code}/accept", json={"display_name": "Sam", "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    assert_problem(
        await api.client.post(f"/v1/invites/{first['id']}/resend", headers=coord),
        409,
        "invite-accepted",
    )
    late = await api.invite(coord, "late@example.org", "citizen_inspector")
    await api.conn.execute(
        "update invites set expires_at = now() - interval '1 minute' where id = $1", late["id"]
    )
    assert_problem(
        await api.client.post(f"/v1/invites/{late['id']}/resend", headers=coord),
        410,
        "invite-expired",
    )
    statuses = {
        i["email"]: i["status"]
        for i in (await api.client.get("/v1/invites?status=all", headers=coord)).json()["items"]
    }
    assert statuses == {"sam@example.org": "accepted", "late@example.org": "expired"}
    assert (await api.client.get("/v1/invites", headers=coord)).json()["items"] == []
    actions = [
        e["action"] for e in (await api.client.get("/v1/audit", headers=coord)).json()["items"]
    ]
    assert actions.count("invite.resend") == 1 and actions.count("invite.create") == 2


async def test_expired_and_unknown_invite_pages_say_what_to_do(api: Api) -> None:
    org = await api.org("<b>Bold</b> & Co")
    _, coord = await coordinator(api, org)
    created = await api.invite(coord, "x@example.org", "citizen_inspector")
    r = await api.client.get(f"/invites/{created['code']}")
    # Names are escaped (autoescape is on).
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in r.text and "<b>Bold" not in r.text
    await api.conn.execute("update invites set expires_at = now() - interval '1 minute'")
    text = assert_page(await api.client.get(f"/invites/{created['code']}"), 410)
    assert "This invite has expired" in text
    assert "Ask your coordinator to send you a new invite." in text
    r = await form_post(
        api.client,
        f"/invites/{created['code']}",
        data={"display_name": "X", "password": "long enough"},
    )
    assert r.status_code == 410
    text = assert_page(await api.client.get("/invites/not-a-code"), 404)
    assert "This invite link does not work" in text


# --------------------------------------------------------------------------- passwords


async def test_forgotten_password_same_answer_single_use_and_signs_out_everywhere(
    api: Api,
    worker: Worker,
    smtp: Mailbox,
) -> None:
    org = await api.org("Northshire Healthwatch")
    _, coord = await coordinator(api, org)
    rose = await api.user(org, "citizen_inspector", email="rose@example.org", name="Rose")
    phone = await api.sign_in(rose, "phone")
    laptop = await api.sign_in(rose, "laptop")
    phone_auth = {"Authorization": f"Bearer {phone['access_token']}"}
    assert (await api.client.get("/v1/me", headers=phone_auth)).status_code == 200

    known = await api.client.post("/v1/auth/password-reset", json={"email": "Rose@Example.org"})
    unknown = await api.client.post("/v1/auth/password-reset", json={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 202
    assert (
        known.json() == unknown.json() and "If an account uses this email" in known.json()["detail"]
    )
    await worker.deliver()
    [msg] = smtp.parsed()  # and none to nobody@
    assert msg["To"] == "rose@example.org" and msg["Subject"] == "Reset your Co-assessment password"
    link = link_in(msg.get_content(), "/password/reset/")
    assert link.startswith(f"{BASE}/password/reset/")
    token = link.rsplit("/", 1)[1]
    words = " ".join(msg.get_content().split())
    assert "for 30 minutes" in words and "signs you out on every device" in words
    assert (
        await api.conn.fetchval(
            "select count(*) from outbox where recipient = 'nobody@example.org'"
        )
        == 0
    )
    assert (
        await api.conn.fetchval(
            "select count(*) from password_resets where token_hash = sha256($1::text::bytea)", token
        )
        == 1
    )

    # The page, then a mistake in words, then the new password.
    path = urlsplit(link).path
    text = assert_page(await api.client.get(path), 200)
    assert "Choose a new password" in text
    r = await form_post(api.client, path, data={"password": "short"})
    assert_page(r, 422)
    assert '<a href="#password">Your password must be at least 15 characters.' in r.text
    r = await form_post(api.client, path, data={"password": NEW_PASSWORD})
    text = assert_page(r, 200)
    assert "Your password has been changed" in text and "(2 in all)" in text

    # Every device is out at once; the old password is gone; the new one works.
    assert_problem(await api.client.get("/v1/me", headers=phone_auth), 401)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": laptop["refresh_token"]})
    assert_problem(r, 401)
    old = {"email": rose["email"], "password": PASSWORD, "device": "phone"}
    assert_problem(await api.client.post("/v1/auth/token", json=old), 401)
    r = await api.client.post("/v1/auth/token", json={**old, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text

    # Single use, for the page and the API alike.
    text = assert_page(await api.client.get(path), 410)
    assert "This link has already been used" in text
    r = await api.client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "password": "another one here"}
    )
    assert_problem(r, 410, "reset-used")
    actions = [
        e["action"] for e in (await api.client.get("/v1/audit", headers=coord)).json()["items"]
    ]
    assert actions[:3] == ["auth.sign_in", "password.reset", "password.reset_requested"]

    # The JSON API: the token in the body; a newer request replaces an older link.
    await api.client.post("/v1/auth/password-reset", json={"email": rose["email"]})
    await api.client.post("/v1/auth/password-reset", json={"email": rose["email"]})
    await worker.deliver()
    older, newer = (
        link_in(m.get_content(), "/password/reset/").rsplit("/", 1)[1] for m in smtp.parsed()[1:]
    )
    confirm = "/v1/auth/password-reset/confirm"
    assert_problem(
        await api.client.post(confirm, json={"token": older, "password": "x" * 8}),
        410,
        "reset-used",
    )
    assert_problem(await api.client.post(confirm, json={"token": newer, "password": "short"}), 422)
    assert_problem(await api.client.post(confirm, json={"token": "nope", "password": "x" * 8}), 404)
    await api.conn.execute("update password_resets set expires_at = now() - interval '1 second'")
    assert_problem(
        await api.client.post(confirm, json={"token": newer, "password": "x" * 8}),
        410,
        "reset-expired",
    )
    text = assert_page(await api.client.get(f"/password/reset/{newer}"), 410)
    assert "This link has expired" in text and "Ask for a new link" in text
    await api.conn.execute("update password_resets set expires_at = now() + interval '5 minutes'")
    r = await api.client.post(confirm, json={"token": newer, "password": "the final password"})
    assert r.status_code == 200 and r.json()["devices_signed_out"] == 1, r.text


async def test_forgotten_password_is_rate_limited_per_email_and_per_address(
    database_url: str, seaweed: SeaweedFS
) -> None:
    limited = make_settings(
        database_url,
        seaweed,
        password_reset_per_email_per_hour=2,
        password_reset_per_address_per_hour=5,
    )
    async with AsyncTestClient(app=create_app(limited)) as c:
        ask = "/v1/auth/password-reset"
        for _ in range(2):
            assert (await c.post(ask, json={"email": "a@example.org"})).status_code == 202
        body = assert_problem(
            await c.post(ask, json={"email": "a@example.org"}), 429, "rate-limited"
        )
        assert "try again in" in body["detail"]
        r = await c.post(ask, json={"email": "a@example.org"})
        assert 0 < int(r.headers["retry-after"]) <= 3600
        # Other addresses until this client has asked 5 times in the hour.
        for email in ("b@example.org", "b@example.org", "c@example.org"):
            assert (await c.post(ask, json={"email": email})).status_code == 202
        assert_problem(await c.post(ask, json={"email": "d@example.org"}), 429, "rate-limited")
        # The page says it in words.
        r = await form_post(c, "/password/forgot", data={"email": "a@example.org"})
        text = assert_page(r, 429)
        assert "Too many requests" in text
        assert re.search(r"Please try again in \d+ minutes?\.", text), text
        assert int(r.headers["retry-after"]) > 0
        # Asking for the form is not a request.
        assert_page(await c.get("/password/forgot"), 200)
        r = await form_post(c, "/password/forgot", data={"email": "not an email"})
        assert "Enter your email address, like name@example.org." in assert_page(r, 422)


def test_request_log_masks_secrets_in_paths() -> None:
    uuid = "0b5f7c1e-1111-4222-8333-444455556666"
    assert mask_path("/invites/s3cret") == "/invites/***"
    assert mask_path("/password/reset/s3cret") == "/password/reset/***"
    assert mask_path("/v1/invites/s3cret/accept") == "/v1/invites/***/accept"
    assert mask_path(f"/v1/invites/{uuid}/resend") == f"/v1/invites/{uuid}/resend"
    assert mask_path("/password/forgot") == "/password/forgot"
    assert mask_path("/v1/invites") == "/v1/invites"


# --------------------------------------------------------------------------- a real browser


@pytest.fixture
def mail_server(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A real server whose emails link to itself (PUBLIC_BASE_URL is its own address)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # INFO: the request log, to check that no code or token reaches it.
    live = msgspec.structs.replace(settings, public_base_url=base, log_level="INFO")
    proc, started = start_live_server(live, tmp_path, port=port)
    assert started == base
    try:
        yield base, proc
    finally:
        stop_live_server(proc)


async def wait_for_mail(worker: Worker, smtp: Mailbox, count: int) -> None:
    """Deliver until ``count`` messages arrived (a condition; the deadline only ends a hang)."""
    deadline = time.monotonic() + 120
    while len(smtp.messages) < count:
        await worker.deliver()
        assert time.monotonic() < deadline, f"{len(smtp.messages)} of {count} emails arrived"


async def test_in_chromium_join_by_email_then_reset_a_forgotten_password(
    api: Api,
    worker: Worker,
    smtp: Mailbox,
    mail_server: tuple[str, Any],
    chromium: str,
) -> None:
    base, proc = mail_server
    org = await api.org("Northshire Healthwatch")
    coord_user = await api.user(org, "coordinator", name="Priya Shah")
    async with httpx.AsyncClient(base_url=base) as http:
        r = await post_token(http, coord_user["email"], device="laptop")
        coord = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = await http.post(
            "/v1/invites",
            json={"email": "cllr.jones@example.org", "roles": ["scrutiny_member"]},
            headers=coord,
        )
        assert r.status_code == 201, r.text
    await wait_for_mail(worker, smtp, 1)
    invite_link = link_in(smtp.parsed()[0].get_content(), "/invites/")
    assert invite_link.startswith(base + "/invites/")
    code = invite_link.rsplit("/", 1)[1]

    async with open_browser(chromium) as browser:
        page = await phone(browser)
        await page.goto(invite_link)
        await page.get_by_role("heading", level=1, name="Join Northshire Healthwatch").wait_for()
        assert "scrutiny committee member" in await page.locator("main").inner_text()
        # The stylesheet applied under style-src 'self' (the skip link is off-screen).
        assert (
            await page.locator("a.skip").evaluate("e => getComputedStyle(e).position") == "absolute"
        )
        await check_page(page, "invite page", "invite")

        await page.get_by_label("Your name").fill("Cllr Jones")
        await page.get_by_label("Choose a password").fill("short")
        await page.get_by_role("button", name="Create my account").click()
        await page.get_by_role("heading", name="There is a problem").wait_for()
        await axe_check(page, "invite page with errors")
        await page.get_by_role("link", name="Your password must be at least 15 characters.").click()
        assert await page.evaluate("document.activeElement.id") == "password"
        await page.get_by_label("Choose a password").fill("committee papers on tuesday")
        await page.get_by_role("button", name="Create my account").click()
        await page.get_by_role("heading", level=1, name="You're in, Cllr Jones").wait_for()
        await check_page(page, "you're in page", "invite-joined")

        await page.get_by_role("link", name="Sign in", exact=True).last.click()
        await page.wait_for_url(base + "/signin")
        await page.get_by_label("Email").fill("cllr.jones@example.org")
        await page.get_by_label("Password").fill("committee papers on tuesday")
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(base + "/")
        cookies = {c["name"] for c in await page.context.cookies()}
        assert "coassess_session" in cookies

        # The used link says so.
        page = await phone(browser)
        response = await page.goto(invite_link)
        assert response is not None and response.status == 410
        await page.get_by_role("heading", name="This invite has already been used").wait_for()
        await axe_check(page, "used invite page")

        # Forgotten password: the phone app stays signed in until the reset.
        async with httpx.AsyncClient(base_url=base) as http:
            r = await post_token(http, "cllr.jones@example.org", "committee papers on tuesday")
            app_tokens = r.json()
        await page.goto(base + "/signin")
        await page.get_by_role("link", name="Forgotten your password?").click()
        await page.wait_for_url(base + "/password/forgot")
        await axe_check(page, "forgotten password page")
        await page.get_by_label("Email address").fill("cllr.jones@example.org")
        await page.get_by_role("button", name="Email me a link").click()
        await page.get_by_role("heading", name="Check your email").wait_for()
        await axe_check(page, "check your email page")
        await wait_for_mail(worker, smtp, 2)
        reset_link = link_in(smtp.parsed()[1].get_content(), "/password/reset/")
        token = reset_link.rsplit("/", 1)[1]
        await page.goto(reset_link)
        await page.get_by_role("heading", name="Choose a new password").wait_for()
        await axe_check(page, "new password page")
        await page.get_by_label("New password").fill("a fresh start for jones")
        await page.get_by_role("button", name="Save my new password").click()
        await page.get_by_role("heading", name="Your password has been changed").wait_for()
        await check_page(page, "password changed page", "password-changed")
        response = await page.goto(reset_link)
        assert response is not None and response.status == 410
        await axe_check(page, "used reset link page")

    async with httpx.AsyncClient(base_url=base) as http:
        r = await post_token(http, "cllr.jones@example.org", "committee papers on tuesday")
        assert r.status_code == 401
        r = await post_token(http, "cllr.jones@example.org", "a fresh start for jones")
        assert r.status_code == 200
        # The phone's tokens stopped working: refresh and access alike.
        r = await http.post("/v1/auth/refresh", json={"refresh_token": app_tokens["refresh_token"]})
        assert r.status_code == 401
        r = await http.get(
            "/v1/me", headers={"Authorization": f"Bearer {app_tokens['access_token']}"}
        )
        assert r.status_code == 401

    stop_live_server(proc)
    log = proc.stderr.read().decode() if proc.stderr else ""
    assert '"path":"/invites/***"' in log and '"path":"/password/reset/***"' in log
    assert code not in log and token not in log
