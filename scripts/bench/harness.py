"""What every benchmark shares: a throwaway PostgreSQL + SeaweedFS and a granian server
(Stack), seeding, a small HTTP/1.1 client, scenarios run at a concurrency, CPU from
/proc, and the report's formatting."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime as dt
import functools
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
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
from argon2 import PasswordHasher

from inspections.demo import ELM_HOUSE
from inspections.wiring import MIGRATIONS
from service import db
from service.devstack import Postgres, SeaweedFS, free_port, granian_command
from service.generation import counter_path
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

STARTERS = ROOT / "inspections" / "checklists" / "starter"
BUCKET = "coassess-bench"
PASSWORD = "bench horse battery staple"
N_QUESTIONS = 100
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


def print_header(
    out: Any, name: str, loadavg: tuple[float, ...], pg_version: str, packages: list[str]
) -> None:
    """The opening lines every bench prints: what, when, on what machine, with what."""
    out(f"== {name} ==")
    out(
        f"date:        {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC  (load average before "
        f"start: {loadavg[0]:.2f} {loadavg[1]:.2f} {loadavg[2]:.2f})"
    )
    out(
        f"machine:     nproc={os.cpu_count()}  {platform.system()} {platform.machine()}  "
        f"Python {platform.python_version()}"
    )
    versions = "  ".join(f"{p} {pkg_version(p)}" for p in packages)
    out(f"software:    {versions}  PostgreSQL {pg_version}")


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


def print_table_head(out: Any, head: str) -> None:
    """A results table's column titles and a rule as wide under them."""
    out(head)
    out("-" * len(head))


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


# --------------------------------------------------------------------------- which worker answered


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``: a server's workers."""
    return [child for child, (ppid, _) in _proc_table().items() if ppid == pid]


def socket_owner(port: int, client_port: int, workers: list[int]) -> int | None:
    """The worker holding the server end of our connection from ``client_port`` to ``port``
    (from /proc/net/tcp and each worker's fds); None if no worker holds it (not accepted)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and int(f[2].split(":")[1], 16) == client_port:
            inode = f[9]
    if inode is None or inode == "0":
        return None
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # an fd closed while we looked
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
    return None


async def fresh_request(
    port: int,
    workers: list[int],
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    source: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes, int | None]:
    """One request (``body`` as JSON) on a brand-new connection from ``source``: (status,
    headers, body, the worker pid that answered or None). Raw HTTP/1.1, so the connection
    is ours to trace in /proc."""
    conn = RawConnection("127.0.0.1", port, source)
    data = None
    if body is not None:
        data, headers = msgspec.json.encode(body), {**headers, "Content-Type": "application/json"}
    try:
        status, content = await conn.request(method, path, headers, data)
        # Still connected: the worker that accepted us holds the socket.
        sock = conn.writer.get_extra_info("sockname") if conn.writer else None
        worker = socket_owner(port, sock[1], workers) if sock else None
    finally:
        conn.close()
    fields = {k.decode("latin-1"): v.decode("latin-1") for k, v in conn.last_headers.items()}
    return status, fields, content, worker


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
        self.dsn: str | None = None

    def start(self) -> Target:
        log(f"starting PostgreSQL in {self.pg.data_dir} ...")
        self.pg.start()
        dsn = self.dsn = self.pg.ensure_database("bench")
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
        if self.dsn:  # the servers' shared write generation for this throwaway database
            counter_path(self.dsn).unlink(missing_ok=True)


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


# People go in through SQL (as the CLI does); everything else through the API. Each bench
# seeds its own organisation with these, so one run never sees another's.


@functools.cache
def password_hash() -> str:
    """PASSWORD at the app's default argon2 cost, so sign-in verifies what production would."""
    defaults = Settings()
    return PasswordHasher(
        time_cost=defaults.argon2_time_cost, memory_cost=defaults.argon2_memory_kib
    ).hash(PASSWORD)


async def add_org(conn: asyncpg.Connection, name: str) -> uuid.UUID:
    org = await conn.fetchval("insert into organisations (name) values ($1) returning id", name)
    assert org is not None  # insert ... returning: always a row
    return org


async def add_user(
    conn: asyncpg.Connection,
    org: uuid.UUID,
    email: str,
    name: str,
    roles: Sequence[str],
    pw_hash: str | None = None,
) -> uuid.UUID:
    """A person who signs in with PASSWORD (hashed as ``pw_hash`` when a bench wants it cheap)."""
    user_id = await conn.fetchval(
        """insert into users (organisation_id, email, display_name, password_hash, roles)
           values ($1, $2, $3, $4, $5) returning id""",
        org,
        email,
        name,
        pw_hash or password_hash(),
        list(roles),
    )
    assert user_id is not None  # insert ... returning: always a row
    return user_id


async def clear_to_inspect(conn: asyncpg.Connection, org: uuid.UUID, user_id: uuid.UUID) -> None:
    """Training and a safeguarding check done a month ago, valid for a year: cleared."""
    today = dt.date.today()
    for kind in ("course", "safeguarding_check"):
        await conn.execute(
            """insert into training_records
                   (organisation_id, user_id, kind, course, completed_on, expires_on)
               values ($1, $2, $3, 'Lay assessor training', $4, $5)""",
            org,
            user_id,
            kind,
            today - dt.timedelta(days=30),
            today + dt.timedelta(days=365),
        )


async def sign_in(client: httpx.AsyncClient, email: str, device: str = "bench") -> dict[str, str]:
    """The Authorization header of ``email`` signed in (with PASSWORD) on ``device``."""
    r = await client.post(
        "/v1/auth/token", json={"email": email, "password": PASSWORD, "device": device}
    )
    _check(r, 200, "sign in")
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def add_service(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    """The care home every bench inspects; its id."""
    r = await client.post("/v1/services", headers=auth, json=ELM_HOUSE)
    _check(r, 201, "create service")
    return r.json()["id"]


async def add_checklist(
    client: httpx.AsyncClient, auth: dict[str, str], content: dict[str, Any]
) -> tuple[str, int]:
    """``content`` made a checklist and published: (its id, the published version)."""
    r = await client.post("/v1/checklists", headers=auth, json=content)
    _check(r, 201, "create checklist")
    checklist_id = r.json()["id"]
    r = await client.post(f"/v1/checklists/{checklist_id}/publish", headers=auth)
    _check(r, 200, "publish checklist")
    return checklist_id, r.json()["version"]


async def add_visit(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    service_id: str,
    checklist_id: str,
    starts_at: dt.datetime,
    hours: float,
    team: list[dict[str, Any]],
) -> str:
    """A visit of ``team`` lasting ``hours`` from ``starts_at``; its id."""
    r = await client.post(
        "/v1/visits",
        headers=auth,
        json={
            "service_id": service_id,
            "checklist_id": checklist_id,
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + dt.timedelta(hours=hours)).isoformat(),
            "team": team,
        },
    )
    _check(r, 201, "create visit")
    return r.json()["id"]


async def seed(conn: asyncpg.Connection, client: httpx.AsyncClient) -> Scene:
    """Two cleared citizens and a professional on a visit to the care home, in an hour."""
    run = uuid.uuid4().hex[:8]
    org = await add_org(conn, f"Bench Council {run}")

    async def user(kind: str, name: str, *roles: str) -> tuple[uuid.UUID, str]:
        email = f"{kind}.{run}@bench.example.org"
        return await add_user(conn, org, email, name, roles), email

    coord, coord_email = await user("coord", "Casey Coordinator", "coordinator")
    citizens = []
    citizen_email = ""
    for kind, name in (("ann", "Ann Citizen"), ("bob", "Bob Citizen")):
        uid, email = await user(kind, name, "citizen_inspector")
        citizens.append(uid)
        citizen_email = citizen_email or email
        await clear_to_inspect(conn, org, uid)
    pro, _ = await user("pro", "Dr Pat Professional", "professional_inspector")
    coord_auth = await sign_in(client, coord_email)
    citizen_auth = await sign_in(client, citizen_email)
    service_id = await add_service(client, coord_auth)
    checklist = build_checklist()
    checklist_id, version = await add_checklist(client, coord_auth, checklist)
    team = [
        {"user_id": str(citizens[0]), "perspective": "citizen"},
        {"user_id": str(citizens[1]), "perspective": "citizen"},
        {"user_id": str(pro), "perspective": "professional", "lead": True},
    ]
    in_an_hour = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    visit_id = await add_visit(client, coord_auth, service_id, checklist_id, in_an_hour, 3, team)
    scene = Scene(
        org=org,
        coordinator=coord,
        citizens=citizens,
        pro=pro,
        service_id=service_id,
        checklist_id=checklist_id,
        checklist_version=version,
        visit_id=visit_id,
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
        value: Any = a.get("value")
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

    def __init__(self, host: str, port: int, source: str | None = None) -> None:
        self.host, self.port = host, port
        self.local_addr = (source, 0) if source else None  # the address it connects from
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_headers: dict[bytes, bytes] = {}

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=1 << 20, local_addr=self.local_addr
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


# The titles of the CPU columns of a table of Results (the cells: Result.cpu_cells).
CPU_HEAD = f"{'srv cpu':>7} {'pg cpu':>6} {'cli cpu':>7} {'other':>6}"


def cpu_legend(cli: str, more: str = "") -> str:
    """What the CPU columns mean, ``cli`` saying what this process is (``more``: a note)."""
    return (
        "(cpu: % of one core over the measured window; srv = granian process tree, pg = the "
        f"PostgreSQL cluster, cli = {cli}, other = the rest of the machine{more})"
    )


def print_problems(out: Any, results: Iterable[Result]) -> None:
    """Each scenario's notes, and its answers other than the expected status with samples."""
    for r in results:
        for note in r.notes:
            out(f"note on {r.name}: {note}")
        if r.errors:
            bad = {k: v for k, v in r.statuses.items() if k != r.expect}
            out(f"errors in {r.name}: expected {r.expect}, got {dict(bad)}")
            for sample in r.samples:
                out(f"  {sample}")


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

    def cpu_cells(self) -> str:
        """This scenario's CPU columns, as wide as CPU_HEAD's titles."""
        return (
            f"{fmt(self.cpu_pct('server'), 7, '%')} {fmt(self.cpu_pct('postgres'), 6, '%')} "
            f"{fmt(self.cpu_pct('client'), 7, '%')} {fmt(self.other_pct(), 6, '%')}"
        )

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


def add_numbers(p: argparse.ArgumentParser, **options: tuple[float, str]) -> None:
    """Numeric options as a table, ``heic_n=(5, "help")`` for ``--heic-n``: each one's type
    is its default's (int or float)."""
    for name, (default, help_) in options.items():
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, type=type(default), default=default, help=help_)


def add_stack_options(p: argparse.ArgumentParser) -> None:
    """The options the Stack of run_on_stack reads: the server's LOG_LEVEL, and whether
    PostgreSQL may skip durability."""
    p.add_argument(
        "--log-level", default="WARNING", help="the server's LOG_LEVEL (default WARNING)"
    )
    p.add_argument(
        "--pg-fast",
        action="store_true",
        help="PostgreSQL without fsync/synchronous_commit (default: durable, like production)",
    )


def run_on_stack(
    args: argparse.Namespace,
    prefix: str,
    bench_fn: Callable[[argparse.Namespace, Target], Coroutine[Any, Any, int]],
    workers: int = 1,
) -> int:
    """Run a benchmark against --url/--dsn, or else a throwaway Stack (granian with
    ``workers`` processes) in a temp folder that is torn down however the run ends (Ctrl-C,
    SIGTERM or an error)."""
    args.loadavg = os.getloadavg()

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    if args.url:
        return asyncio.run(bench_fn(args, Target(args.url.rstrip("/"), args.dsn)))
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        os.chmod(d, 0o755)  # PostgreSQL runs as 'postgres' when we are root
        stack = Stack(Path(d), args.log_level, args.pg_fast, workers)
        try:
            target = stack.start()
            return asyncio.run(bench_fn(args, target))
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        finally:
            stack.stop()
