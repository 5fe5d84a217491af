"""In Chromium, through the pages alone: a coordinator opens a volunteer's data page from
their page, downloads everything held about her, then erases her; the page passes axe at
390 and 1280 px (screenshots in docs/screenshots/)."""

from __future__ import annotations

import json
import zipfile

from tests.browser import browser, check_page, desktop, phone, sign_in
from tests.helpers import Api
from tests.scenes import Scene


async def test_in_chromium_a_coordinator_downloads_then_erases_a_volunteers_data(
    api: Api, base_url: str, chromium: str
) -> None:
    s = await Scene(api).build()
    coord = await api.user(s.org, "coordinator", name="Cora")
    async with browser(chromium) as b:
        wide = await desktop(b)
        await sign_in(wide, base_url, coord["email"])
        await wide.goto(f"{base_url}/people/{s.ann['id']}")
        await wide.get_by_role("link", name="Data held about Ann").click()
        await wide.wait_for_url(f"{base_url}/people/{s.ann['id']}/data")
        await check_page(wide, "person's data, 1280 px", "people-data")

        async with wide.expect_download() as got:
            await wide.get_by_role("button", name="Download their data (.zip)").click()
        download = await got.value
        z = zipfile.ZipFile(await download.path())
        assert json.loads(z.read("person.json"))["person"]["email"] == s.ann["email"]

        narrow = await phone(b)
        await sign_in(narrow, base_url, coord["email"])
        await narrow.goto(f"{base_url}/people/{s.ann['id']}/data")
        await check_page(narrow, "person's data, 390 px")
        await narrow.get_by_label("Type ERASE to confirm").fill("ERASE")
        await narrow.get_by_role("button", name="Erase this person").click()
        await narrow.wait_for_url(f"{base_url}/people/{s.ann['id']}/data?erased=1")
        status = narrow.get_by_role("status")
        assert "Erased" in await status.inner_text()
        heading = await narrow.get_by_role("heading", level=1).inner_text()
        assert heading == "Data held about A citizen inspector"
        await check_page(narrow, "erased person's data, 390 px", "people-data-erased")
