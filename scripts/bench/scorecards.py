"""Scorecards against a large organisation, and their bare-SQL floors (see bench_scorecards).

Starts a throwaway PostgreSQL + SeaweedFS in a temp dir and the real app under granian with
ONE worker (the stack of scripts/bench_bundle), loads "Bulk County Council" with
scripts/seed_bulk's code (1,000 services, 20,000 visits over 3 years, ~1M answers), signs
in as its scrutiny member and measures, one request at a time (latency, not throughput):

  (a) GET /v1/services/{id}/scorecard (default period: the last 12 months) cycling over a
      random sample of the services with visits in that period, so sizes are the
      organisation's own mix;
  (b) GET /v1/scorecards?kind=K for the kind with the most scores in the period;
  (c) the floors: the same aggregate queries those endpoints run (SCORES_SQL + QUESTIONS_SQL
      + AGREEMENT_SQL for the same services and periods; LEAGUE_SQL for the kind), imported from
      inspections/scorecards/routes.py and executed with asyncpg from this process, rows
      fetched, nothing computed; and, for reference, PostgreSQL's own execution time of that
      SQL (EXPLAIN ANALYZE), so that row transfer and decoding show as the difference;

then prints one table, the ratios endpoint/floor and PASS/FAIL against the goals, and tears
everything down (also on Ctrl-C, SIGTERM or an error). Goals: scorecard p95 <= 50 ms,
league table p95 <= 300 ms, each p95 within 3x its floor's p95. Exit status: 0 all pass,
2 a goal failed, 1 errors.

    scripts/bench_scorecards                       # defaults: 15 s per scenario, seed 1
    scripts/bench_scorecards --seconds 5 --explain # plus EXPLAIN ANALYZE of the three queries
    scripts/bench_scorecards --py-spy /tmp/pyspy/bin/py-spy  # plus where the server's time goes
    scripts/bench_scorecards --url http://127.0.0.1:8000 --dsn postgresql://...  # existing
        # server (seeds its database first unless Bulk County Council is already there)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from inspections.scorecards.routes import (
    AGREEMENT_SQL,
    FINAL_ANSWERS,
    LEAGUE_SQL,
    QUESTIONS_SQL,
    SCORES_SQL,
)
from scripts.bench import harness as bl
from scripts.bench import seed_bulk as sb

CARD_FLOOR = "SCORES_SQL + QUESTIONS_SQL + AGREEMENT_SQL"


def card_queries(
    sid: uuid.UUID, start: dt.datetime, end: dt.datetime, prev: dt.datetime
) -> list[tuple[str, str, tuple[Any, ...]]]:
    """The statements one scorecard request runs on its data, with their parameters."""
    return [
        ("SCORES_SQL", SCORES_SQL, (sid, start, prev, end)),
        ("QUESTIONS_SQL", QUESTIONS_SQL, (sid, start, end)),
        ("AGREEMENT_SQL", AGREEMENT_SQL, (sid, start, end)),
    ]


SCORECARD_P95_GOAL_MS = 50.0
LEAGUE_GOAL_MS = 300.0
FLOOR_RATIO_GOAL = 3.0
PERIOD = dt.timedelta(days=365)  # the endpoints' default period
log = bl.log


@dataclass
class Scene:
    org: uuid.UUID
    auth: dict[str, str]
    sample: list[uuid.UUID]  # services for (a), in the order they are cycled
    largest: list[uuid.UUID]  # the services with the most rows (context)
    kind: str
    kind_services: int
    sizes: dict[str, list[int]] = field(default_factory=dict)  # per sampled service
    scorecard_bytes: list[int] = field(default_factory=list)
    league_bytes: int = 0
    league_items: int = 0
    seed_lines: list[str] = field(default_factory=list)
    table_sizes: dict[str, int] = field(default_factory=dict)
    # PostgreSQL's own execution time (EXPLAIN ANALYZE), without transfer or decoding
    server_ms: dict[str, list[float]] = field(default_factory=dict)


def periods() -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(start, end, previous start) as the endpoints compute them without from/to."""
    end = dt.datetime.now(dt.UTC)
    start = end - PERIOD
    return start, end, start - (end - start)


# --------------------------------------------------------------------------- setup


async def _number(conn: asyncpg.Connection, sql: str, *params: Any) -> int:
    """A count or a size (never null)."""
    value = await conn.fetchval(sql, *params)
    assert value is not None, sql
    return int(value)


async def prepare(args: argparse.Namespace, target: bl.Target, conn: asyncpg.Connection) -> Scene:
    org = await conn.fetchval("select id from organisations where name = $1", sb.ORG_NAME)
    seed_lines: list[str] = []
    if org is None:
        log(
            f"seeding {sb.ORG_NAME}: {args.services:,} services, {args.visits:,} visits "
            f"(seed {args.seed}) ..."
        )
        summary = await sb.seed(target.dsn, args.services, args.visits, args.seed)
        org, seed_lines = summary.org_id, summary.lines
        for line in seed_lines:
            log("  " + line)
    else:
        seed_lines = [f"(reused {sb.ORG_NAME} {org} already in the database; not re-seeded)"]
    start, end, prev = periods()
    rows = await conn.fetch(
        """select ss.service_id, s.kind, count(*) n
             from submission_scores ss join services s on s.id = ss.service_id
            where ss.organisation_id = $1 and ss.visit_starts_at >= $2
              and ss.visit_starts_at < $3
            group by 1, 2""",
        org,
        start,
        end,
    )
    if not rows:
        raise RuntimeError("no scores in the last 12 months: nothing to measure")
    by_kind: Counter[str] = Counter()
    for r in rows:
        by_kind[r["kind"]] += r["n"]
    kind = by_kind.most_common(1)[0][0]
    rng = random.Random(args.seed)
    ids = sorted(r["service_id"] for r in rows)
    sample = rng.sample(ids, min(args.sample, len(ids)))
    largest = [r["service_id"] for r in sorted(rows, key=lambda r: -r["n"])[:10]]
    kind_services = await _number(
        conn, "select count(*) from services where organisation_id = $1 and kind = $2", org, kind
    )
    # What each request of (a) reads: its score rows (two periods) and answer rows.
    sizes: dict[str, list[int]] = {"score rows": [], "answer rows": []}
    for sid in sample:
        sizes["score rows"].append(len(await conn.fetch(SCORES_SQL, sid, start, prev, end)))
        sizes["answer rows"].append(
            await _number(conn, "select count(*)" + FINAL_ANSWERS, sid, start, end)
        )
    table_sizes = {
        t: await _number(conn, "select pg_total_relation_size($1::regclass)", t)
        for t in ("answers", "submission_scores", "submissions", "visits")
    }
    scene = Scene(
        org, {}, sample, largest, kind, kind_services, sizes, seed_lines=seed_lines,
        table_sizes=table_sizes,
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=target.url, trust_env=False, timeout=60) as c:
        r = await c.post(
            "/v1/auth/token",
            json={"email": f"scrutiny@{sb.DOMAIN}", "password": sb.PASSWORD, "device": "bench"},
        )
        bl._check(r, 200, "sign in as the scrutiny member")
        scene.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        # Every sampled scorecard once: checks they all answer 200, and their sizes.
        log(f"checking the {len(sample)} sampled scorecards (and their JSON sizes) ...")
        for sid in sample:
            r = await c.get(f"/v1/services/{sid}/scorecard", headers=scene.auth)
            bl._check(r, 200, f"scorecard of {sid}")
            scene.scorecard_bytes.append(len(r.content))
        r = await c.get("/v1/scorecards", params={"kind": kind}, headers=scene.auth)
        bl._check(r, 200, f"league table of {kind}")
        scene.league_bytes, scene.league_items = len(r.content), len(r.json()["items"])
    return scene


# --------------------------------------------------------------------------- floors


async def run_sql(
    name: str,
    target: bl.Target,
    query: Callable[[], Awaitable[int]],
    seconds: float,
    warmup: float,
) -> bl.Result:
    """Like bl.run, for SQL run from this process one statement batch at a time."""
    log(f"  {name} (concurrency 1): {warmup:g} s warm-up + {seconds:g} s ...")
    perf = time.perf_counter
    latencies: list[float] = []
    rows = 0
    begin = perf()
    ws, we = begin + warmup, begin + warmup + seconds
    cpu0 = None
    t_first = ws
    while True:
        now = perf()
        if cpu0 is None and now >= ws:
            cpu0, t_first = target.cpu(), now
        if now >= we:
            break
        t0 = perf()
        n = await query()
        t1 = perf()
        if cpu0 is not None:
            latencies.append(t1 - t0)
            rows += n
    cpu1 = target.cpu()
    assert cpu0 is not None
    result = bl.Result(
        name, 1, perf() - t_first, latencies, Counter({200: len(latencies)}), 200, [], cpu0, cpu1
    )
    if latencies:
        result.notes.append(f"{rows / len(latencies):,.0f} rows fetched per execution")
    return result


async def server_side(conn: asyncpg.Connection, scene: Scene) -> None:
    """PostgreSQL's execution time of the floors' SQL, from EXPLAIN ANALYZE (no timing)."""

    async def ms(sql: str, *params: Any) -> float:
        raw = await conn.fetchval(
            "explain (analyze, timing off, summary on, format json) " + sql, *params
        )
        return float(json.loads(str(raw))[0]["Execution Time"])

    start, end, prev = periods()
    scene.server_ms["scorecard"] = [
        sum([await ms(sql, *params) for _, sql, params in card_queries(sid, start, end, prev)])
        for sid in scene.sample[:50]
    ]
    scene.server_ms["league"] = [
        await ms(LEAGUE_SQL, scene.org, scene.kind, start, prev, end) for _ in range(7)
    ]


# --------------------------------------------------------------------------- report


def pct(values: list[int], p: float) -> int:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * len(s)) - 1))]


def pct_f(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * len(s)) - 1))]


def report(
    args: argparse.Namespace,
    target: bl.Target,
    scene: Scene,
    results: dict[str, bl.Result],
    pg_version: str,
) -> bool:
    out = print
    st = target.settings
    bl.print_header(
        out,
        "bench_scorecards",
        args.loadavg,
        pg_version,
        ["granian", "litestar", "msgspec", "asyncpg"],
    )
    if st is not None:
        out(
            "server:      granian --interface asgi --workers 1 --no-access-log (own process)  "
            f"LOG_LEVEL={st.log_level}  DB_POOL_MAX={st.db_pool_max}  "
            f"PostgreSQL {target.durability}"
        )
    else:
        out(f"server:      {target.url} (not started here)")
    out(
        "load:        one request (or one query batch) at a time from this process, lean "
        f"HTTP/1.1 keep-alive client; {args.seconds:g} s measured per scenario after "
        f"{args.warmup:g} s warm-up"
    )
    out("seed_bulk:   " + ("\n             ".join(scene.seed_lines)))
    out(
        "tables:      "
        + ", ".join(f"{t} {n / 2**20:,.0f} MB" for t, n in scene.table_sizes.items())
        + " (with indexes)"
    )
    sz = scene.sizes
    out(
        f"(a) sample:  {len(scene.sample)} services with visits in the last 12 months, drawn at "
        f"random (seed {args.seed}); per request: score rows (this + previous period) median "
        f"{statistics.median(sz['score rows']):.0f}, p95 {pct(sz['score rows'], 95)}, max "
        f"{max(sz['score rows'])}; answer rows median "
        f"{statistics.median(sz['answer rows']):.0f}, p95 {pct(sz['answer rows'], 95)}, max "
        f"{max(sz['answer rows'])}; JSON median {statistics.median(scene.scorecard_bytes):,.0f} "
        f"B, max {max(scene.scorecard_bytes):,} B"
    )
    out(
        f"(b) league:  kind {scene.kind} ({scene.kind_services} services, the most scores in "
        f"the last 12 months); JSON {scene.league_bytes:,} B ({scene.league_items} items: the "
        "first page, every service computed)"
    )
    card_ms, league_ms = scene.server_ms["scorecard"], scene.server_ms["league"]
    out(
        "(c) in PostgreSQL: execution time (EXPLAIN ANALYZE, no transfer or decoding) of "
        f"{CARD_FLOOR} median {statistics.median(card_ms):.2f} ms, p95 "
        f"{pct_f(card_ms, 95):.2f} ms ({len(card_ms)} sampled services); LEAGUE_SQL median "
        f"{statistics.median(league_ms):.1f} ms ({len(league_ms)} runs)"
    )
    out("")
    bl.print_table_head(
        out,
        f"{'scenario':<46} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'errors':>6} {bl.CPU_HEAD} {'srv ms/req':>10}",
    )
    for r in results.values():
        srv = r.server_us_per_req()
        out(
            f"{r.name:<46} {r.n:>8} {r.rps:>7.1f} {r.pct(50):>7.2f} {r.pct(95):>7.2f} "
            f"{r.pct(99):>7.2f} {r.pct(100):>7.2f} {r.errors:>6} {r.cpu_cells()} "
            f"{'-' if srv is None else f'{srv / 1000:.2f}':>10}"
        )
    out(
        bl.cpu_legend(
            "this process (HTTP client, or asyncpg for the floors)",
            "; floors run no request, so their srv cpu is idle noise",
        )
    )
    bl.print_problems(out, results.values())
    out("")
    ok = True

    def verdict(good: bool) -> str:
        nonlocal ok
        ok = ok and good
        return "PASS" if good else "FAIL"

    card, card_floor = results["scorecard"], results["scorecard_sql"]
    league, league_floor = results["league"], results["league_sql"]
    for label, value, goal, unit in (
        ("(a) scorecard p95", card.pct(95), SCORECARD_P95_GOAL_MS, "ms"),
        (
            "(a) scorecard p95 / its SQL floor p95",
            card.pct(95) / card_floor.pct(95),
            FLOOR_RATIO_GOAL,
            "x ",
        ),
        ("(b) league table p95", league.pct(95), LEAGUE_GOAL_MS, "ms"),
        (
            "(b) league table p95 / its SQL floor p95",
            league.pct(95) / league_floor.pct(95),
            FLOOR_RATIO_GOAL,
            "x ",
        ),
    ):
        good = value <= goal and not (card.errors or league.errors)
        out(f"{label:<42} {value:9.2f} {unit}  goal <= {goal:g} {unit.strip():<2}  {verdict(good)}")
    ratios = card.pct(50) / card_floor.pct(50), league.pct(50) / league_floor.pct(50)
    out(
        f"{'(context) p50 ratios endpoint / floor':<42} scorecard {ratios[0]:.2f}x, "
        f"league {ratios[1]:.2f}x"
    )
    noisy = [r.name for r in results.values() if (r.other_pct() or 0) > 20]
    bl.print_noise_and_log(out, noisy, target)
    return ok


# --------------------------------------------------------------------------- explain


async def explain(conn: asyncpg.Connection, scene: Scene) -> None:
    start, end, prev = periods()
    sid = scene.sample[0]
    for title, sql, params in [
        *card_queries(sid, start, end, prev),
        ("LEAGUE_SQL", LEAGUE_SQL, (scene.org, scene.kind, start, prev, end)),
    ]:
        plan = await conn.fetch("explain (analyze, buffers) " + sql, *params)
        print(f"\n-- EXPLAIN (ANALYZE, BUFFERS) {title}")
        for r in plan:
            print(r[0])


# --------------------------------------------------------------------------- profile


def worker_pid(target: bl.Target) -> int | None:
    """granian's worker: the child of the server process (one worker)."""
    kids = [pid for pid, (ppid, _) in bl._proc_table().items() if ppid == target.server_pid]
    return kids[0] if kids else None


def hot_frames(raw: str, top: int) -> list[str]:
    """py-spy's raw (collapsed) stacks -> the heaviest frames, % of the worker's loop time.

    Only the event loop thread's stacks count (an idle thread-pool thread shows up too);
    inclusive percentages of this project's frames, plus the whole request (Litestar) and
    asyncpg reading and decoding rows (in C, called from the transport's data_received).
    """
    total, incl = 0, Counter[str]()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not n.isdigit() or not any(".run_forever (" in f for f in frames):
            continue
        total += int(n)
        names = set()
        for f in frames:
            name, _, where = f.partition(" (")
            where = where.rstrip(")").rsplit(":", 1)[0]
            if where.startswith(("inspections/", "service/", "media/")):
                names.add(f"{name} ({where})")
            elif name == "Litestar.__call__":
                names.add("the whole request (Litestar.__call__)")
            elif name.endswith("._read_ready__data_received"):
                names.add("reading + decoding rows (asyncpg, via _read_ready__data_received)")
        for name in names:
            incl[name] += int(n)
    if not total:
        return ["(no samples)"]
    return [f"{100 * n / total:5.1f}%  {name}" for name, n in incl.most_common(top)]


async def profile(
    args: argparse.Namespace, target: bl.Target, scenarios: list[bl.Scenario]
) -> None:
    """Sample the server with py-spy while each scenario runs again (not measured)."""
    pid = worker_pid(target)
    if pid is None:
        print("\nprofile: no granian worker found (--url servers cannot be profiled)")
        return
    for sc in scenarios:
        with tempfile.NamedTemporaryFile(suffix=".txt") as f:
            spy = await asyncio.create_subprocess_exec(
                args.py_spy, "record", "-p", str(pid), "-d", f"{args.profile_seconds:g}",
                "-r", "250", "-f", "raw", "-o", f.name,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            await bl.run(target, sc, args.profile_seconds, 0.5, "raw")
            _, err = await spy.communicate()
            raw = await asyncio.to_thread(Path(f.name).read_text)
        print(f"\nprofile of {sc.name} (py-spy, {args.profile_seconds:g} s, % of the worker's "
              "event-loop time, inclusive):")  # fmt: skip
        if spy.returncode:
            print(f"  py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-300:]}")
        for line in hot_frames(raw, args.profile_top):
            print("  " + line)


# --------------------------------------------------------------------------- main


async def bench(args: argparse.Namespace, target: bl.Target) -> int:
    conn = await asyncpg.connect(target.dsn)
    try:
        scene = await prepare(args, target, conn)
        pg_version = await conn.fetchval("show server_version")
        await server_side(conn, scene)
        auth = scene.auth
        cards = itertools.cycle(scene.sample)
        big = itertools.cycle(scene.largest)
        league_url = f"/v1/scorecards?kind={scene.kind}"

        def cycle_get(ids: Any) -> Callable[[], Awaitable[bl.Request]]:
            async def make() -> bl.Request:
                return ("GET", f"/v1/services/{next(ids)}/scorecard", auth, None, None)

            return make

        async def league_req() -> bl.Request:
            return ("GET", league_url, auth, None, None)

        # The endpoints' own SQL with the endpoints' parameters: if routes.py changes these
        # statements (say, LEAGUE_SQL into an aggregate), the floors follow.
        floor_cards = itertools.cycle(scene.sample)

        async def card_sql() -> int:
            start, end, prev = periods()
            sid = next(floor_cards)
            queries = card_queries(sid, start, end, prev)
            return sum([len(await conn.fetch(sql, *p)) for _, sql, p in queries])

        async def league_sql() -> int:
            start, end, prev = periods()
            return len(await conn.fetch(LEAGUE_SQL, scene.org, scene.kind, start, prev, end))

        async def over_http(name: str, make: Callable[[], Awaitable[bl.Request]]) -> bl.Result:
            """One request at a time, each answered 200, through the raw client."""
            scenario = bl.Scenario(name, 1, 200, make)
            return await bl.run(target, scenario, args.seconds, args.warmup, "raw")

        async def in_sql(name: str, query: Callable[[], Awaitable[int]]) -> bl.Result:
            return await run_sql(name, target, query, args.seconds, args.warmup)

        log("measuring:")
        # In this order: each endpoint, then its floor.
        results: dict[str, bl.Result] = {
            "scorecard": await over_http("(a) GET /v1/services/{id}/scorecard", cycle_get(cards)),
            "scorecard_sql": await in_sql(f"(a) floor: {CARD_FLOOR}", card_sql),
            "league": await over_http(f"(b) GET /v1/scorecards?kind={scene.kind}", league_req),
            "league_sql": await in_sql("(b) floor: LEAGUE_SQL", league_sql),
            "largest": await over_http(
                "(context) scorecard, the 10 largest services", cycle_get(big)
            ),
        }
        ok = report(args, target, scene, results, pg_version)
        if args.explain:
            await explain(conn, scene)
        if args.py_spy:
            await profile(
                args,
                target,
                [
                    bl.Scenario("(a) scorecard", 1, 200, cycle_get(cards)),
                    bl.Scenario("(b) league table", 1, 200, league_req),
                ],
            )
        failed = any(r.errors for r in results.values())
        return 1 if failed else (0 if ok else 2)
    finally:
        await conn.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench_scorecards",
        description="Latency of a service scorecard and of the league table on a large seeded "
        "organisation, against their bare-SQL floors, with one granian worker.",
    )
    bl.add_numbers(
        p,
        seconds=(15.0, "measured per scenario (15)"),
        warmup=(2.0, "unmeasured warm-up (2)"),
        seed=(1, "seed_bulk's seed and the sample's (1)"),
        services=(1000, "seed_bulk --services (1000)"),
        visits=(20000, "seed_bulk --visits (20000)"),
        sample=(200, "services cycled through in (a) (default 200)"),
        profile_seconds=(10.0, "per profile (10)"),
        profile_top=(25, "frames printed (25)"),
    )
    p.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the SQL")
    p.add_argument(
        "--py-spy",
        metavar="PATH",
        help="after the measurements, profile the server with this py-spy binary while (a) and "
        "(b) run again, and print the heaviest frames (e.g. /tmp/pyspy/bin/py-spy)",
    )
    bl.add_stack_options(p)
    p.add_argument("--url", help="benchmark this running server instead (needs --dsn)")
    p.add_argument("--dsn", help="its database (seeded first unless already seeded)")
    args = p.parse_args(argv)
    if bool(args.url) != bool(args.dsn):
        p.error("--url and --dsn go together")
    if args.seconds <= 0 or args.warmup < 0 or args.sample < 1:
        p.error("seconds must be > 0, warmup >= 0, sample >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return bl.run_on_stack(parse_args(argv), "bench-scorecards-", bench)


if __name__ == "__main__":
    raise SystemExit(main())
