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
import contextlib
import copy
import datetime as dt
import itertools
import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402

from inspections.wiring import MIGRATIONS  # noqa: E402
from service import db  # noqa: E402
from service.devstack import Postgres, SeaweedFS, free_port, granian_command  # noqa: E402
from service.settings import Settings  # noqa: E402

STARTERS = ROOT / "inspections" / "checklists" / "starter"
BUCKET = "coassess-bench"
PASSWORD = "bench horse battery staple"
N_QUESTIONS = 100
BUNDLE_GOAL = 0.60
NOT_MODIFIED_GOAL = 0.80
PUT_P99_GOAL_MS = 25.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIENTS = {
    "raw": "lean HTTP/1.1 client on asyncio streams (--client raw)",
    "httpx": "httpx.AsyncClient (--client httpx)",
}

# The starters' domains folded into six, one section each.
DOMAINS = {
    "dignity": ("Dignity and respect", "dignity"),
    "caring_and_involving": ("Dignity and respect", "dignity"),
    "food_and_drink": ("Food and drink", "food_and_drink"),
    "activities": ("Activities and daily life", "activities"),
    "environment": ("The environment", "environment"),
    "welcoming": ("The environment", "environment"),
    "staff_interaction": ("Staff and people together", "staff_interaction"),
    "well_organised_and_calm": ("Staff and people together", "staff_interaction"),
    "overall_impressions": ("Staff and people together", "staff_interaction"),
    "safety": ("Safety", "safety"),
    "safe": ("Safety", "safety"),
}
COMMENTS = [
    "Staff knocked and waited before going into two bedrooms we saw.",
    "Lunch was served hot; two residents were helped patiently and not rushed.",
    "The lounge was calm; the television was off and music was playing quietly.",
    "A fire door on the first floor was propped open with a chair.",
    "Relatives told us they are always made welcome, at any time of day.",
    "Hand gel dispensers at the entrance and outside the lifts were empty.",
]


def log(msg: str) -> None:
    """Progress goes to stderr; the report goes to stdout."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- content


def print_noise_and_log(out: Any, noisy: list[str], target: Any) -> None:
    """The closing lines every bench prints: disturbed scenarios and the server's errors."""
    if noisy:
        out(
            "warning: other processes used over 20% of a core during: "
            + "; ".join(noisy)
            + " -- these figures are disturbed; rerun on a quiet machine"
        )
    if target.log_file is not None:
        try:
            lines = target.log_file.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        bad = sum('"level":"ERROR"' in ln or "Traceback" in ln for ln in lines)
        out(f"server log: {len(lines)} lines, {bad} errors or tracebacks")


def build_checklist(n: int = N_QUESTIONS) -> dict[str, Any]:
    """A realistic checklist of ``n`` scored questions (the starters' wording, six domains)."""
    care = json.loads((STARTERS / "care_home_visit.json").read_text())
    ward = json.loads((STARTERS / "ward_walkround.json").read_text())
    pool = [
        q
        for doc in (care, ward)
        for s in doc["content"]["sections"]
        for q in s["questions"]
        if q["type"] in ("rating", "pass_fail", "yes_no")
    ]
    sections: dict[str, dict[str, Any]] = {}
    for title, _ in DOMAINS.values():
        sections.setdefault(title, {"title": title, "questions": []})
    for i in range(n):
        src = pool[i % len(pool)]
        q = copy.deepcopy(src)
        # The PUT bench measures answers, not photos: no question here requires one.
        q.pop("evidence", None)
        rnd = i // len(pool)
        if rnd:
            q["key"] = f"{src['key'][:56]}_r{rnd}"
        title, domain = DOMAINS[src["domain"]]
        q["domain"] = domain
        sections[title]["questions"].append(q)
    return {
        "title": f"Care home visit ({n} questions)",
        "description": care["description"],
        "service_kinds": ["care_home"],
        "contributors": care["contributors"],
        "content": {"sections": [s for s in sections.values() if s["questions"]]},
    }


def all_questions(checklist: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for s in checklist["content"]["sections"] for q in s["questions"]]


def build_answers(checklist: dict[str, Any]) -> list[dict[str, Any]]:
    """A complete, valid final answer set: mostly good answers, some N/A, a third commented."""
    out = []
    for i, q in enumerate(all_questions(checklist)):
        a: dict[str, Any] = {"question_key": q["key"]}
        if q.get("allow_na") and i % 9 == 0:
            a["na"] = True
        elif q["type"] == "rating":
            a["value"] = len(q["labels"]) - (i % 3 == 0)
        elif q["type"] == "pass_fail":
            a["value"] = ("pass", "pass", "qualified_pass")[i % 3]
        else:
            good = q.get("good_answer", True)
            a["value"] = good if i % 5 else not good
        if i % 3 == 0:
            a["comment"] = COMMENTS[i % len(COMMENTS)]
        out.append(a)
    return out


# --------------------------------------------------------------------------- CPU accounting


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime+cutime+cstime in clock ticks) for every process."""
    table = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        rest = stat.rpartition(")")[2].split()  # fields 3.. (comm may hold spaces)
        table[int(p.name)] = (int(rest[1]), sum(int(x) for x in rest[11:15]))
    return table


def tree_cpu(table: dict[int, tuple[int, int]], root: int | None) -> float | None:
    """CPU seconds of ``root`` and all its descendants (reaped children via cutime/cstime)."""
    if root is None or root not in table:
        return None
    kids: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        kids[ppid].append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += table[pid][1]
        stack.extend(kids[pid])
    return total / CLK_TCK


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class CpuSample:
    server: float | None
    postgres: float | None
    client: float
    machine: float


# --------------------------------------------------------------------------- the stack


@dataclass
class Target:
    url: str
    dsn: str
    server_pid: int | None = None
    postgres_pid: int | None = None
    settings: Settings | None = None
    durability: str = "unknown"
    log_file: Path | None = None

    def cpu(self) -> CpuSample:
        table = _proc_table() if (self.server_pid or self.postgres_pid) else {}
        return CpuSample(
            tree_cpu(table, self.server_pid),
            tree_cpu(table, self.postgres_pid),
            self_cpu(),
            machine_busy(),
        )


class Stack:
    """PostgreSQL, SeaweedFS and granian (one worker unless told) in ``tmp``; stop() undoes
    start()."""

    def __init__(self, tmp: Path, log_level: str, pg_fast: bool, workers: int = 1) -> None:
        self.tmp = tmp
        self.workers = workers
        self.log_level = log_level
        self.pg = Postgres(tmp / "pg", fast=pg_fast)
        self.s3 = SeaweedFS(tmp / "s3")
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log = tmp / "server.log"

    def start(self) -> Target:
        log(f"starting PostgreSQL in {self.pg.data_dir} ...")
        self.pg.start()
        dsn = self.pg.ensure_database("bench")
        applied = asyncio.run(db.migrate(dsn, MIGRATIONS))
        log(f"migrated: {', '.join(applied) or 'nothing pending'}")
        log(f"starting SeaweedFS in {self.s3.data_dir} ...")
        endpoint = self.s3.start()
        self.s3.ensure_bucket(BUCKET)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "S3_ENDPOINT_URL": endpoint,
            "S3_ACCESS_KEY": self.s3.access_key,
            "S3_SECRET_KEY": self.s3.secret_key,
            "S3_BUCKET": BUCKET,
            "JWT_SECRET": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "LOG_LEVEL": self.log_level,
            # The run lasts longer than the default 15 min only with very long --seconds.
            "ACCESS_TOKEN_TTL_S": os.environ.get("ACCESS_TOKEN_TTL_S", "7200"),
        }
        cmd = granian_command("127.0.0.1", port, workers=self.workers)
        log(f"starting granian on port {port} (log: {self.server_log}) ...")
        with self.server_log.open("wb") as out:
            self.server = subprocess.Popen(
                cmd,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop it in order
            )
        url = f"http://127.0.0.1:{port}"
        self._wait_ready(url)
        pg_pid = int((self.pg.data_dir / "postmaster.pid").read_text().split()[0])
        durability = "fsync off (--pg-fast)" if self.pg.fast else "durable (fsync on)"
        return Target(
            url, dsn, self.server.pid, pg_pid, Settings.from_env(env), durability, self.server_log
        )

    def _wait_ready(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=url, trust_env=False, timeout=3) as c:
            while True:
                assert self.server is not None
                if self.server.poll() is not None:
                    raise RuntimeError(
                        f"granian exited with code {self.server.returncode}:\n{self._log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if c.get("/ready").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"GET /ready not 200 after {timeout:.0f} s:\n{self._log_tail()}"
                    )
                time.sleep(0.1)

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.server_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        log("stopping granian, SeaweedFS and PostgreSQL ...")
        server, self.server = self.server, None
        if server is not None:
            try:
                if server.poll() is None:
                    server.terminate()
                    try:
                        server.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(server.pid, signal.SIGKILL)
                        server.wait(timeout=10)
                # A worker left behind in granian's session (its own process group).
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(server.pid, signal.SIGKILL)
            except Exception as e:  # keep going: the other services must stop too
                log(f"warning: stopping granian: {e}")
        for name, stop in (("SeaweedFS", self.s3.stop), ("PostgreSQL", self.pg.stop)):
            try:
                stop()
            except Exception as e:
                log(f"warning: stopping {name}: {e}")


# --------------------------------------------------------------------------- seeding


@dataclass
class Scene:
    org: uuid.UUID
    coordinator: uuid.UUID
    citizens: list[uuid.UUID]
    pro: uuid.UUID
    service_id: str
    checklist_id: str
    checklist_version: int
    visit_id: str
    citizen_auth: dict[str, str]
    checklist: dict[str, Any]
    bundle_etag: str = ""
    bundle_bytes: int = 0


async def seed(conn: asyncpg.Connection, client: httpx.AsyncClient) -> Scene:
    """People through SQL (as the CLI does); everything else through the API."""
    run = uuid.uuid4().hex[:8]
    # The app's default argon2 cost, so sign-in verifies what production would.
    defaults = Settings()
    pw_hash = PasswordHasher(
        time_cost=defaults.argon2_time_cost, memory_cost=defaults.argon2_memory_kib
    ).hash(PASSWORD)
    today = dt.date.today()
    org = await conn.fetchval(
        "insert into organisations (name) values ($1) returning id", f"Bench Council {run}"
    )

    async def user(kind: str, name: str, *roles: str) -> tuple[uuid.UUID, str]:
        email = f"{kind}.{run}@bench.example.org"
        uid = await conn.fetchval(
            """insert into users (organisation_id, email, display_name, password_hash, roles)
               values ($1, $2, $3, $4, $5) returning id""",
            org,
            email,
            name,
            pw_hash,
            list(roles),
        )
        return uid, email

    coord, coord_email = await user("coord", "Casey Coordinator", "coordinator")
    citizens = []
    citizen_email = ""
    for kind, name in (("ann", "Ann Citizen"), ("bob", "Bob Citizen")):
        uid, email = await user(kind, name, "citizen_inspector")
        citizens.append(uid)
        citizen_email = citizen_email or email
        for training in ("course", "safeguarding_check"):
            await conn.execute(
                """insert into training_records
                       (organisation_id, user_id, kind, course, completed_on, expires_on)
                   values ($1, $2, $3, 'Lay assessor training', $4, $5)""",
                org,
                uid,
                training,
                today - dt.timedelta(days=30),
                today + dt.timedelta(days=365),
            )
    pro, _ = await user("pro", "Dr Pat Professional", "professional_inspector")

    async def sign_in(email: str) -> dict[str, str]:
        r = await client.post(
            "/v1/auth/token", json={"email": email, "password": PASSWORD, "device": "bench"}
        )
        _check(r, 200, "sign in")
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    coord_auth = await sign_in(coord_email)
    citizen_auth = await sign_in(citizen_email)
    r = await client.post(
        "/v1/services",
        headers=coord_auth,
        json={
            "name": "Elm House Care Home",
            "kind": "care_home",
            "address": "1 Elm Road, Northshire NS1 2AB",
            "lat": 52.1,
            "lon": -1.2,
        },
    )
    _check(r, 201, "create service")
    service_id = r.json()["id"]
    checklist = build_checklist()
    r = await client.post("/v1/checklists", headers=coord_auth, json=checklist)
    _check(r, 201, "create checklist")
    checklist_id = r.json()["id"]
    r = await client.post(f"/v1/checklists/{checklist_id}/publish", headers=coord_auth)
    _check(r, 200, "publish checklist")
    version = r.json()["version"]
    now = dt.datetime.now(dt.UTC)
    r = await client.post(
        "/v1/visits",
        headers=coord_auth,
        json={
            "service_id": service_id,
            "checklist_id": checklist_id,
            "starts_at": (now + dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(hours=4)).isoformat(),
            "team": [
                {"user_id": str(citizens[0]), "perspective": "citizen"},
                {"user_id": str(citizens[1]), "perspective": "citizen"},
                {"user_id": str(pro), "perspective": "professional", "lead": True},
            ],
        },
    )
    _check(r, 201, "create visit")
    scene = Scene(
        org=org,
        coordinator=coord,
        citizens=citizens,
        pro=pro,
        service_id=service_id,
        checklist_id=checklist_id,
        checklist_version=version,
        visit_id=r.json()["id"],
        citizen_auth=citizen_auth,
        checklist=checklist,
    )
    r = await client.get(f"/v1/visits/{scene.visit_id}/bundle", headers=citizen_auth)
    _check(r, 200, "bundle")
    scene.bundle_etag, scene.bundle_bytes = r.headers["etag"], len(r.content)
    r = await client.get(
        f"/v1/visits/{scene.visit_id}/bundle",
        headers={**citizen_auth, "If-None-Match": scene.bundle_etag},
    )
    _check(r, 304, "bundle If-None-Match")
    return scene


def _check(r: httpx.Response, status: int, what: str) -> None:
    if r.status_code != status:
        raise RuntimeError(f"{what}: expected {status}, got {r.status_code}: {r.text[:2000]}")


class VisitPool:
    """Fresh visits (same service, checklist and team) made by SQL, one per final PUT."""

    BATCH = 500

    def __init__(self, conn: asyncpg.Connection, scene: Scene) -> None:
        self.conn, self.scene = conn, scene
        self.ids: deque[str] = deque()
        self.lock = asyncio.Lock()
        self.topped_up = 0

    async def add(self, n: int) -> None:
        visit_ids = await self.create(n)
        await self.conn.execute("analyze visits, visit_members")
        self.ids.extend(str(v) for v in visit_ids)

    async def create(self, n: int, days_ago: int = 0) -> list[uuid.UUID]:
        s = self.scene
        now = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
        async with self.conn.transaction():
            ids = await self.conn.fetch(
                """insert into visits (organisation_id, service_id, checklist_id,
                                       checklist_version, starts_at, ends_at, created_by)
                   select $1, $2, $3, $4, $5, $6, $7 from generate_series(1, $8)
                   returning id""",
                s.org,
                uuid.UUID(s.service_id),
                uuid.UUID(s.checklist_id),
                s.checklist_version,
                now + dt.timedelta(hours=1),
                now + dt.timedelta(hours=4),
                s.coordinator,
                n,
            )
            visit_ids = [r["id"] for r in ids]
            await self.conn.execute(
                """insert into visit_members (visit_id, user_id, organisation_id, perspective,
                                              is_lead)
                   select v, m.u, $2, m.p, m.l
                     from unnest($1::uuid[]) v
                     cross join unnest($3::uuid[], $4::text[], $5::bool[]) as m(u, p, l)""",
                visit_ids,
                s.org,
                [*s.citizens, s.pro],
                ["citizen", "citizen", "professional"],
                [False, False, True],
            )
        return visit_ids

    async def take(self) -> str:
        if not self.ids:
            async with self.lock:
                if not self.ids:
                    await self.add(self.BATCH)
                    self.topped_up += self.BATCH
        return self.ids.popleft()


async def seed_history(pool: VisitPool, visits: int) -> int:
    """Past visits with every member's final submission, written by SQL, then VACUUM ANALYZE.

    A production database is not empty: without history (and statistics) PostgreSQL plans
    the app's prepared statements and the answers->submissions foreign-key check for empty
    tables, as sequential scans, and every PUT gets slower as the run fills the tables.
    Returns the number of answer rows written.
    """
    s, conn = pool.scene, pool.conn
    qs = all_questions(s.checklist)
    answers = build_answers(s.checklist)
    cols: dict[str, list[Any]] = defaultdict(list)
    for i, (q, a) in enumerate(zip(qs, answers, strict=True)):
        value = a.get("value")
        if a.get("na"):
            earned = top = None
        elif q["type"] == "rating":
            earned, top = float(value), float(len(q["labels"]))
        elif q["type"] == "pass_fail":
            earned, top = {"pass": 2.0, "qualified_pass": 1.0, "fail": 0.0}[value], 2.0
        else:
            earned, top = (2.0 if value == q.get("good_answer", True) else 0.0), 2.0
        cols["p"].append(i)
        cols["k"].append(q["key"])
        cols["d"].append(q["domain"])
        cols["v"].append(None if value is None else json.dumps(value))
        cols["n"].append(bool(a.get("na")))
        cols["c"].append(a.get("comment"))
        cols["pt"].append(earned)
        cols["mx"].append(top)
        cols["w"].append(float(q.get("weight", 1.0)))
    rows = 0
    for start in range(0, visits, 200):
        batch = min(200, visits - start)
        visit_ids = await pool.create(batch, days_ago=30 + start // 20)
        async with conn.transaction():
            subs = await conn.fetch(
                """insert into submissions (id, organisation_id, visit_id, user_id, perspective,
                       state, body_hash, device, finalised_at)
                   select gen_random_uuid(), $2, m.visit_id, m.user_id, m.perspective, 'final',
                          sha256(m.visit_id::text::bytea || m.user_id::text::bytea),
                          'history', now()
                     from visit_members m where m.visit_id = any($1::uuid[])
                   returning id""",
                visit_ids,
                s.org,
            )
            await conn.execute(
                """insert into answers (submission_id, organisation_id, position, question_key,
                                        domain, value, na, comment, points, max_points, weight)
                   select sid, $2, p, k, d, v::jsonb, n, c, pt, mx, w
                     from unnest($1::uuid[]) sid
                     cross join unnest($3::int[], $4::text[], $5::text[], $6::text[],
                                       $7::bool[], $8::text[], $9::real[], $10::real[],
                                       $11::real[]) as t(p, k, d, v, n, c, pt, mx, w)""",
                [r["id"] for r in subs],
                s.org,
                *cols.values(),
            )
            await conn.execute(
                "update visits set status = 'submitted' where id = any($1::uuid[])", visit_ids
            )
        rows += len(subs) * len(qs)
    await conn.execute("vacuum analyze")
    return rows


# --------------------------------------------------------------------------- clients


class RawConnection:
    """A lean HTTP/1.1 keep-alive connection on asyncio streams (about 30-60 us per request).

    httpx.AsyncClient costs 0.5-1.2 ms of CPU per request here, which caps it below the
    server's ceiling on this 2-core machine; this client keeps the load generator out of
    the way. It handles Content-Length, chunked and bodiless (304) responses.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_headers: dict[bytes, bytes] = {}

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=1 << 20
            )
        reader, writer = self.reader, self.writer
        assert reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            fields = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(b":")
                    fields[k.strip().lower()] = v.strip()
            if status in (204, 304) or status < 200 or method == "HEAD":
                content = b""
            elif b"content-length" in fields:
                content = await reader.readexactly(int(fields[b"content-length"]))
            elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
                parts = []
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    parts.append((await reader.readexactly(size + 2))[:-2])
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass  # trailers
                content = b"".join(parts)
            else:
                content = await reader.read()
                fields[b"connection"] = b"close"
        except BaseException:
            self.close()
            raise
        if fields.get(b"connection", b"").lower() == b"close":
            self.close()
        self.last_headers = fields  # lower-cased names, for callers that need one (ETag)
        return status, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class HttpxConnection:
    """The same interface over a shared httpx.AsyncClient (--client httpx)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        r = await self.client.request(method, path, headers=headers, content=body)
        return r.status_code, r.content

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- load


Request = tuple[str, str, dict[str, str], bytes | None, Any]


@dataclass
class Scenario:
    name: str
    concurrency: int
    expect: int
    make: Callable[[], Awaitable[Request]]
    on_ok: Callable[[Any], None] | None = None


@dataclass
class Result:
    name: str
    concurrency: int
    seconds: float
    latencies: list[float]
    statuses: Counter[Any]
    expect: int
    samples: list[str]
    cpu0: CpuSample
    cpu1: CpuSample
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return self.n - self.statuses.get(self.expect, 0)

    @property
    def rps(self) -> float:
        return self.n / self.seconds

    def pct(self, p: float) -> float:
        """Nearest-rank percentile in ms."""
        if not self.latencies:
            return math.nan
        s = sorted(self.latencies)
        return s[max(0, math.ceil(p / 100 * len(s)) - 1)] * 1000

    def cpu_pct(self, which: str) -> float | None:
        a, b = getattr(self.cpu0, which), getattr(self.cpu1, which)
        return None if a is None or b is None else (b - a) / self.seconds * 100

    def other_pct(self) -> float | None:
        """CPU used by everything else on the machine (another test run, say)."""
        parts = [self.cpu_pct(k) for k in ("server", "postgres", "client")]
        if any(x is None for x in parts):
            return None
        return self.cpu_pct("machine") - sum(parts)  # type: ignore[operator, arg-type]

    def server_us_per_req(self) -> float | None:
        if self.cpu0.server is None or self.cpu1.server is None or not self.n:
            return None
        return (self.cpu1.server - self.cpu0.server) / self.n * 1e6


async def run(
    target: Target, sc: Scenario, seconds: float, warmup: float, client_kind: str
) -> Result:
    log(f"  {sc.name} (concurrency {sc.concurrency}): {warmup:g} s warm-up + {seconds:g} s ...")
    latencies: list[float] = []
    statuses: Counter[Any] = Counter()
    samples: list[str] = []
    cpu: list[CpuSample] = []
    async with contextlib.AsyncExitStack() as stack:
        if client_kind == "httpx":
            limits = httpx.Limits(
                max_connections=sc.concurrency, max_keepalive_connections=sc.concurrency
            )
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=target.url, limits=limits, timeout=30, trust_env=False, http2=False
                )
            )
            conns: list[RawConnection | HttpxConnection] = [
                HttpxConnection(client) for _ in range(sc.concurrency)
            ]
        else:
            u = httpx.URL(target.url)
            conns = [RawConnection(u.host, u.port or 80) for _ in range(sc.concurrency)]
            for c in conns:
                stack.callback(c.close)
        start = time.perf_counter()
        ws, we = start + warmup, start + warmup + seconds

        async def sampler() -> None:
            await asyncio.sleep(max(0.0, ws - time.perf_counter()))
            cpu.append(target.cpu())
            await asyncio.sleep(max(0.0, we - time.perf_counter()))
            cpu.append(target.cpu())

        async def worker(conn: RawConnection | HttpxConnection) -> None:
            perf = time.perf_counter
            while perf() < we:
                method, url, headers, body, tag = await sc.make()
                t0 = perf()
                try:
                    status, content = await conn.request(method, url, headers, body)
                except (
                    OSError,
                    EOFError,
                    ValueError,
                    IndexError,
                    asyncio.LimitOverrunError,
                    httpx.HTTPError,
                ) as e:
                    status, content = type(e).__name__, str(e).encode()
                t1 = perf()
                if status == sc.expect:
                    if sc.on_ok is not None:
                        sc.on_ok(tag)
                elif len(samples) < 3:
                    text = content[:300].decode(errors="replace")
                    samples.append(f"{method} {url} -> {status}: {text}")
                if t0 >= ws:
                    latencies.append(t1 - t0)
                    statuses[status] += 1

        # A server that stops answering fails the run instead of hanging it.
        async with asyncio.timeout(warmup + seconds + 60):
            await asyncio.gather(sampler(), *(worker(c) for c in conns))
    return Result(
        sc.name, sc.concurrency, seconds, latencies, statuses, sc.expect, samples, cpu[0], cpu[1]
    )


# --------------------------------------------------------------------------- report


def fmt(v: float | None, width: int, unit: str = "") -> str:
    """``v`` rounded, right-aligned in ``width`` (unit included); "-" when unknown."""
    if v is None or math.isnan(v):
        return "-".rjust(width)
    return f"{v:.0f}{unit}".rjust(width)


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
    out("== bench_bundle ==")
    out(
        f"date:        {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC  "
        f"(load average before start: {args.loadavg[0]:.2f} {args.loadavg[1]:.2f} "
        f"{args.loadavg[2]:.2f})"
    )
    out(
        f"machine:     nproc={os.cpu_count()}  {platform.system()} {platform.machine()}  "
        f"Python {platform.python_version()}"
    )
    out(
        f"software:    granian {pkg_version('granian')}  litestar {pkg_version('litestar')}  "
        f"msgspec {pkg_version('msgspec')}  asyncpg {pkg_version('asyncpg')}  "
        f"httpx {pkg_version('httpx')}  PostgreSQL {pg_version}"
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
    head = (
        f"{'scenario':<40} {'conc':>4} {'requests':>8} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'p99.9 ms':>8} {'errors':>6} {'srv cpu':>7} {'pg cpu':>6} "
        f"{'cli cpu':>7} {'other':>6} {'srv us/req':>10}"
    )
    out(head)
    out("-" * len(head))
    for r in results.values():
        out(
            f"{r.name:<40} {r.concurrency:>4} {r.n:>8} {r.rps:>8.0f} {r.pct(50):>7.2f} "
            f"{r.pct(99):>7.2f} {r.pct(99.9):>8.2f} {r.errors:>6} "
            f"{fmt(r.cpu_pct('server'), 7, '%')} {fmt(r.cpu_pct('postgres'), 6, '%')} "
            f"{fmt(r.cpu_pct('client'), 7, '%')} {fmt(r.other_pct(), 6, '%')} "
            f"{fmt(r.server_us_per_req(), 10)}"
        )
    out(
        "(cpu: % of one core over the measured window; srv = granian process tree, pg = the "
        "PostgreSQL cluster, cli = this load generator, other = the rest of the machine)"
    )
    problems = [r for r in results.values() if r.errors or r.notes]
    for r in problems:
        if r.errors:
            bad = {k: v for k, v in r.statuses.items() if k != r.expect}
            out(f"errors in {r.name}: expected {r.expect}, got {dict(bad)}")
            for s in r.samples:
                out(f"  {s}")
        for note in r.notes:
            out(f"note on {r.name}: {note}")
    out("")
    ceiling = results["ceiling"]
    for key, label, goal in (
        ("bundle200", "bundle 200 / ceiling, req/s", BUNDLE_GOAL),
        ("bundle304", "bundle 304 / ceiling, req/s", NOT_MODIFIED_GOAL),
    ):
        r = results[key]
        ratio = r.rps / ceiling.rps if ceiling.rps else 0.0
        verdict = "PASS" if ratio >= goal and not r.errors else "FAIL"
        cost = r.server_us_per_req(), ceiling.server_us_per_req()
        extra = (
            f"   (server CPU/request {cost[0] / cost[1]:.1f}x the ceiling's)" if all(cost) else ""
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


async def _asgi_calls(app: Any, path: str, headers: dict[str, str], n: int) -> set[int]:
    """Call the app ``n`` times as granian would (no HTTP parsing, no sockets)."""
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

    app = create_app(settings)
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
        for label, path, headers in (
            ("GET /health (the ceiling)", "/health", {}),
            ("bundle 304", url, inm),
        ):
            await _asgi_calls(app, path, headers, n // 10)
            t0 = time.process_time()
            got = await _asgi_calls(app, path, headers, n)
            rows.append((f"{label} -> {sorted(got)}", _cpu_us(t0, n)))
        state = app.state
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
        rest = rows[1][1] - rows[2][1] - rows[4][1]
        print(
            f"  {'  the rest: routing, JWT middleware, handler, response':<52} {rest:8.0f}"
            f"   (/health: {rows[0][1]:.0f})"
        )
        print("  pool acquire/release saved by the held connection:"
              f" {rows[3][1] - rows[2][1]:.0f} us per request")  # fmt: skip
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        await _asgi_calls(app, url, inm, n)
        profile.disable()
        print("  the 304's own-time leaders (cProfile, process time, all requests):")
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
    p.add_argument("--concurrency", type=int, default=16, help="GET scenarios (default 16)")
    p.add_argument(
        "--put-concurrency", type=int, default=4, help="second PUT run (default 4; first is 1)"
    )
    p.add_argument("--seconds", type=float, default=10.0, help="measured per scenario (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured warm-up (2)")
    p.add_argument(
        "--history",
        type=int,
        default=500,
        help="past visits seeded by SQL, each with 3 final submissions of 100 answers, so "
        "tables and statistics are not empty (default 500; 0 for none)",
    )
    p.add_argument(
        "--log-level", default="WARNING", help="the server's LOG_LEVEL (default WARNING)"
    )
    p.add_argument(
        "--pg-fast",
        action="store_true",
        help="PostgreSQL without fsync/synchronous_commit (default: durable, like production)",
    )
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


def run_on_stack(
    args: argparse.Namespace,
    prefix: str,
    bench_fn: Callable[[argparse.Namespace, Target], Awaitable[int]],
) -> int:
    """Run a benchmark against --url/--dsn, or else a throwaway Stack in a temp folder
    that is torn down however the run ends (Ctrl-C, SIGTERM or an error)."""
    args.loadavg = os.getloadavg()

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    if args.url:
        return asyncio.run(bench_fn(args, Target(args.url.rstrip("/"), args.dsn)))
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        os.chmod(d, 0o755)  # PostgreSQL runs as 'postgres' when we are root
        stack = Stack(Path(d), args.log_level, args.pg_fast)
        try:
            target = stack.start()
            return asyncio.run(bench_fn(args, target))
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        finally:
            stack.stop()


def main(argv: list[str] | None = None) -> int:
    return run_on_stack(parse_args(argv), "bench-bundle-", bench)


if __name__ == "__main__":
    raise SystemExit(main())
