"""Checklists for coordinators: the .xlsx export and import in the JSON API and on the
pages, each version as an inspector sees it (easy read a link away), small edits to a draft,
publish and retire; the same refusals as the API; and the whole task in Chromium."""

from __future__ import annotations

import io
import re
from pathlib import Path

import msgspec
from openpyxl import load_workbook

from inspections.checklists.schemas import ChecklistCreate
from inspections.checklists.spreadsheet import MEDIA_TYPE, read_checklist, write_checklist
from tests.browser import activate, browser, check_page, desktop, phone, sign_in, tab_to
from tests.helpers import Api, assert_problem, browser_as, form_post
from tests.scenes import SMALL, Scene, read

HTML = "text/html; charset=utf-8"


def broken(data: bytes) -> bytes:
    """``data`` with a weight of 0 and a rating label's value out of order."""
    wb = load_workbook(io.BytesIO(data))
    qs = wb["questions"]
    header = [c.value for c in qs[1]]
    qs.cell(row=2, column=header.index("weight") + 1, value=0)
    wb["options"].cell(row=3, column=2, value=7)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def test_the_api_exports_any_version_and_imports_a_workbook_as_a_draft(api: Api) -> None:
    s = await Scene(api).build()
    cid = s.checklist["id"]
    r = await api.client.get(f"/v1/checklists/{cid}/versions/1/export.xlsx", headers=s.coord)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MEDIA_TYPE
    assert r.headers["content-disposition"] == 'attachment; filename="quick-look-v1.xlsx"'
    exported = read_checklist(r.content)
    assert exported == msgspec.convert(SMALL, ChecklistCreate)
    # The draft (none now: the latest version) exports too.
    r = await api.client.get(f"/v1/checklists/{cid}/export.xlsx", headers=s.coord)
    assert read_checklist(r.content) == exported

    r = await api.client.post(
        "/v1/checklists/import",
        headers=s.coord,
        files={"file": ("walk.xlsx", write_checklist(exported), MEDIA_TYPE)},
    )
    assert r.status_code == 201, r.text
    draft = r.json()
    assert draft["has_draft"] and draft["latest_version"] == 0 and draft["id"] != cid
    assert (
        msgspec.convert(
            {k: draft[k] for k in ("title", "description", "service_kinds", "contributors")}
            | {"content": draft["content"]},
            ChecklistCreate,
        )
        == exported
    )

    r = await api.client.post(
        "/v1/checklists/import",
        headers=s.coord,
        files={"file": ("walk.xlsx", broken(write_checklist(exported)), MEDIA_TYPE)},
    )
    body = assert_problem(r, 422, "spreadsheet")
    assert [e["reason"] for e in body["errors"]] == [
        "Sheet 'questions', row 2, column 'weight': must be a number above 0 and at most 100",
        "Sheet 'options', row 3, column 'value': must be 2: a rating's labels go 1, 2, 3 ... "
        "lowest first",
    ]
    r = await api.client.post(
        "/v1/checklists/import",
        headers=s.coord,
        files={"file": ("notes.txt", b"not a workbook", "text/plain")},
    )
    assert assert_problem(r, 422)["errors"][0]["reason"] == (
        "Sheet '(file)': this is not an .xlsx workbook"
    )

    # The same refusals as every checklist route: a citizen 403, another organisation 404.
    citizen = await api.login(s.ann)
    r = await api.client.get(f"/v1/checklists/{cid}/versions/1/export.xlsx", headers=citizen)
    assert_problem(r, 403)
    r = await api.client.post(
        "/v1/checklists/import",
        headers=citizen,
        files={"file": ("walk.xlsx", write_checklist(exported), MEDIA_TYPE)},
    )
    assert_problem(r, 403)
    other = await api.login(await api.user(await api.org("Elsewhere"), "coordinator"))
    for path in (
        f"/v1/checklists/{cid}/versions/1/export.xlsx",
        f"/v1/checklists/{cid}/export.xlsx",
    ):
        assert_problem(await api.client.get(path, headers=other), 404)

    doc = (await api.client.get("/schema/openapi.json")).json()
    assert (
        MEDIA_TYPE
        in doc["paths"]["/v1/checklists/{checklist_id}/versions/{version}/export.xlsx"]["get"][
            "responses"
        ]["200"]["content"]
    )
    assert (
        "multipart/form-data"
        in doc["paths"]["/v1/checklists/import"]["post"]["requestBody"]["content"]
    )


async def test_each_checklist_screen_refuses_whom_the_api_refuses(api: Api) -> None:
    s = await Scene(api).build()
    cid = s.checklist["id"]
    reads = [
        "/checklists",
        f"/checklists/{cid}",
        f"/checklists/{cid}/versions/1",
        f"/checklists/{cid}/versions/1?text=easy",
        f"/checklists/{cid}/versions/1/export.xlsx",
        f"/checklists/{cid}/export.xlsx",
        f"/checklists/{cid}/draft",
    ]
    writes = ["/checklists/import", f"/checklists/{cid}/questions/respect"]
    posts = [f"/checklists/{cid}/publish", f"/checklists/{cid}/retire"]
    posts += [f"/checklists/{cid}/questions/respect", f"/checklists/{cid}/draft"]
    posts += ["/checklists/import"]

    # A citizen inspector: 403, as GET /v1/checklists gives.
    assert_problem(await api.client.get("/v1/checklists", headers=await api.login(s.ann)), 403)
    await browser_as(api, s.ann)
    for path in reads + writes:
        r = await api.client.get(path)
        assert r.status_code == 403 and r.headers["content-type"] == HTML, path
    for path in posts:
        assert (await form_post(api.client, path, {})).status_code == 403, path

    # A scrutiny member may read (as the API lets them) but not change anything.
    await browser_as(api, await api.user(s.org, "scrutiny_member"))
    assert (await api.client.get(f"/checklists/{cid}/versions/1")).status_code == 200
    for path in writes:
        assert (await api.client.get(path)).status_code == 403, path
    for path in posts:
        assert (await form_post(api.client, path, {})).status_code == 403, path

    # A coordinator of another organisation: 404, as the API gives them.
    other = await api.user(await api.org("Elsewhere"), "coordinator")
    assert_problem(
        await api.client.get(f"/v1/checklists/{cid}/versions/1", headers=await api.login(other)),
        404,
    )
    await browser_as(api, other)
    for path in reads[1:] + writes[1:]:
        r = await api.client.get(path)
        assert r.status_code == 404 and "No such checklist" in r.text, path
    for path in posts[:4]:
        r = await form_post(api.client, path, {"prompt": "x", "weight": "1"})
        assert r.status_code == 404, path
    # Their own list does not show it.
    assert "Quick look" not in (await api.client.get("/checklists")).text
    # Nothing changed.
    r = await api.client.get(f"/v1/checklists/{cid}", headers=s.coord)
    assert r.json()["retired"] is False and r.json()["has_draft"] is False


async def test_a_coordinator_views_edits_publishes_and_retires_through_the_pages(
    api: Api,
) -> None:
    s = await Scene(api).build()
    cid = s.checklist["id"]
    # An easy-read text on the question, through the API (the pages show what it stored).
    content = msgspec.convert(SMALL["content"], dict)
    content["sections"][0]["questions"][0]["easy_read"] = "Are people kind to you?"
    content["sections"][0]["questions"][0]["help"] = "Think of knocking before entering."
    r = await api.client.patch(f"/v1/checklists/{cid}", headers=s.coord, json={"content": content})
    assert r.status_code == 200
    await api.client.post(f"/v1/checklists/{cid}/publish", headers=s.coord)

    await browser_as(api, await api.user(s.org, "coordinator"))
    r = await api.client.get("/checklists")
    text, _ = read(r.text)
    assert "Quick look" in text and "Published: version 2" in text

    r = await api.client.get(f"/checklists/{cid}/versions/2")
    assert r.status_code == 200 and r.headers["content-type"] == HTML
    text, headings = read(r.text)
    assert ("h1", "Quick look, version 2") in headings and ("h2", "Dignity") in headings
    assert ("h3", "1. Are people treated with respect?") in headings
    assert ("h3", "2. Unpleasant smells?") in headings
    for words in (
        "1 · Poor",
        "4 · Great",
        "Help with this question",
        "Think of knocking before entering.",
        "Not applicable, or I could not see",
        "Rating · domain dignity · weight 1",
        "The good answer is no",
        "Show the easy-read text",
    ):
        assert words in text, words
    assert "Change question" not in text  # a published version is frozen
    r = await api.client.get(f"/checklists/{cid}/versions/2?text=easy")
    text, headings = read(r.text)
    assert ("h3", "1. Are people kind to you?") in headings
    assert ("h3", "2. Unpleasant smells?") in headings  # no easy-read text: the question
    assert "Show the full questions" in text

    r = await api.client.get(f"/checklists/{cid}/versions/2/export.xlsx")
    assert r.headers["content-type"] == MEDIA_TYPE
    assert read_checklist(r.content).content.sections[0].questions[0].easy_read == (
        "Are people kind to you?"
    )

    # A small edit: the wording and weight of one question. A mistake first, in words.
    path = f"/checklists/{cid}/questions/respect"
    r = await api.client.get(path)
    assert 'name="_csrf_token"' in r.text and "Are people treated with respect?" in r.text
    bad = {"prompt": "", "help": "", "easy_read": "", "weight": "0"}
    r = await form_post(api.client, path, bad)
    assert r.status_code == 422
    text, _ = read(r.text)
    assert "There is a problem" in text and "Enter question" in text
    r = await form_post(api.client, path, {**bad, "prompt": "Are residents respected?"})
    assert r.status_code == 422 and "Weight must be more than 0" in read(r.text)[0]
    edit = {
        "prompt": "Are residents treated with respect?",
        "help": "",
        "easy_read": "Are people kind?",
        "weight": "2.5",
    }
    r = await form_post(api.client, path, edit, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/checklists/{cid}/draft?saved=respect#q-respect"
    r = await api.client.get(r.headers["location"])
    text, headings = read(r.text)
    assert "Your change to question respect is saved in the draft." in text
    assert ("h3", "1. Are residents treated with respect?") in headings
    assert "weight 2.5" in text and "Think of knocking" not in text
    r = await api.client.get(f"/v1/checklists/{cid}", headers=s.coord)
    q = r.json()["content"]["sections"][0]["questions"][0]
    assert (q["prompt"], q["help"], q["easy_read"], q["weight"]) == (
        "Are residents treated with respect?",
        None,
        "Are people kind?",
        2.5,
    )

    # Publish: version 3, frozen; the checklist page says so.
    r = await form_post(api.client, f"/checklists/{cid}/publish", {}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/checklists/{cid}?published=3"
    text, _ = read((await api.client.get(r.headers["location"])).text)
    assert "Version 3 is published." in text and "Version 2, published" in text
    r = await api.client.get(f"/v1/checklists/{cid}/versions/3", headers=s.coord)
    assert r.json()["content"]["sections"][0]["questions"][0]["weight"] == 2.5
    # Publishing again: nothing to publish, the API's 409 and words, as a page.
    r = await form_post(api.client, f"/checklists/{cid}/publish", {})
    assert r.status_code == 409 and "There is no draft to publish" in r.text
    # A new draft from version 3, unchanged until edited.
    r = await form_post(api.client, f"/checklists/{cid}/draft", {}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/checklists/{cid}/draft"
    text, headings = read((await api.client.get(r.headers["location"])).text)
    assert ("h3", "1. Are residents treated with respect?") in headings
    assert "Change question 1" in text
    r = await api.client.get(f"/v1/checklists/{cid}", headers=s.coord)
    assert r.json()["has_draft"] and r.json()["latest_version"] == 3

    # Retire: the list hides it unless asked; editing is refused as the API refuses it.
    r = await form_post(api.client, f"/checklists/{cid}/retire", {}, follow_redirects=False)
    assert r.status_code == 303
    assert "Quick look" not in read((await api.client.get("/checklists")).text)[0]
    assert "Retired" in read((await api.client.get("/checklists?retired=true")).text)[0]
    r = await form_post(api.client, path, edit)
    assert r.status_code == 409 and "This checklist is retired" in r.text


async def test_a_workbook_is_imported_on_the_page_with_its_problems_listed(api: Api) -> None:
    s = await Scene(api).build()
    await browser_as(api, await api.user(s.org, "coordinator"))
    good = write_checklist(msgspec.convert(SMALL, ChecklistCreate))
    csrf = api.client.cookies["csrftoken"]
    r = await api.client.post(
        "/checklists/import",
        data={"_csrf_token": csrf},
        files={"file": ("walk.xlsx", broken(good), MEDIA_TYPE)},
    )
    assert r.status_code == 422 and r.headers["content-type"] == HTML
    text, _ = read(r.text)
    assert "The spreadsheet has 2 problems, listed below" in text
    assert (
        "Sheet 'questions', row 2, column 'weight': must be a number above 0 and at most 100"
        in text
    )
    assert "Nothing was imported." in text
    # Without the token (another site's form): refused, nothing imported.
    r = await api.client.post("/checklists/import", files={"file": ("walk.xlsx", good, MEDIA_TYPE)})
    assert r.status_code == 403
    r = await api.client.post(
        "/checklists/import",
        data={"_csrf_token": csrf},
        files={"file": ("walk.xlsx", good, MEDIA_TYPE)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    m = re.fullmatch(r"/checklists/([0-9a-f-]{36})/draft\?imported=1", r.headers["location"])
    assert m
    text, headings = read((await api.client.get(r.headers["location"])).text)
    assert "Imported as a new draft." in text and ("h1", "Quick look") in headings
    r = await api.client.get("/v1/checklists?limit=10", headers=s.coord)
    assert [c["has_draft"] for c in r.json()["items"]] == [False, True]


async def test_in_chromium_a_coordinator_imports_fixes_and_publishes_a_checklist(
    api: Api, base_url: str, chromium: str, tmp_path: Path
) -> None:
    org = await api.org("Healthwatch Northshire")
    coord = await api.user(org, "coordinator", name="Priya Shah")
    good = write_checklist(msgspec.convert(SMALL, ChecklistCreate))
    (tmp_path / "broken.xlsx").write_bytes(broken(good))
    (tmp_path / "quick-look.xlsx").write_bytes(good)

    async with browser(chromium) as b:
        page = await phone(b)
        await sign_in(page, base_url, coord["email"])
        await page.goto(base_url + "/checklists")
        await check_page(page, "checklists, none yet")
        await page.get_by_role("link", name="Import a checklist from a spreadsheet").click()
        await check_page(page, "import")
        await page.get_by_label("Spreadsheet (.xlsx)").set_input_files(tmp_path / "broken.xlsx")
        await page.get_by_role("button", name="Import as a draft").click()
        await page.get_by_role("heading", name="What to fix in the spreadsheet").wait_for()
        problems = await page.locator("ol.problems li").all_inner_texts()
        assert problems == [
            "Sheet 'questions', row 2, column 'weight': must be a number above 0 and at most 100",
            "Sheet 'options', row 3, column 'value': must be 2: a rating's labels go 1, 2, 3 "
            "... lowest first",
        ]
        await check_page(page, "import with problems", "checklists-import-problems")
        await page.get_by_label("Spreadsheet (.xlsx)").set_input_files(tmp_path / "quick-look.xlsx")
        await page.get_by_role("button", name="Import as a draft").click()
        await page.get_by_text("Imported as a new draft.").wait_for()
        await check_page(page, "draft preview", "checklists-draft")

        # By keyboard alone from here: change a wording, save, publish.
        await activate(page, "e => e.textContent.startsWith('Change question 1')")
        await page.get_by_role("heading", name="Change a question of Quick look").wait_for()
        await check_page(page, "question editor", "checklists-edit-question")
        await tab_to(page, "e => e.id === 'prompt'")
        await page.keyboard.press("Control+A")
        await page.keyboard.type("Are residents treated with respect and kindness?")
        await activate(page, "e => e.textContent === 'Save the change'")
        await page.get_by_text("Your change to question respect is saved").wait_for()
        heading = page.get_by_role("heading", name="1. Are residents treated with respect and")
        await heading.wait_for()
        await activate(page, "e => e.textContent === 'Back to the checklist'")
        await page.get_by_role("button", name="Publish version 1").wait_for()
        await check_page(page, "checklist with a draft", "checklists-checklist")
        await activate(page, "e => e.textContent === 'Publish version 1'")
        await page.get_by_text("Version 1 is published.").wait_for()
        await check_page(page, "published")

        await page.get_by_role("link", name="Version 1", exact=True).click()
        await page.get_by_role("link", name="Show the easy-read text").click()
        await page.get_by_role("link", name="Show the full questions").wait_for()
        await check_page(page, "version, easy read", "checklists-version-easy-read")

        wide = await desktop(b)
        await sign_in(wide, base_url, coord["email"])
        for path in ("/checklists", "/checklists/import"):
            await wide.goto(base_url + path)
            await check_page(wide, f"{path} at 1280")
        await wide.get_by_role("link", name="All checklists").click()
        await wide.get_by_role("link", name="Quick look").click()
        await check_page(wide, "checklist at 1280")
        await wide.get_by_role("link", name="Version 1", exact=True).click()
        await check_page(wide, "version at 1280", "checklists-version-desktop")
        await wide.get_by_role("link", name="Show the easy-read text").click()
        await check_page(wide, "version, easy read, at 1280")
        await wide.goto(wide.url.split("/versions/")[0] + "/questions/respect")
        await check_page(wide, "question editor at 1280")

    r = await api.client.get("/v1/checklists", headers=await api.login(coord))
    (item,) = r.json()["items"]
    assert item["latest_version"] == 1 and not item["has_draft"]
    r = await api.client.get(
        f"/v1/checklists/{item['id']}/versions/1", headers=await api.login(coord)
    )
    assert r.json()["content"]["sections"][0]["questions"][0]["prompt"] == (
        "Are residents treated with respect and kindness?"
    )
