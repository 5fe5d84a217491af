"""The Webhooks screen (/webhooks): list, add, deactivate and rotate a secret, refused and
audited exactly as the JSON API refuses and audits; a secret is shown once, on a page no
cache keeps. In Chromium at 390 and 1280 px (axe, screenshots webhooks-*.png)."""

from __future__ import annotations

import json
import re
import socket
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
import pytest

from inspections.notifications import addresses
from inspections.notifications.webhook_secrets import unseal
from service.settings import Settings
from tests.browser import browser, check_page, desktop, phone, sign_in
from tests.conftest import start_live_server, stop_live_server
from tests.helpers import Api, assert_problem, browser_as, form_post, text_of

PUBLIC_HOST = "hooks.example.org"
HOOK = f"https://{PUBLIC_HOST}/coassess"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own resolver (the suite has no DNS): the public host answers a public address,
    intranet.example.org a private one; an address literal answers itself."""
    table = {PUBLIC_HOST: "93.184.216.34", "intranet.example.org": "10.1.2.3"}

    async def lookup(host: str, port: int) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table.get(host, host), port))]

    monkeypatch.setattr(addresses, "lookup", lookup)


def _secret_of(html: str) -> str:
    found = set(SECRET.findall(html))
    assert len(found) == 1, found
    return found.pop()


async def _stored(api: Api, hook_id: str) -> Any:
    return await api.conn.fetchrow("select * from webhooks where id = $1", UUID(hook_id))


async def test_the_screen_refuses_whom_the_api_refuses(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    citizen = await api.user(org, "citizen_inspector")
    stranger = await api.user(await api.org("Southshire"), "coordinator")
    hook = await api.webhook(coord, HOOK, "report.published")
    before = await _stored(api, hook["id"])

    # Not a coordinator: the API's 403, in the API's words, on every screen of it.
    denied = assert_problem(
        await api.client.get("/v1/webhooks", headers=await api.login(citizen)), 403
    )
    await browser_as(api, citizen)
    assert "/webhooks" not in (await api.client.get("/")).text  # not in the menu
    r = await api.client.get("/webhooks")
    assert r.status_code == 403 and denied["detail"] in text_of(r.text)
    for path in ("/webhooks", f"/webhooks/{hook['id']}/rotate-secret"):
        r = await form_post(api.client, path, {"url": HOOK, "events": "report.published"})
        assert r.status_code == 403, path
    r = await form_post(api.client, f"/webhooks/{hook['id']}/deactivate")
    assert r.status_code == 403

    # Another organisation's coordinator: the webhook does not exist for them (404).
    other = await api.login(stranger)
    missing = assert_problem(
        await api.client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=other), 404
    )
    await browser_as(api, stranger)
    assert HOOK not in (await api.client.get("/webhooks")).text
    for action in ("rotate-secret", "deactivate"):
        r = await form_post(api.client, f"/webhooks/{hook['id']}/{action}")
        assert r.status_code == 404 and missing["detail"] in text_of(r.text), action
        assert not SECRET.search(r.text)

    # Nothing changed: the same secret, still active, and no audit line but its creation.
    after = await _stored(api, hook["id"])
    assert dict(after) == dict(before)
    actions = await api.conn.fetch("select action from audit_log where object_type = 'webhook'")
    assert [a["action"] for a in actions] == ["webhook.create"]


@pytest.mark.parametrize(
    "url",
    [
        f"http://{PUBLIC_HOST}/coassess",  # the rules of the address
        f"https://user:pass@{PUBLIC_HOST}/coassess",
        "https://intranet.example.org/hook",  # resolves inside a private network
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
    ],
)
async def test_a_refused_url_is_said_beside_the_field_as_the_api_says_it(
    api: Api, url: str
) -> None:
    org = await api.org()
    user = await api.user(org, "coordinator")
    body = assert_problem(
        await api.client.post(
            "/v1/webhooks",
            headers=await api.login(user),
            json={"url": url, "events": ["report.published"]},
        ),
        422,
    )
    reason = body["errors"][0]["reason"]

    await browser_as(api, user)
    r = await form_post(api.client, "/webhooks", {"url": url, "events": "response.overdue"})
    assert r.status_code == 422
    error = re.search(r'<p class="field-error" id="url-error">(.*?)</p>', r.text)
    assert error and reason in text_of(error.group(1)), r.text
    assert 'aria-invalid="true"' in r.text and 'aria-describedby="url-hint url-error"' in r.text
    assert f'<a href="#url">URL: {reason}</a>' in r.text.replace("&#39;", "'")
    # What was typed and chosen is kept; nothing was made, no secret shown.
    assert re.search(r'value="response.overdue" id="[^"]+" checked', r.text)
    assert not SECRET.search(r.text)
    assert await api.conn.fetchval("select count(*) from webhooks") == 0
    assert (
        await api.conn.fetchval("select count(*) from audit_log where object_type = 'webhook'") == 0
    )


async def test_no_event_chosen_is_said_and_nothing_is_made(api: Api) -> None:
    await browser_as(api, await api.user(await api.org(), "coordinator"))
    r = await form_post(api.client, "/webhooks", {"url": HOOK})
    assert r.status_code == 422
    assert '<a href="#events">Choose at least one event</a>' in r.text
    assert f'value="{HOOK}"' in r.text
    assert await api.conn.fetchval("select count(*) from webhooks") == 0


async def test_a_new_secret_is_shown_once_on_a_page_no_cache_keeps(
    api: Api, settings: Settings, app_logs: pytest.LogCaptureFixture
) -> None:
    org = await api.org()
    user = await api.user(org, "coordinator")
    await browser_as(api, user)
    assert '<a href="/webhooks">Webhooks</a>' in (await api.client.get("/")).text

    r = await form_post(
        api.client, "/webhooks", {"url": HOOK, "events": ["report.published", "response.overdue"]}
    )
    assert r.status_code == 200 and r.history == []  # answered in place: no URL carries it
    assert r.headers["cache-control"] == "no-store"
    secret = _secret_of(r.text)
    words = text_of(r.text)
    assert "Webhook added" in words and "shown only on this page, never again" in words
    assert "Report published, Response overdue" in words

    row = await api.conn.fetchrow("select * from webhooks")
    assert row is not None
    assert (row["url"], row["events"], row["active"]) == (
        HOOK,
        ["report.published", "response.overdue"],
        True,
    )
    assert unseal(settings, row["id"], row["secret_encrypted"]) == secret  # the one that signs
    audit = await api.conn.fetchrow("select * from audit_log where object_type = 'webhook'")
    assert audit is not None
    assert (audit["action"], audit["actor_id"], json.loads(audit["summary"])) == (
        "webhook.create",
        UUID(user["id"]),
        {"url": HOOK, "events": ["report.published", "response.overdue"]},
    )

    # Never again: not on the list, not in the API's list, in no log line.
    listed = await api.client.get("/webhooks")
    assert HOOK in listed.text and "Nothing sent to it yet." in text_of(listed.text)
    assert secret not in listed.text and not SECRET.search(listed.text)
    assert secret not in (await api.client.get("/v1/webhooks", headers=await api.login(user))).text
    assert app_logs.records and secret not in app_logs.text
    assert all(secret not in str(vars(rec)) for rec in app_logs.records)


async def test_rotation_through_the_screen_is_the_apis_rotation(
    api: Api, settings: Settings, app_logs: pytest.LogCaptureFixture
) -> None:
    org = await api.org()
    user = await api.user(org, "coordinator")
    coord = await api.login(user)
    by_api = await api.webhook(coord, f"https://{PUBLIC_HOST}/by-api", "report.published")
    by_screen = await api.webhook(coord, f"https://{PUBLIC_HOST}/by-screen", "report.published")
    r = await api.client.post(f"/v1/webhooks/{by_api['id']}/rotate-secret", headers=coord)
    assert r.status_code == 200, r.text

    await browser_as(api, user)
    r = await form_post(api.client, f"/webhooks/{by_screen['id']}/rotate-secret")
    assert r.status_code == 200 and r.history == []
    assert r.headers["cache-control"] == "no-store"
    new = _secret_of(r.text)
    assert new != by_screen["secret"]

    row = await _stored(api, by_screen["id"])
    assert unseal(settings, row["id"], row["secret_encrypted"]) == new
    assert unseal(settings, row["id"], row["previous_secret_encrypted"]) == by_screen["secret"]
    until = row["previous_secret_until"]
    overlap = (until - await api.conn.fetchval("select now()")).total_seconds()
    assert 0 < overlap <= settings.webhook_secret_overlap_s
    # The page says until when the old one works, as people read times here.
    london = until.astimezone(ZoneInfo(settings.site_timezone))
    shown = f"{london.day} {london:%B %Y} at {london:%H:%M %Z}"
    assert f"The old secret keeps working until {shown}" in text_of(r.text)

    # Audited as the API audits it: one line each, the same action, actor and summary.
    lines = {
        a["object_id"]: a
        for a in await api.conn.fetch(
            "select * from audit_log where action = 'webhook.rotate_secret'"
        )
    }
    api_line, screen_line = lines[by_api["id"]], lines[by_screen["id"]]
    assert len(lines) == 2
    for line in (api_line, screen_line):
        assert (line["organisation_id"], line["actor_id"], line["object_type"]) == (
            UUID(org),
            UUID(user["id"]),
            "webhook",
        )
        assert set(json.loads(line["summary"])) == {"previous_valid_until"}
    assert json.loads(screen_line["summary"])["previous_valid_until"] == until.isoformat()
    assert new not in str(screen_line["summary"])

    # The list says the previous secret still signs, and until when; never the secret.
    listed = await api.client.get("/webhooks")
    words = text_of(listed.text)
    assert f"The previous secret still signs deliveries, beside the new one, until {shown}" in words
    assert not SECRET.search(listed.text)
    api_list = (await api.client.get("/v1/webhooks", headers=coord)).json()["items"]
    assert {h["id"]: h["previous_secret_valid_until"] is not None for h in api_list} == {
        by_api["id"]: True,
        by_screen["id"]: True,
    }
    assert app_logs.records and new not in app_logs.text


async def test_deactivating_through_the_screen_stops_it_and_rotation_is_then_refused(
    api: Api,
) -> None:
    org = await api.org()
    user = await api.user(org, "coordinator")
    coord = await api.login(user)
    hook = await api.webhook(coord, HOOK, "report.published")
    await browser_as(api, user)

    r = await form_post(api.client, f"/webhooks/{hook['id']}/deactivate", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/webhooks?deactivated=1"
    assert (await _stored(api, hook["id"]))["active"] is False
    page = await api.client.get(r.headers["location"])
    words = text_of(page.text)
    assert "Webhook deactivated: nothing more is sent to it." in words
    assert "Deactivated: nothing is sent to it" in words
    assert f"/webhooks/{hook['id']}/rotate-secret" not in page.text  # no button for it

    # A posted rotation anyway: the API's 409, in its words; nothing rotated.
    refused = assert_problem(
        await api.client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=coord), 409
    )
    r = await form_post(api.client, f"/webhooks/{hook['id']}/rotate-secret")
    assert r.status_code == 409 and refused["detail"] in text_of(r.text)
    assert not SECRET.search(r.text)
    assert (await _stored(api, hook["id"]))["previous_secret_until"] is None
    actions = await api.conn.fetch(
        "select action from audit_log where object_type = 'webhook' order by id"
    )
    assert [a["action"] for a in actions] == ["webhook.create", "webhook.deactivate"]


async def test_the_list_shows_each_webhooks_last_notification(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "coordinator")
    coord = await api.login(user)
    failing = await api.webhook(coord, f"https://{PUBLIC_HOST}/failing", "report.published")
    working = await api.webhook(coord, f"https://{PUBLIC_HOST}/working", "report.published")
    # As the delivery worker leaves them: an older delivered row and a newer failed one for
    # the first webhook, one delivered for the second.
    for hook, error, failed in (
        (failing, None, False),
        (failing, "HTTP 500 from the receiver", True),
        (working, None, False),
    ):
        await api.conn.execute(
            """insert into outbox (organisation_id, event, event_key, channel, recipient,
                                   payload, attempts, delivered_at, failed_at, last_error)
               values ($1, 'report.published', $2, 'webhook', $3, '{}', $4,
                       case when $5 then null else now() end,
                       case when $5 then now() end, $6)""",
            org,
            f"report.published:{uuid.uuid4()}",
            hook["id"],
            3 if failed else 1,
            failed,
            error,
        )

    items = {
        h["id"]: h["last_notification"]
        for h in (await api.client.get("/v1/webhooks", headers=coord)).json()["items"]
    }
    assert (items[failing["id"]]["status"], items[failing["id"]]["last_error"]) == (
        "failed",
        "HTTP 500 from the receiver",
    )
    assert items[working["id"]]["status"] == "delivered"

    await browser_as(api, user)
    words = text_of((await api.client.get("/webhooks")).text)
    assert re.search(
        r"Last notification \(Report published\) failed on .+? after 3 tries: "
        r"HTTP 500 from the receiver\.",
        words,
    )
    assert re.search(r"Last notification \(Report published\) delivered on \d+ \w+ \d{4}", words)


async def test_in_chromium_a_coordinator_adds_rotates_and_deactivates_a_webhook(
    api: Api, settings: Settings, tmp_path: Path, chromium: str
) -> None:
    """Through the pages alone, at 1280 px then 390 px. The live server is another process
    (no resolver of ours there), so it may send to any address, as in local development."""
    proc, base = start_live_server(
        msgspec.structs.replace(settings, webhook_allow_private=True), tmp_path
    )
    try:
        org = await api.org()
        user = await api.user(org, "coordinator", name="Cora")
        async with browser(chromium) as b:
            wide = await desktop(b)
            await sign_in(wide, base, user["email"])
            await (
                wide.get_by_role("navigation", name="Main")
                .get_by_role("link", name="Webhooks")
                .click()
            )
            await wide.wait_for_url(base + "/webhooks")
            await check_page(wide, "no webhooks, 1280 px")

            # A plain-http address: refused beside the field, in the API's words.
            await wide.get_by_label("URL").fill(f"http://{PUBLIC_HOST}/coassess")
            await wide.get_by_label("Report published").check()
            await wide.get_by_role("button", name="Add the webhook").click()
            await wide.wait_for_selector("#url-error")
            assert "must use https (http only for localhost)" in (
                await wide.locator("#url-error").inner_text()
            )
            await check_page(wide, "refused URL, 1280 px", "webhooks-refused")

            await wide.get_by_label("URL").fill(HOOK)
            await wide.get_by_role("button", name="Add the webhook").click()
            await wide.get_by_role("heading", name="Webhook added").wait_for()
            secret = await wide.locator("#secret").inner_text()
            assert secret.startswith("whsec_") and secret not in wide.url
            await check_page(wide, "new secret, 1280 px", "webhooks-added")

            narrow = await phone(b)
            await sign_in(narrow, base, user["email"])
            await narrow.goto(base + "/webhooks")
            await narrow.get_by_role("button", name=f"Rotate secret of {HOOK}").click()
            await narrow.get_by_role("heading", name="New secret for this webhook").wait_for()
            new = await narrow.locator("#secret").inner_text()
            assert new.startswith("whsec_") and new != secret
            assert "The old secret keeps working until" in await narrow.inner_text("main")
            await check_page(narrow, "rotated secret, 390 px", "webhooks-rotated")

            await narrow.get_by_role("link", name="Back to webhooks").click()
            await narrow.wait_for_url(base + "/webhooks")
            listing = await narrow.inner_text("main")
            assert "The previous secret still signs deliveries" in listing
            assert secret not in listing and new not in listing
            await check_page(narrow, "webhooks list, 390 px", "webhooks-list")

            await wide.goto(base + "/webhooks")
            await check_page(wide, "webhooks list, 1280 px", "webhooks-list-desktop")
            await wide.get_by_role("button", name=f"Deactivate {HOOK}").click()
            await wide.wait_for_url(base + "/webhooks?deactivated=1")
            assert "Webhook deactivated" in await wide.get_by_role("status").inner_text()
            assert await wide.get_by_role("button", name=f"Rotate secret of {HOOK}").count() == 0
            await check_page(wide, "deactivated, 1280 px")
        assert (await api.conn.fetchval("select active from webhooks")) is False
    finally:
        stop_live_server(proc)
