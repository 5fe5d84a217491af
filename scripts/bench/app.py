"""The inspector's app against its budget (see bench_app): the shell's compressed size, its
first load under Chromium's "Slow 3G" and answering a 30-question checklist with the CPU
throttled 4x.

Starts a throwaway PostgreSQL + SeaweedFS and the real app under granian (or uses --url
and --dsn), seeds a care home with the starter care-home checklist (30 questions) and a
visit happening now, and drives Debian's Chromium with Playwright at 390x844:

- shell: every file the service worker precaches, fetched as a phone does (gzip), summed;
- first load: a fresh browser profile, network emulated through CDP
  (Network.emulateNetworkConditions with DevTools' Slow 3G preset: 2,000 ms latency,
  50,000 B/s each way), from navigation to the sign-in screen drawn (the app's
  ``app-ready`` performance mark) and to the load event;
- answering: signed in, the visit made ready, CPU throttled 4x
  (Emulation.setCPUThrottlingRate), each of the 30 answers given by a click: the time from
  the click to the next frame (what the inspector sees) and to the answer being stored on
  the phone (IndexedDB), and each section's drawing.

    scripts/bench_app
    scripts/bench_app --cpu 6 --runs 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import uuid
from typing import Any

import asyncpg
import httpx

from scripts.bench import harness
from scripts.bench.harness import PASSWORD, STARTERS, Target, add_stack_options, log, run_on_stack

SHELL_GOAL_KB = 150
LOAD_GOAL_S = 5.0
SLOW_3G = {  # Chrome DevTools' "Slow 3G" preset
    "offline": False,
    "latency": 2000,
    "downloadThroughput": 500 * 1000 / 8 * 0.8,
    "uploadThroughput": 500 * 1000 / 8 * 0.8,
}
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


async def seed(target: Target) -> tuple[str, str]:
    """A care home, the starter checklist, a cleared citizen and a visit; (email, visit)."""
    conn = await asyncpg.connect(target.dsn)
    run = uuid.uuid4().hex[:8]
    try:
        org = await harness.add_org(conn, f"Bench {run}")
        ids = {}
        for kind, roles in (("coord", ["coordinator"]), ("ann", ["citizen_inspector"])):
            email = f"{kind}.{run}@bench.example.org"
            ids[kind] = await harness.add_user(conn, org, email, kind.title(), roles)
        await harness.clear_to_inspect(conn, org, ids["ann"])
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=target.url, trust_env=False, timeout=60) as c:
        coord = await harness.sign_in(c, f"coord.{run}@bench.example.org")
        service_id = await harness.add_service(c, coord)
        starter = json.loads((STARTERS / "care_home_visit.json").read_text())
        checklist_id, _ = await harness.add_checklist(c, coord, starter)
        # Under way: started half an hour ago, for three and a half hours.
        started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
        team = [{"user_id": str(ids["ann"]), "perspective": "citizen", "lead": True}]
        visit_id = await harness.add_visit(c, coord, service_id, checklist_id, started, 3.5, team)
    return f"ann.{run}@bench.example.org", visit_id


async def shell_bytes(url: str) -> tuple[int, int, int]:
    """(files, bytes on the wire with gzip, bytes uncompressed) of the precached shell."""
    async with httpx.AsyncClient(base_url=url, trust_env=False) as c:
        sw = (await c.get("/app/sw.js")).text
        shell = json.loads(sw.split("const SHELL = ", 1)[1].split(";", 1)[0])
        wire = raw = 0
        for path in [*shell, "/app/sw.js"]:
            async with c.stream("GET", path, headers={"accept-encoding": "gzip"}) as r:
                body = await r.aread()
                wire += r.num_bytes_downloaded
                raw += len(body)
        return len(shell) + 1, wire, raw


READY_JS = """() => {
  const mark = performance.getEntriesByName("app-ready")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const start = performance.getEntriesByName("app-start")[0];
  return {ready: mark.startTime, load: nav.loadEventEnd, start: start.startTime};
}"""

# Click an answer, then wait for the next frame (what the inspector sees) and for the
# answer to be in IndexedDB (kept on the phone).
CLICK_JS = """async ([id, key, visit]) => {
  const t0 = performance.now();
  document.getElementById(id).click();
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r)));
  const painted = performance.now() - t0;
  const stored = () => new Promise((resolve) => {
    const open = indexedDB.open("inspector");
    open.onsuccess = () => {
      const get = open.result.transaction("drafts").objectStore("drafts").get(visit);
      get.onsuccess = () => { open.result.close(); resolve(Boolean(get.result?.answers?.[key])); };
    };
  });
  while (!(await stored())) await new Promise((r) => setTimeout(r, 0));
  return [painted, performance.now() - t0];
}"""


# "Next section", timed from the tap to the new section's heading on screen.
NEXT_JS = """async (title) => {
  const t0 = performance.now();
  document.querySelector("nav.pager a.primary").click();
  while (document.querySelector("h1")?.textContent !== title) {
    await new Promise((r) => requestAnimationFrame(r));
  }
  return performance.now() - t0;
}"""


async def first_load(browser: Any, url: str, verbose: bool) -> dict[str, float]:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    await cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    await page.goto(url + "/app/", wait_until="load", timeout=120_000)
    await page.wait_for_function("document.documentElement.dataset.ready === 'true'")
    out = await page.evaluate(READY_JS)
    if verbose:
        for e in await page.evaluate(
            "performance.getEntriesByType('resource')"
            ".map(e => [e.name, e.startTime, e.responseEnd])"
        ):
            log(f"  {e[0]}: {e[1]:.0f} -> {e[2]:.0f} ms")
        log(f"  {out}")
    await context.close()
    return out


async def answering(browser: Any, url: str, email: str, visit: str, cpu: float) -> Any:
    starter = json.loads((STARTERS / "care_home_visit.json").read_text())
    context = await browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True)
    page = await context.new_page()
    await page.goto(url + "/app/")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Make ready offline").click()
    await page.get_by_role("heading", level=1, name="Elm House").wait_for()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu})
    painted, stored, sections = [], [], []
    for n, section in enumerate(starter["content"]["sections"], 1):
        if n == 1:
            await page.goto(f"{url}/app/visits/{visit}/sections/1")
            await page.get_by_role("heading", level=1, name=section["title"]).wait_for()
        else:
            sections.append(await page.evaluate(NEXT_JS, section["title"]))
        for q in section["questions"]:
            key = q["key"]
            if q["type"] in ("number", "text"):
                # Typed answers: the same input event a keyboard sends, timed the same way.
                box = f"q-{key}-value"
                await page.evaluate(
                    """(id) => { const el = document.getElementById(id);
                       el.value = el.tagName === 'TEXTAREA' ? 'Fine.' : '3'; }""",
                    box,
                )
                timing = await page.evaluate(
                    CLICK_JS.replace(
                        "document.getElementById(id).click();",
                        "document.getElementById(id).dispatchEvent(new Event('input'));",
                    ),
                    [box, key, visit],
                )
            else:
                timing = await page.evaluate(CLICK_JS, [f"q-{key}-0", key, visit])
            painted.append(timing[0])
            stored.append(timing[1])
    await context.close()
    return painted, stored, sections


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"median {statistics.median(values):.0f} ms, p95 {p95:.0f} ms, max {values[-1]:.0f} ms"


async def bench(args: argparse.Namespace, target: Target) -> int:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        log("Debian's chromium is needed: apt-get install chromium")
        return 2
    email, visit = await seed(target)
    files, wire, raw = await shell_bytes(target.url)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            loads = [await first_load(browser, target.url, args.verbose) for _ in range(args.runs)]
            painted, stored, sections = await answering(browser, target.url, email, visit, args.cpu)
        finally:
            await browser.close()
    ready = statistics.median(x["ready"] for x in loads) / 1000
    load = statistics.median(x["load"] for x in loads) / 1000
    ok_size = wire / 1000 < SHELL_GOAL_KB
    ok_load = ready < LOAD_GOAL_S
    print("The inspector's app (/app/), headless Chromium at 390x844")
    print(
        f"shell: {files} files, {wire / 1000:.1f} KB compressed on the wire "
        f"({raw / 1000:.1f} KB uncompressed); goal < {SHELL_GOAL_KB} KB: "
        f"{'met' if ok_size else 'MISSED'}"
    )
    print(
        f"first load on Slow 3G (2,000 ms latency, 400 kbit/s), median of {args.runs}: "
        f"sign-in screen drawn {ready:.2f} s, load event {load:.2f} s; "
        f"goal < {LOAD_GOAL_S:.0f} s: {'met' if ok_load else 'MISSED'}"
    )
    print(
        "  each run (drawn / load event, s): "
        + ", ".join(f"{x['ready'] / 1000:.2f}/{x['load'] / 1000:.2f}" for x in loads)
    )
    print(f"answering 30 questions, CPU throttled {args.cpu:g}x:")
    print(f"  click to next frame:      {ms(painted)}")
    print(f"  click to stored on phone: {ms(stored)}")
    print(f"  next section drawn:       {ms(sections)}")
    return 0 if ok_size and ok_load else 1


def main() -> int:
    p = argparse.ArgumentParser(
        prog="scripts/bench_app", description=(__doc__ or "").split("\n\n")[0]
    )
    p.add_argument("--url", help="an existing server (with --dsn): nothing is started")
    p.add_argument("--dsn", help="its database, to seed people")
    p.add_argument("--cpu", type=float, default=4.0, help="CPU throttling rate (default 4)")
    p.add_argument("--runs", type=int, default=3, help="first loads to take the median of")
    p.add_argument("--verbose", action="store_true", help="each first load's requests")
    add_stack_options(p)
    args = p.parse_args()
    return run_on_stack(args, "bench-app-", bench)


if __name__ == "__main__":
    sys.exit(main())
