"""What every browser test of a page shares: axe, the width check, signing in, screenshots.

Use with the ``chromium`` fixture and a live server (``base_url``, ``live_server`` or
``start_live_server``)::

    async with browser(chromium) as b:
        page = await phone(b)                 # 390 x 844, touch
        await sign_in(page, base_url, user["email"])
        await page.goto(base_url + "/people")
        # axe: 0 serious/critical; no sideways scroll; $SCREENSHOTS_DIR/people-list.png
        await check_page(page, "people list", "people-list")
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.conftest import CHROMIUM_FLAGS
from tests.helpers import PASSWORD

# Where screenshots go: a temporary folder, so a test run never changes the checkout;
# `SCREENSHOTS_DIR=docs/screenshots scripts/test ...` refreshes the ones in the docs.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "screenshots")
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
PHONE = {"width": 390, "height": 844}
# How long one browser step may wait for what it needs: a bound for a busy CI machine, not
# a duration a test asserts (Playwright's 30 s default failed steps that only waited for CPU).
STEP_BOUND_MS = 180_000
DESKTOP = {"width": 1280, "height": 900}


@asynccontextmanager
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        new_context, new_page = b.new_context, b.new_page

        async def bounded_context(**kw: Any) -> Any:
            ctx = await new_context(**kw)
            ctx.set_default_timeout(STEP_BOUND_MS)
            ctx.set_default_navigation_timeout(STEP_BOUND_MS)
            return ctx

        async def bounded_page(**kw: Any) -> Any:
            page = await new_page(**kw)
            page.set_default_timeout(STEP_BOUND_MS)
            page.set_default_navigation_timeout(STEP_BOUND_MS)
            return page

        b.new_context, b.new_page = bounded_context, bounded_page
        try:
            yield b
        finally:
            await b.close()


async def phone(b: Any) -> Any:
    """A new page in a phone-sized context (its own cookies)."""
    ctx = await b.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    return await ctx.new_page()


async def desktop(b: Any) -> Any:
    ctx = await b.new_context(viewport=DESKTOP)
    return await ctx.new_page()


async def sign_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the sign-in form, as a person does; lands on the home page."""
    await page.goto(base + "/signin")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(base + "/")


async def tab_to(page: Any, test: str, presses: int = 200) -> None:
    """Press Tab, as a keyboard user does, until the focused element passes ``test`` (a JS
    function of it, like ``el => el.id === 'reason'``); they must see where they are."""
    for _ in range(presses):  # a bound on presses, not on time: a missing target fails
        await page.keyboard.press("Tab")
        if await page.evaluate(f"({test})(document.activeElement)"):
            outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", test
            return
    raise AssertionError(f"no focusable element passes {test}")


async def activate(page: Any, test: str, key: str = "Enter") -> None:
    """Tab to the element passing ``test`` (see tab_to) and press ``key`` on it, as a
    keyboard user follows a link, presses a button or ticks a box."""
    await tab_to(page, test)
    await page.keyboard.press(key)


async def axe_check(page: Any, what: str) -> None:
    """axe-core finds no serious or critical violation on this page."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{what}: {bad}"


async def fits(page: Any, what: str) -> None:
    """No horizontal scrolling at this width."""
    width = await page.evaluate("window.innerWidth")
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{what}: {scroll}px wide in a {width}px window"


async def check_page(page: Any, what: str, shot: str | None = None) -> None:
    """The page fits its width and axe finds nothing serious on it; with ``shot``, it is
    also kept as a screenshot of that name (see shoot)."""
    await fits(page, what)
    await axe_check(page, what)
    if shot:
        await shoot(page, shot)


async def shoot(page: Any, name: str) -> Path:
    """A full-page screenshot, <name>.png in SCREENSHOTS (docs/screenshots when asked)."""
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    return path
