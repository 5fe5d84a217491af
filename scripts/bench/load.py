"""Fifty phones (see bench_load): the phone contract under load, photos included.

Starts a throwaway PostgreSQL + SeaweedFS and the real app under granian with WORKERS
processes (scripts/bench/harness.py's Stack), or uses a running server (--url and --dsn),
seeds an organisation, a 100-question checklist and a supply of visits, then runs N
simulated phones for T seconds. Each phone loops, pausing --think seconds between calls
(a person reads and taps between them):

    GET /v1/me/visits; take a new visit; GET its bundle (200); PUT a draft of 100 answers;
    GET the bundle again with If-None-Match (304); every fifth loop POST a ~1.6 MB 12 MP
    JPEG (202 once stored); PUT the final submission.

It prints p50/p99/max per kind of request (the final PUTs sent right after the phone's
photo also on a row of their own), errors (any unexpected status, 503s included),
uploads acknowledged per second, and how long after the run's end the last photo became
ready (or rejected), with the goals: 0 errors; bundle and PUT p99 under 250 ms; upload
acknowledged p99 under 2 s; every photo ready within 60 s of the end.

    scripts/bench_load                          # 50 phones, 60 s, WORKERS=2
    scripts/bench_load --phones 16 --seconds 20
    WORKERS=4 scripts/bench_load
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import math
import os
import platform
import signal
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from scripts.bench import harness as bl
from scripts.bench import photos as bp

P99_GOAL_MS = 250.0  # bundle and PUT
ACK_P99_GOAL_S = 2.0
READY_GOAL_S = 60.0
PHOTO_EVERY = 5
log = bl.log


@dataclass
class Stats:
    lat: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)
    loops: int = 0


async def phone(
    i: int,
    url: str,
    scene: bl.Scene,
    visits: bl.VisitPool,
    answers: list[dict[str, Any]],
    photo: bp.Photo,
    think: float,
    stop: float,
    stats: Stats,
    phones: int,
) -> None:
    conn = bl.RawConnection(*bp.host_port(url))
    auth = scene.citizen_auth
    json_h = {**auth, "Content-Type": "application/json"}
    loop = 0

    async def call(kind: str, expect: int, method: str, path: str, headers: dict[str, str],
                   body: bytes | None = None, also: str | None = None,
                   ) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
        t0 = time.perf_counter()
        try:
            status, content = await conn.request(method, path, headers, body)
        except (OSError, EOFError, ValueError, IndexError, asyncio.LimitOverrunError) as e:
            status, content = -1, repr(e).encode()
        took = time.perf_counter() - t0
        stats.lat[kind].append(took)
        if also:
            stats.lat[also].append(took)
        if status != expect:
            stats.errors[f"{kind} -> {status}"] += 1
            if len(stats.samples) < 5:
                stats.samples.append(f"{kind}: {status} {content[:200]!r}")
        await asyncio.sleep(think)
        return status, content, {}

    # Phones start spread over the first think period, not all in one instant.
    await asyncio.sleep(think * i / phones)
    try:
        while time.monotonic() < stop:
            loop += 1
            await call("visits", 200, "GET", "/v1/me/visits", auth)
            visit = await visits.take()
            bundle = f"/v1/visits/{visit}/bundle"
            t0 = time.perf_counter()
            status, content = await conn.request("GET", bundle, auth, None)
            stats.lat["bundle 200"].append(time.perf_counter() - t0)
            etag = ""
            if status == 200:
                etag = _etag(conn)
            else:
                stats.errors[f"bundle 200 -> {status}"] += 1
            await asyncio.sleep(think)
            # The phone checks its copy is current before it starts answering.
            inm = {**auth, "If-None-Match": etag} if etag else auth
            await call("bundle 304", 304 if etag else 200, "GET", bundle, inm)
            sub = f"/v1/visits/{visit}/submissions/{uuid.uuid4()}"
            now = dt.datetime.now(dt.UTC).isoformat()
            draft = {"state": "draft", "answers": answers[:50], "started_at": now,
                     "updated_at": now, "device": f"phone {i}"}  # fmt: skip
            await call("PUT draft", 201, "PUT", sub, json_h, json.dumps(draft).encode())
            # Overwriting the saved draft needs its ETag (If-Match).
            final_h = {**json_h, "If-Match": _etag(conn)}
            if loop % PHOTO_EVERY == 0:
                up = bp.build_upload(photo, visit, auth, f"phone-{i}-{loop}")
                status, _, _ = await call("photo ack", 202, "POST", "/v1/evidence", up.headers,
                                          up.body)  # fmt: skip
                if status == 202:
                    stats.photos.append(up.evidence_id)
            final = {**draft, "state": "final", "answers": answers}
            # Right after this phone's photo: also shown on a row of its own.
            after = "  after photo" if loop % PHOTO_EVERY == 0 else None
            await call("PUT final", 200, "PUT", sub, final_h, json.dumps(final).encode(), after)
            stats.loops += 1
    finally:
        conn.close()


def _etag(conn: bl.RawConnection) -> str:
    return conn.last_headers.get(b"etag", b"").decode()


async def wait_ready(dsn: str, ids: list[str], deadline_s: float) -> tuple[float, Counter[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        while True:
            rows = await conn.fetch(
                "select status, count(*) n from evidence where id = any($1::uuid[]) "
                "group by status",
                ids,
            )
            counts = Counter({r["status"]: r["n"] for r in rows})
            if not counts.get("processing") or time.perf_counter() - start > deadline_s:
                return time.perf_counter() - start, counts
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values`` in seconds; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


async def run(args: argparse.Namespace, target: bl.Target, photo: bp.Photo, pids: bp.Pids) -> int:
    conn = await asyncpg.connect(target.dsn)
    try:
        async with httpx.AsyncClient(base_url=target.url, trust_env=False, timeout=30) as c:
            log("seeding: organisation, people, service, 100-question checklist, visit ...")
            scene = await bl.seed(conn, c)
        visits = bl.VisitPool(conn, scene)
        per_phone = int(args.seconds / max(args.think * 4, 0.05)) + 5
        log(f"making {args.phones * per_phone} visits by SQL (one per loop) ...")
        await visits.add(args.phones * per_phone)
        answers = bl.build_answers(scene.checklist)
        gc.collect()
        gc.freeze()
        stats = Stats()
        cpu0 = bp.cpu_now(pids)
        t0 = time.perf_counter()
        stop = time.monotonic() + args.seconds
        log(f"{args.phones} phones for {args.seconds:g} s (think {args.think:g} s) ...")
        await asyncio.gather(
            *(
                phone(
                    i,
                    target.url,
                    scene,
                    visits,
                    answers,
                    photo,
                    args.think,
                    stop,
                    stats,
                    args.phones,
                )
                for i in range(args.phones)
            )
        )
        wall = time.perf_counter() - t0
        cpu1 = bp.cpu_now(pids)
        log(f"waiting for {len(stats.photos)} photos to be processed ...")
        ready_s, counts = await wait_ready(target.dsn, stats.photos, args.ready_wait)
    finally:
        await conn.close()
    return report(args, target, stats, wall, ready_s, counts, cpu0, cpu1, photo)


def report(
    args: argparse.Namespace,
    target: bl.Target,
    stats: Stats,
    wall: float,
    ready_s: float,
    counts: Counter[str],
    cpu0: bp.Cpu,
    cpu1: bp.Cpu,
    photo: bp.Photo,
) -> int:
    out = print
    st = target.settings
    out("== bench_load ==")
    out(
        f"date:      {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC  (load average before "
        f"start: {' '.join(f'{x:.2f}' for x in args.loadavg)})"
    )
    out(f"machine:   nproc={os.cpu_count()}  {platform.system()} {platform.machine()}")
    if st is not None:
        out(
            f"server:    granian --workers {args.workers}  IMAGE_WORKERS={st.image_workers} "
            f"(per worker)  DB_POOL_MAX={st.db_pool_max}  PHOTO_QUEUE_MAX={st.photo_queue_max}  "
            f"PostgreSQL {target.durability}"
        )
    out(
        f"load:      {args.phones} phones, {args.seconds:g} s, think {args.think:g} s between "
        f"calls; a {len(photo.data):,} B 12 MP JPEG every {PHOTO_EVERY}th loop; "
        f"{stats.loops} loops done"
    )
    out("")
    bl.print_table_head(
        out, f"{'kind':<12} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}"
    )
    kinds = ("visits", "bundle 200", "bundle 304", "PUT draft", "PUT final", "  after photo")
    for kind in (*kinds, "photo ack"):
        lat = stats.lat.get(kind, [])
        errs = sum(n for k, n in stats.errors.items() if k.startswith(kind + " "))
        out(
            f"{kind:<12} {len(lat):>6} {pct(lat, 50) * 1000:>8.1f} {pct(lat, 99) * 1000:>8.1f} "
            f"{pct(lat, 100) * 1000:>8.1f} {errs:>6}"
        )
    acked = len(stats.photos)
    out(f"uploads acknowledged: {acked} in {wall:.1f} s = {acked / wall:.2f}/s")
    cpu = bp.cpu_pct(cpu0, cpu1)

    def share(k: str) -> str:
        v = cpu.get(k)
        return "?" if v is None else f"{v:.0f}%"

    out(
        f"cpu over the run (% of one core; the machine has {100 * (os.cpu_count() or 1)}%): "
        f"server {share('server')} (granian, image workers included)  postgres "
        f"{share('postgres')}  SeaweedFS {share('s3')}  load generator {share('client')}  "
        f"other processes {share('other')}"
    )
    other = cpu.get("other")
    if other is not None and other > 20:
        out(
            f"warning: other processes used {other:.0f}% of a core during the run: these "
            "figures are disturbed; rerun on a quiet machine"
        )
    out("")
    total_errors = sum(stats.errors.values())
    worst = {
        kind: pct(stats.lat.get(kind, []), 99) * 1000
        for kind in ("bundle 200", "bundle 304", "PUT draft", "PUT final")
    }
    ack_p99 = pct(stats.lat.get("photo ack", []), 99)
    goals = [
        ("errors", f"{total_errors}", "0", total_errors == 0),
        *(
            (f"{k} p99", f"{v:.1f} ms", f"< {P99_GOAL_MS:g} ms", v < P99_GOAL_MS)
            for k, v in worst.items()
        ),
        ("photo ack p99", f"{ack_p99:.2f} s", f"< {ACK_P99_GOAL_S:g} s", ack_p99 < ACK_P99_GOAL_S),
        (
            "every photo ready after the end",
            f"{ready_s:.1f} s ({dict(counts)})",
            f"<= {READY_GOAL_S:g} s",
            ready_s <= READY_GOAL_S and not counts.get("processing"),
        ),
    ]
    for name, value, goal, ok in goals:
        out(f"GOAL {name:<32} {value:<28} goal {goal:<10} {'PASS' if ok else 'FAIL'}")
    for k, n in stats.errors.items():
        out(f"errors: {k}: {n}")
    for sample in stats.samples:
        out(f"  e.g. {sample}")
    return 0 if all(ok for *_, ok in goals) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench_load",
        description=(__doc__ or "").split("\n")[0],
    )
    bl.add_numbers(
        p,
        phones=(50, "simulated phones (50)"),
        seconds=(60.0, "how long they run (60)"),
        think=(1.0, "pause between calls, s (1.0)"),
        workers=(
            int(os.environ.get("WORKERS", "2")),
            "granian worker processes (WORKERS, default 2)",
        ),
        ready_wait=(
            600.0,
            "how long to wait for the photos to be processed after the run, s "
            "(600; with PHOTO_JOB_INTERVAL_S=0 nothing processes them: give 1)",
        ),
    )
    bl.add_stack_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.loadavg = os.getloadavg()

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as d:
        os.chmod(d, 0o755)  # PostgreSQL runs as 'postgres' when we are root
        tmp = Path(d)
        log("making a ~1.6 MB 12 MP JPEG ...")
        pixels = bp.phone_pixels()
        exif = bp.phone_exif(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
        data, _ = bp.jpeg_near(pixels, exif, bp.ACK_TARGET_BYTES)
        photo = bp.Photo("jpeg", data, tmp / "PXL.jpg", "image/jpeg", "PXL.jpg")
        stack = bl.Stack(tmp, args.log_level, args.pg_fast, workers=args.workers)
        try:
            target = stack.start()
            pids = bp.Pids(target.server_pid, target.postgres_pid, bp.s3_pid(stack))
            return asyncio.run(run(args, target, photo, pids))
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        finally:
            stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
