"""Load test of the offline bundle, the framework's ceiling and the final PUT (see bench_bundle).

Starts a throwaway PostgreSQL + SeaweedFS in a temp dir, migrates, runs the real app under
granian with ONE worker in its own process, seeds an organisation, people, a service, a
published 100-question checklist, a visit and some history (past submissions, so tables and
statistics are not empty), then drives HTTP/1.1 keep-alive load from this process and prints
one table. Everything is torn down at the end, also on Ctrl-C, SIGTERM or an error.

    scripts/bench_bundle                     # defaults: concurrency 16, 10 s per scenario
    scripts/bench_bundle --seconds 5 --warmup 1
    scripts/bench_bundle --client httpx      # httpx.AsyncClient as the load generator
    scripts/bench_bundle --url http://127.0.0.1:8000 --dsn postgresql://...  # existing server

The load generator is, by default, a small HTTP/1.1 client on asyncio streams: on this 2-core
machine httpx.AsyncClient spends 0.5-1.2 ms of CPU per request, so it saturates its core at
~1,000-2,000 req/s while the server's trivial endpoint does ~12,000; with httpx the ceiling
(and so every ratio) would measure the client, not the app.

CPU columns come from /proc: the server process tree (granian + its worker), the PostgreSQL
cluster (postmaster and backends), this load generator, and "other" (the rest of the machine,
e.g. a test run next door), each as % of one core over the measured window; "srv us/req" is
server CPU time per request, which does not depend on how fast the client is.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from scripts.bench.harness import (
    CLIENTS,
    CPU_HEAD,
    PUT_P99_GOAL_MS,
    Request,
    Result,
    Scenario,
    Scene,
    Target,
    VisitPool,
    _check,
    add_numbers,
    add_stack_options,
    all_questions,
    build_answers,
    cpu_legend,
    fmt,
    log,
    print_header,
    print_noise_and_log,
    print_problems,
    print_table_head,
    run,
    run_on_stack,
    seed,
    seed_history,
)
from service.settings import Settings

BUNDLE_GOAL = 0.60
NOT_MODIFIED_GOAL = 0.80


def report(
    args: argparse.Namespace,
    target: Target,
    scene: Scene,
    results: dict[str, Result],
    put_bytes: int,
    put_resp_bytes: int,
    pg_version: str,
    history_rows: int,
) -> None:
    qs = all_questions(scene.checklist)
    types = Counter(q["type"] for q in qs)
    domains = len({q["domain"] for q in qs})
    st = target.settings
    out = print
    print_header(
        out,
        "bench_bundle",
        args.loadavg,
        pg_version,
        ["granian", "litestar", "msgspec", "asyncpg", "httpx"],
    )
    if st is not None:
        out(
            f"server:      granian --interface asgi --workers 1 --no-access-log (own process)  "
            f"LOG_LEVEL={st.log_level}  DB_POOL_MIN={st.db_pool_min}  "
            f"DB_POOL_MAX={st.db_pool_max}  PostgreSQL {target.durability}"
        )
    else:
        out(f"server:      {target.url} (not started here; LOG_LEVEL unknown)")
    out(
        f"load:        {CLIENTS[args.client]} in the bench process (asyncio), HTTP/1.1 "
        f"keep-alive, one connection per concurrent worker; {args.seconds:g} s measured per "
        f"scenario after "
        f"{args.warmup:g} s warm-up; concurrency {args.concurrency} (PUT: 1 and "
        f"{args.put_concurrency})"
    )
    out(
        f"payloads:    bundle 200 body {scene.bundle_bytes:,} B ({len(qs)} questions, "
        f"{domains} domains: "
        + ", ".join(f"{t} {n}" for t, n in sorted(types.items()))
        + f"); bundle 304 body 0 B; PUT body {put_bytes:,} B ({len(qs)} answers); "
        f"PUT 201 response {put_resp_bytes:,} B"
    )
    out(
        f"database:    {args.history} past visits with {3 * args.history} final submissions "
        f"({history_rows:,} answer rows) seeded by SQL, then VACUUM ANALYZE; every PUT goes "
        "to a fresh visit made by SQL beforehand"
    )
    out("")
    print_table_head(
        out,
        f"{'scenario':<40} {'conc':>4} {'requests':>8} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'p99.9 ms':>8} {'errors':>6} {CPU_HEAD} {'srv us/req':>10}",
    )
    for r in results.values():
        out(
            f"{r.name:<40} {r.concurrency:>4} {r.n:>8} {r.rps:>8.0f} {r.pct(50):>7.2f} "
            f"{r.pct(99):>7.2f} {r.pct(99.9):>8.2f} {r.errors:>6} {r.cpu_cells()} "
            f"{fmt(r.server_us_per_req(), 10)}"
        )
    out(cpu_legend("this load generator"))
    print_problems(out, results.values())
    out("")
    ceiling = results["ceiling"]
    for key, label, goal in (
        ("bundle200", "bundle 200 / ceiling, req/s", BUNDLE_GOAL),
        ("bundle304", "bundle 304 / ceiling, req/s", NOT_MODIFIED_GOAL),
    ):
        r = results[key]
        ratio = r.rps / ceiling.rps if ceiling.rps else 0.0
        verdict = "PASS" if ratio >= goal and not r.errors else "FAIL"
        mine, floor = r.server_us_per_req(), ceiling.server_us_per_req()
        extra = (
            f"   (server CPU/request {mine / floor:.1f}x the ceiling's)" if mine and floor else ""
        )
        out(f"{label:<34} {ratio:8.2f}      goal >= {goal:.2f}   {verdict}{extra}")
    for key, goal in (("put1", PUT_P99_GOAL_MS), ("put4", None)):
        r = results[key]
        label = f"PUT final p99, concurrency {r.concurrency}"
        if goal is None:
            out(f"{label:<34} {r.pct(99):8.2f} ms   (context)")
        else:
            verdict = "PASS" if r.pct(99) < goal and not r.errors else "FAIL"
            out(f"{label:<34} {r.pct(99):8.2f} ms   goal < {goal:g} ms   {verdict}")
    noisy = [
        f"{r.name} (conc {r.concurrency})" for r in results.values() if (r.other_pct() or 0) > 20
    ]
    print_noise_and_log(out, noisy, target)
    cli = ceiling.cpu_pct("client")
    if cli is not None and cli >= 85:
        out(
            f"note: the load generator used {cli:.0f}% of a core during the ceiling run, so "
            "the ceiling is partly client-bound (it would be higher with a faster client); "
            "srv us/req compares server cost independently of the client."
        )


# --------------------------------------------------------------------------- main


async def bench(args: argparse.Namespace, target: Target) -> int:
    conn = await asyncpg.connect(target.dsn)
    try:
        async with httpx.AsyncClient(base_url=target.url, trust_env=False, timeout=30) as c:
            log("seeding: organisation, people, service, 100-question checklist, visit ...")
            scene = await seed(conn, c)
        pool = VisitPool(conn, scene)
        if args.history:
            log(f"seeding history: {args.history} past visits with 3 final submissions each ...")
        history_rows = await seed_history(pool, args.history)
        pg_version = await conn.fetchval("show server_version")
        auth = scene.citizen_auth
        bundle_url = f"/v1/visits/{scene.visit_id}/bundle"
        inm = {**auth, "If-None-Match": scene.bundle_etag}
        now = dt.datetime.now(dt.UTC)
        put_body = json.dumps(
            {
                "state": "final",
                "answers": build_answers(scene.checklist),
                "device": "Pixel 7 (bench)",
                "started_at": (now - dt.timedelta(minutes=50)).isoformat(),
                "updated_at": now.isoformat(),
            },
            separators=(",", ":"),
        ).encode()
        put_headers = {**auth, "Content-Type": "application/json"}
        done: list[str] = []

        def get(url: str, headers: dict[str, str]) -> Callable[[], Awaitable[Request]]:
            req: Request = ("GET", url, headers, None, None)

            async def make() -> Request:
                return req

            return make

        async def new_put() -> Request:
            url = f"/v1/visits/{await pool.take()}/submissions/{uuid.uuid4()}"
            return ("PUT", url, put_headers, put_body, url)

        # One PUT now (outside any measurement) to learn the response size and check the body.
        await pool.add(1)
        async with httpx.AsyncClient(base_url=target.url, trust_env=False, timeout=30) as c:
            _, url, headers, body, _ = await new_put()
            r = await c.put(url, headers=headers, content=body)
            _check(r, 201, "final PUT")
            put_resp_bytes = len(r.content)

        replays = itertools.cycle([])

        async def replay() -> Request:
            return ("PUT", next(replays), put_headers, put_body, None)

        scenarios = [
            (
                "ceiling",
                Scenario("ceiling: GET /health", args.concurrency, 200, get("/health", {})),
            ),
            (
                "bundle200",
                Scenario(
                    "bundle 200: GET /v1/visits/{id}/bundle",
                    args.concurrency,
                    200,
                    get(bundle_url, auth),
                ),
            ),
            (
                "bundle304",
                Scenario(
                    "bundle 304: same, If-None-Match", args.concurrency, 304, get(bundle_url, inm)
                ),
            ),
            (
                "me",
                Scenario(
                    "context: GET /v1/me (authenticated)",
                    args.concurrency,
                    200,
                    get("/v1/me", auth),
                ),
            ),
            ("put1", Scenario("PUT final 100 answers, new", 1, 201, new_put, done.append)),
            (
                "put4",
                Scenario(
                    "PUT final 100 answers, new", args.put_concurrency, 201, new_put, done.append
                ),
            ),
            ("replay", Scenario("PUT final 100 answers, replay (200)", 1, 200, replay)),
        ]
        results: dict[str, Result] = {}
        log(f"running {len(scenarios)} scenarios against {target.url}:")
        for key, sc in scenarios:
            notes = []
            if key.startswith("put"):
                # Enough fresh visits for the whole run, made beforehand (SQL, not measured).
                rate = results["put1"].rps * sc.concurrency if "put1" in results else 300.0
                need = int(rate * (args.seconds + args.warmup) * 1.3) + 50
                if len(pool.ids) < need:
                    await pool.add(need - len(pool.ids))
                pool.topped_up = 0
            if key == "replay":
                if not done:
                    continue
                replays = itertools.cycle(done)
            result = await run(target, sc, args.seconds, args.warmup, args.client)
            if key.startswith("put") and pool.topped_up:
                notes.append(
                    f"{pool.topped_up} more visits had to be made (by SQL) during the "
                    "measurement; the up-front estimate was too low"
                )
            result.notes = notes
            results[key] = result
        report(
            args, target, scene, results, len(put_body), put_resp_bytes, pg_version, history_rows
        )
        if target.settings is not None:
            log("where the 304's time goes: the app in this process, called over ASGI ...")
            await where_time_goes(target.settings, scene)
        failed = any(r.errors for r in results.values())
        return 1 if failed else 0
    finally:
        await conn.close()


async def _asgi_calls(
    app: Any, path: str, headers: dict[str, str], n: int, before: Any = None
) -> set[int]:
    """Call the app ``n`` times as granian would (no HTTP parsing, no sockets); ``before()``
    ahead of each call."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()] + [(b"host", b"b")]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": raw, "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    for _ in range(n):
        if before is not None:
            before()
        await app({**scope, "state": {}}, receive, send)
    return statuses


def _cpu_us(before: float, n: int) -> float:
    return (time.process_time() - before) * 1e6 / n


async def where_time_goes(settings: Settings, scene: Scene, n: int = 3000) -> None:
    """CPU per request of the 304 and of its parts, measured in this process, and the
    functions it spends most of its own time in (cProfile with process time).

    In-process figures have no HTTP parsing or sockets to the client (granian does those
    in Rust for every request alike); they show what the 304 adds to the ceiling.
    """
    import cProfile
    import pstats

    from inspections.accounts.queries import principal_ids
    from inspections.visits import queries as vq
    from service.app import create_app

    app: Any = create_app(settings)  # called over raw ASGI dicts below
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    life = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        log(f"could not start the app in-process: {started}")
        return
    try:
        url = f"/v1/visits/{scene.visit_id}/bundle"
        inm = {**scene.citizen_auth, "If-None-Match": scene.bundle_etag}
        rows: list[tuple[str, float]] = []
        state = app.state
        # From memory (inspections/visits/bundle_memo.py), and through the route as after
        # every write: the host's write generation moved before each request.
        for label, path, headers, before in (
            ("GET /health (the ceiling)", "/health", {}, None),
            ("bundle 304 from memory", url, inm, None),
            ("bundle 304 through the route (after a write)", url, inm, state.writes.bump),
        ):
            await _asgi_calls(app, path, headers, n // 10, before)
            t0 = time.process_time()
            got = await _asgi_calls(app, path, headers, n, before)
            rows.append((f"{label} -> {sorted(got)}", _cpu_us(t0, n)))
        token = scene.citizen_auth["Authorization"].split()[1]
        claims = json.loads(
            __import__("base64").urlsafe_b64decode(token.split(".")[1] + "==").decode()
        )
        ids = principal_ids(claims["sub"], claims["extras"]["dev"])
        assert ids is not None
        visit = uuid.UUID(scene.visit_id)
        sql = vq.CALLER_STAMPS_SQL
        held, pooled = state.reader.fetchrow, state.pool.fetchrow
        parts = (
            ("  its query over the held connection", lambda: held(sql, *ids, visit)),
            ("  (the same query through the pool)", lambda: pooled(sql, *ids, visit)),
        )
        for label, call in parts:
            for _ in range(n // 10):
                row = await call()
            t0 = time.process_time()
            for _ in range(n):
                row = await call()
            rows.append((label, _cpu_us(t0, n)))
        t0 = time.process_time()
        for _ in range(n):
            vq.bundle_etag(visit, row["vu"], row["su"], row["tu"])
        rows.append(("  its ETag (sha256 of the stamps)", _cpu_us(t0, n)))
        print("")
        print(f"where the time goes: CPU us per request in this process, {n} each")
        for label, us in rows:
            print(f"  {label:<52} {us:8.0f}")
        rest = rows[2][1] - rows[3][1] - rows[5][1]
        print(
            f"  {'  the rest of the route: routing, JWT, handler':<52} {rest:8.0f}"
            f"   (/health: {rows[0][1]:.0f})"
        )
        print("  pool acquire/release saved by the held connection:"
              f" {rows[4][1] - rows[3][1]:.0f} us per request")  # fmt: skip
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        await _asgi_calls(app, url, inm, n, state.writes.bump)
        profile.disable()
        print("  the route's 304: own-time leaders (cProfile, process time, all requests):")
        stats = pstats.Stats(profile)
        top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]  # type: ignore[attr-defined]
        for (file, line, func), (_, _calls, own, cum, _) in top:
            where = f"{Path(file).name}:{line}({func})" if line else func
            print(f"    {own * 1e6 / n:7.1f} us own {cum * 1e6 / n:8.1f} us cum  {where[:90]}")
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await life


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench_bundle",
        description="Requests/s and latency of the bundle (200/304), the framework's ceiling "
        "(GET /health) and a final PUT of 100 answers, against granian with one worker.",
    )
    add_numbers(
        p,
        concurrency=(16, "GET scenarios (default 16)"),
        put_concurrency=(4, "second PUT run (default 4; first is 1)"),
        seconds=(10.0, "measured per scenario (10)"),
        warmup=(2.0, "unmeasured warm-up (2)"),
        history=(
            500,
            "past visits seeded by SQL, each with 3 final submissions of 100 answers, "
            "so tables and statistics are not empty (default 500; 0 for none)",
        ),
    )
    add_stack_options(p)
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator: a lean asyncio HTTP/1.1 client (default) or httpx.AsyncClient "
        "(costs ~1 ms CPU per request here, so it cannot reach the server's ceiling)",
    )
    p.add_argument("--url", help="benchmark this running server instead (needs --dsn)")
    p.add_argument("--dsn", help="its database, for seeding (with --url; writes bench data there)")
    args = p.parse_args(argv)
    if bool(args.url) != bool(args.dsn):
        p.error("--url and --dsn go together")
    if (
        args.concurrency < 1
        or args.put_concurrency < 1
        or args.seconds <= 0
        or args.warmup < 0
        or args.history < 0
    ):
        p.error("concurrency must be >= 1, seconds > 0, warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_on_stack(parse_args(argv), "bench-bundle-", bench)


if __name__ == "__main__":
    raise SystemExit(main())
