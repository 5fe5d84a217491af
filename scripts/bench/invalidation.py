"""How long a change answered 2xx can be read back stale by another worker (bench_invalidation).

Starts a throwaway PostgreSQL + SeaweedFS and the app under granian with WORKERS (default 2)
worker processes, keeps the machine busy (one busy-looping process per core, plus steady
HTTP load on the bundle's 304 and GET /v1/me), then repeats changes through one connection:

- deactivate a person (security: the next request must be 401; a new person each time, as
  deactivating signs every device out for good);
- move a person on or off a visit's team (the bundle: new ETag, 403 for the removed);
- by hand in SQL, outside the app: sign one of Ann's phones out (``update devices``) after
  every worker has remembered its bundle 304 (inspections/visits/bundle_memo.py). Only the
  write's notification tells the workers, so this is the one window that remains.

Right after each change's 2xx, reads go through fresh connections until every worker has
answered the new state (each connection's worker is read from /proc). A read that still
shows the old state is stale; the window of one change is the time from its 2xx to the end
of its last stale read (0 when none was stale). It prints p50/p99/max of that window per
kind, and, for comparison, how long one PostgreSQL NOTIFY takes from commit to a listener
under the same load (what a cache evicted by LISTEN/NOTIFY stays stale for).

    scripts/bench_invalidation                  # 200 changes of each kind, 2 workers
    scripts/bench_invalidation --changes 50 --workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
import httpx
from argon2 import PasswordHasher

from scripts.bench import harness

log = harness.log


def start_hogs() -> list[subprocess.Popen[bytes]]:
    """One busy-looping process per core: the load under which the window is measured."""
    return [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]


async def window_after_change(
    port: int, workers: list[int], path: str, headers: dict[str, str], is_fresh: Any
) -> tuple[float, int, int]:
    """Reads from the change's 2xx until every worker answered fresh: (window s, stale, reads)."""
    t0 = time.perf_counter()
    fresh_from: set[int] = set()
    window, stale, reads = 0.0, 0, 0
    while len(fresh_from) < len(workers):
        for status, fields, body, pid in await asyncio.gather(
            *(harness.fresh_request(port, workers, "GET", path, headers) for _ in range(4))
        ):
            reads += 1
            if is_fresh(status, fields, body):
                if pid is not None:
                    fresh_from.add(pid)
            else:
                stale += 1
                fresh_from.discard(pid)  # that worker must answer fresh again
                window = max(window, time.perf_counter() - t0)
        if reads > 4000:
            raise RuntimeError("a worker never answered the new state")
    return window, stale, reads


async def notify_latency(dsn: str, n: int) -> list[float]:
    """A NOTIFY's statement sent to its arrival at a listening connection, n times."""
    listener, sender = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    got: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener("bench_probe", lambda *_: got.put_nowait(time.perf_counter()))
    out = []
    try:
        for _ in range(n):
            # From sending the (autocommit) statement: an upper bound on commit -> listener.
            sent = time.perf_counter()
            await sender.execute("select pg_notify('bench_probe', 'x')")
            out.append(await got.get() - sent)
    finally:
        await listener.close()
        await sender.close()
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))] if s else 0.0


async def background_load(url: str, stop: asyncio.Event, requests: list[tuple[str, dict]]) -> int:
    port = int(url.rsplit(":", 1)[1])
    done = 0

    async def one(path: str, headers: dict[str, str]) -> None:
        nonlocal done
        conn = harness.RawConnection("127.0.0.1", port)
        while not stop.is_set():
            await conn.request("GET", path, headers, None)
            done += 1
        conn.close()

    await asyncio.gather(*(one(p, h) for p, h in requests))
    return done


async def bench(args: argparse.Namespace, target: harness.Target) -> int:
    assert target.server_pid
    workers = harness.children(target.server_pid)
    port = int(target.url.rsplit(":", 1)[1])
    conn = await asyncpg.connect(target.dsn)
    # A cheap hash: this bench measures caches, not how long a sign-in takes.
    pw = PasswordHasher(time_cost=1, memory_cost=1024).hash(harness.PASSWORD)
    run = uuid.uuid4().hex[:8]
    org = await harness.add_org(conn, run)
    ids: dict[str, str] = {}

    async def user(name: str, *roles: str) -> str:
        email = f"{name}.{run}@bench.example.org"
        ids[email] = str(await harness.add_user(conn, org, email, name, roles, pw))
        return email

    async with httpx.AsyncClient(base_url=target.url, timeout=60, trust_env=False) as c:
        coord = await harness.sign_in(c, await user("coord", "coordinator"), "b")
        ann, bob, pro = (
            await user("Ann", "citizen_inspector"),
            await user("Bob", "citizen_inspector"),
            await user("Pat", "professional_inspector"),
        )
        for e in (ann, bob):
            await harness.clear_to_inspect(conn, org, uuid.UUID(ids[e]))
        auth = {e: await harness.sign_in(c, e, "b") for e in (ann, bob, pro)}
        service = await harness.add_service(c, coord)
        checklist, _ = await harness.add_checklist(c, coord, harness.build_checklist(20))

        def team(*who: str) -> list[dict[str, Any]]:
            return [{"user_id": ids[e], "perspective": "citizen"} for e in who] + [
                {"user_id": ids[pro], "perspective": "professional", "lead": True}
            ]

        in_an_hour = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        visit = await harness.add_visit(c, coord, service, checklist, in_an_hour, 3, team(ann))
        bundle = f"/v1/visits/{visit}/bundle"
        etag = (await c.get(bundle, headers=auth[ann])).headers["etag"]

        log(f"load: {os.cpu_count()} CPU hogs + {args.concurrency} keep-alive connections")
        hogs = start_hogs()
        stop = asyncio.Event()
        load = asyncio.ensure_future(
            background_load(
                target.url,
                stop,
                [
                    (bundle, {**auth[ann], "If-None-Match": etag})
                    if i % 2
                    else ("/v1/me", auth[pro])
                    for i in range(args.concurrency)
                ],
            )
        )
        results: dict[str, list[tuple[float, int, int]]] = {
            "deactivation": [],
            "team": [],
            "by_hand": [],
        }
        try:
            on_team = False
            for i in range(args.changes):
                # Security: a person deactivated must be refused by every worker. A new one
                # each time: reactivating her would not bring her signed-out token back.
                dee = await user(f"Dee{i}", "citizen_inspector")
                dee_auth = await harness.sign_in(c, dee, "b")
                r = await c.patch(f"/v1/users/{ids[dee]}", headers=coord, json={"active": False})
                harness._check(r, 200, "deactivate")
                results["deactivation"].append(
                    await window_after_change(
                        port, workers, "/v1/me", dee_auth, lambda s, _f, _b: s == 401
                    )
                )
                # The bundle: Ann's team gains or loses Pat's colleague Bob.
                on_team = not on_team
                r = await c.patch(
                    f"/v1/visits/{visit}",
                    headers=coord,
                    json={"team": team(ann, bob) if on_team else team(ann)},
                )
                harness._check(r, 200, "team change")
                old = etag

                def is_new(status: int, fields: dict[str, str], _b: bytes, old: str = old) -> bool:
                    return status == 200 and fields.get("etag") != old

                results["team"].append(
                    await window_after_change(
                        port, workers, bundle, {**auth[ann], "If-None-Match": old}, is_new
                    )
                )
                etag = (await c.get(bundle, headers=auth[ann])).headers["etag"]
                # By hand: every worker answers this phone's 304 from memory, then SQL signs
                # the phone out; nothing but the notification tells the workers.
                phone = await harness.sign_in(c, ann, f"phone {i}")
                remembered = {**phone, "If-None-Match": etag}
                await window_after_change(
                    port, workers, bundle, remembered, lambda s, _f, _b: s == 304
                )
                dev = await conn.fetchval(
                    "select id from devices where user_id = $1 and name = $2",
                    uuid.UUID(ids[ann]),
                    f"phone {i}",
                )
                await conn.execute("update devices set revoked_at = now() where id = $1", dev)
                results["by_hand"].append(
                    await window_after_change(
                        port, workers, bundle, remembered, lambda s, _f, _b: s == 401
                    )
                )
            notify = await notify_latency(target.dsn, args.changes)
        finally:
            stop.set()
            background = await load
            for hog in hogs:
                hog.kill()
                hog.wait()
    await conn.close()

    print("== bench_invalidation ==")
    print(
        f"server: granian --workers {args.workers}; load: {len(hogs)} CPU hogs + "
        f"{args.concurrency} connections (bundle 304, GET /v1/me), {background} requests"
    )
    print(f"{'change':<34}{'n':>6}{'stale/reads':>14}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, label in (
        ("deactivation", "deactivate -> /v1/me"),
        ("team", "team change -> bundle ETag"),
        ("by_hand", "by hand (SQL): sign-out -> bundle"),
    ):
        rows = results[kind]
        w = [r[0] * 1000 for r in rows]
        stale, reads = sum(r[1] for r in rows), sum(r[2] for r in rows)
        print(
            f"{label:<34}{len(rows):>6}{f'{stale}/{reads}':>14}"
            f"{pct(w, 50):>9.2f}{pct(w, 99):>9.2f}{max(w, default=0):>9.2f}"
        )
    n = [x * 1000 for x in notify]
    print(
        f"{'one NOTIFY, send -> listener':<34}{len(n):>6}{'':>14}"
        f"{pct(n, 50):>9.2f}{pct(n, 99):>9.2f}{max(n, default=0):>9.2f}"
    )
    print(f"(NOTIFY mean {statistics.fmean(n) if n else 0:.2f} ms)")
    print(
        "window: from the change's 2xx (by hand: its commit) to the end of its last stale "
        "read, 0 if none"
    )
    harness.print_noise_and_log(print, [], target)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_invalidation", description=__doc__)
    p.add_argument("--changes", type=int, default=200, help="changes of each kind (200)")
    p.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "2")))
    p.add_argument("--concurrency", type=int, default=8, help="background connections (8)")
    args = p.parse_args()
    args.url = args.dsn = None
    args.log_level, args.pg_fast = "WARNING", False
    # Ann signs a new phone in for every change (by hand): past the default sign-in limits.
    os.environ.setdefault("SIGNIN_RATE_PER_MINUTE", "1000000")
    os.environ.setdefault("SIGNIN_PER_ACCOUNT_PER_HOUR", "1000000")
    # This bench is about several workers (the harness's stack runs one unless told).
    return harness.run_on_stack(args, "bench-invalidation-", bench, workers=args.workers)


if __name__ == "__main__":
    raise SystemExit(main())
