"""/settings: a coordinator's organisation settings as forms, one per section, saved through
the same function, check and audit as the JSON PATCH routes; refused as the API refuses."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

from tests.browser import browser, check_page, desktop, phone, sign_in
from tests.helpers import Api, browser_as, form_post, text_of

RETENTION = "/v1/organisation/retention-settings"


def retention_form(**changes: Any) -> dict[str, Any]:
    """The retention section's form as the page sends it with its defaults (a ticked
    checkbox sends "true" before its hidden "false")."""
    form: dict[str, Any] = {
        "photo_originals_days": "90",
        "photo_derivatives_days": "2190",
        "submissions_days": "2190",
        "findings_days": "2190",
        "outbox_email_body_days": "1",
        "outbox_days": "90",
        "revoked_devices_days": "30",
        "signin_attempts_days": "1",
        "expired_invites_days": "90",
        "audit_days": "2190",
        "keep_erased_evidence": ["true", "false"],
    }
    return form | changes


def field_error(html: str, field_id: str) -> str:
    """The error shown beside the input ``field_id`` (its -error paragraph), in words."""
    m = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', html, re.S)
    assert m, f"no error beside {field_id}"
    return unescape(re.sub(r"<[^>]+>", "", m.group(1))).replace("Error:", "").strip()


async def audit_rows(api: Api, action: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await api.conn.fetch(
        "select actor_id, summary from audit_log where action = $1 order by id", action
    )
    return [(str(r["actor_id"]), json.loads(r["summary"])) for r in rows]


async def test_a_non_coordinator_is_refused_the_settings_page_as_the_api_refuses(
    api: Api,
) -> None:
    org = await api.org()
    for role in ("scrutiny_member", "citizen_inspector", "service_manager"):
        person = await api.user(org, role)
        r_api = await api.client.patch(
            RETENTION, headers=await api.login(person), json={"audit_days": 400}
        )
        assert r_api.status_code == 403
        await browser_as(api, person)
        r = await api.client.get("/settings")
        assert r.status_code == 403, role
        # The same reason as the API's, on an error page.
        assert unescape(r_api.json()["detail"]) in unescape(r.text)
        assert '<a href="/settings">' not in (await api.client.get("/")).text
        r = await form_post(api.client, "/settings/retention", retention_form(audit_days="400"))
        assert r.status_code == 403, role
    assert await api.conn.fetchval("select settings -> 'retention' from organisations") is None
    assert await audit_rows(api, "organisation.retention_settings") == []


async def test_the_settings_page_shows_every_section_with_its_limits_and_help(api: Api) -> None:
    org = await api.org()
    coord = await api.user(org, "coordinator")
    await browser_as(api, coord)
    home = await api.client.get("/")
    assert '<a href="/settings">Settings</a>' in home.text
    r = await api.client.get("/settings")
    assert r.status_code == 200
    words = text_of(r.text)
    for heading in (
        "How long data is kept",
        "Scorecards",
        "Findings and response deadlines",
        "Public profile",
    ):
        assert heading in words
    # Numbers with the limits of the API's Struct; help says what goes when.
    assert re.search(
        r'id="retention-photo_originals_days" name="photo_originals_days" type="number"'
        r'[^>]* min="1" max="36500" value="90"',
        r.text,
    )
    assert "photo's location and camera details are removed" in words
    assert re.search(
        r'id="scoring-citizen_weight"[^>]*step="any" min="0" max="1" value="0.5"', r.text
    )
    # A checkbox, ticked by default; a choice of jurisdictions; a list shown, not edited.
    assert re.search(r'id="retention-keep_erased_evidence"[^>]*value="true" checked', r.text)
    assert '<option value="scotland">Scotland</option>' in r.text
    assert "Band thresholds (percent): 39, 63, 88" in words
    assert 'name="band_thresholds"' not in r.text


async def test_a_coordinator_saves_a_section_audited_as_the_api_audits(api: Api) -> None:
    org = await api.org()
    coord = await api.user(org, "coordinator")
    headers = await api.login(coord)
    await browser_as(api, coord)

    r = await form_post(
        api.client,
        "/settings/retention",
        retention_form(photo_originals_days="30", keep_erased_evidence="false"),
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/settings?saved=retention#retention"
    page = await api.client.get(r.headers["location"])
    assert "Saved." in text_of(page.text)
    assert 'id="retention-photo_originals_days" name="photo_originals_days"' in page.text
    assert re.search(r'id="retention-photo_originals_days"[^>]*value="30"', page.text)
    assert not re.search(r'id="retention-keep_erased_evidence"[^>]*checked', page.text)
    # The API reads what the page saved.
    got = (await api.client.get(RETENTION, headers=headers)).json()
    assert got["photo_originals_days"] == 30 and got["keep_erased_evidence"] is False

    # The same change through the API: the same audit row (action, actor, what changed).
    r = await api.client.patch(
        RETENTION, headers=headers, json={"photo_originals_days": 30, "keep_erased_evidence": False}
    )
    assert r.status_code == 200
    page_row, api_row = await audit_rows(api, "organisation.retention_settings")
    assert (
        page_row
        == api_row
        == (
            coord["id"],
            {"photo_originals_days": 30, "keep_erased_evidence": False},
        )
    )

    # Another section: the public contact, cleared by emptying it.
    r = await form_post(api.client, "/settings/public", {"public_contact": "Freephone 0800 1"})
    assert r.status_code == 200 and "Saved." in text_of(r.text)
    r = await form_post(api.client, "/settings/public", {"public_contact": ""})
    assert r.status_code == 200
    profile = (await api.client.get("/v1/organisation/public-profile", headers=headers)).json()
    assert profile["public_contact"] is None
    assert [s for _, s in await audit_rows(api, "organisation.public_profile")] == [
        {"public_contact": "Freephone 0800 1"},
        {"public_contact": None},
    ]
    # Sending the form unchanged changes and audits nothing.
    r = await form_post(
        api.client,
        "/settings/findings",
        {
            "jurisdiction": "england-and-wales",
            "response_working_days": "20",
            "reminder_working_days": "5",
        },
    )
    assert "Nothing changed." in text_of(r.text)
    assert await audit_rows(api, "organisation.findings_settings") == []


async def test_a_bad_value_is_shown_beside_its_field_and_changes_nothing(api: Api) -> None:
    org = await api.org()
    coord = await api.user(org, "coordinator")
    await browser_as(api, coord)
    before = await api.conn.fetchval("select settings from organisations where id = $1", org)

    # Out of the Struct's range: said beside the field, in words, what was typed kept.
    r = await form_post(api.client, "/settings/retention", retention_form(audit_days="0"))
    assert r.status_code == 422
    assert field_error(r.text, "retention-audit_days") == "Audit log, days must be at least 1"
    assert '<a href="#retention-audit_days">' in r.text
    assert re.search(r'id="retention-audit_days"[^>]*value="0"[^>]*aria-invalid="true"', r.text)
    # Not a number, and emptied.
    r = await form_post(
        api.client,
        "/settings/scoring",
        {"citizen_weight": "half", "min_submissions": "3", "gap_threshold": "10"},
    )
    assert r.status_code == 422
    assert "must be a number" in field_error(r.text, "scoring-citizen_weight")
    r = await form_post(
        api.client,
        "/settings/scoring",
        {"citizen_weight": "0.5", "min_submissions": "", "gap_threshold": "10"},
    )
    assert r.status_code == 422
    assert field_error(r.text, "scoring-min_submissions") == (
        "Enter fewest submissions for a confident score"
    )
    # The section's own check (check_retention), beside the first field it names.
    r = await form_post(
        api.client, "/settings/retention", retention_form(photo_derivatives_days="30")
    )
    assert r.status_code == 422
    assert field_error(r.text, "retention-photo_derivatives_days") == (
        "“Photo copies shown on pages, days” must be at least “Original photos (with "
        "location), days”: the originals (with GPS) are deleted first."
    )
    # Nothing saved, nothing audited.
    after = await api.conn.fetchval("select settings from organisations where id = $1", org)
    assert after == before
    assert (
        await api.conn.fetchval("select count(*) from audit_log where action like 'organisation.%'")
        == 0
    )


async def test_in_chromium_a_coordinator_changes_the_retention_schedule(
    api: Api, base_url: str, chromium: str
) -> None:
    org = await api.org()
    coord = await api.user(org, "coordinator")
    async with browser(chromium) as b:
        wide = await desktop(b)
        await sign_in(wide, base_url, coord["email"])
        await (
            wide.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
        )
        await wide.wait_for_url(f"{base_url}/settings")
        await check_page(wide, "settings, 1280 px", "settings")

        narrow = await phone(b)
        await sign_in(narrow, base_url, coord["email"])
        await narrow.goto(f"{base_url}/settings")
        await check_page(narrow, "settings, 390 px")
        # A derivative kept for less time than its original: refused beside the field.
        copies = narrow.get_by_label("Photo copies shown on pages, days")
        await copies.fill("30")
        await narrow.get_by_role("button", name="Save how long data is kept").click()
        await narrow.wait_for_selector("#retention-photo_derivatives_days-error")
        assert await copies.get_attribute("aria-invalid") == "true"
        assert "must be at least" in await narrow.get_by_role("alert").inner_text()
        await check_page(narrow, "settings refused, 390 px", "settings-refused")

        await copies.fill("1000")
        await narrow.get_by_label("Keep an erased person's photos as evidence").uncheck()
        await narrow.get_by_role("button", name="Save how long data is kept").click()
        await narrow.wait_for_url(f"{base_url}/settings?saved=retention#retention")
        assert "Saved." in await narrow.get_by_role("status").inner_text()
        assert await narrow.get_by_label("Photo copies shown on pages, days").input_value() == (
            "1000"
        )
    saved = await api.conn.fetchval("select settings -> 'retention' from organisations")
    saved = json.loads(saved)
    assert (saved["photo_derivatives_days"], saved["keep_erased_evidence"]) == (1000, False)
