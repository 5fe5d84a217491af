"""A realistic large organisation for scorecard benchmarks (see scripts/seed_bulk).

One organisation, "Bulk County Council": a coordinator, a scrutiny member, ~300 cleared
citizen inspectors, ~80 professional inspectors and some service managers; 1,000 services
of five kinds; the two starter checklists, published; 20,000 visits over the last three
years with their teams; every member's submission with an answer to every scored question
(and to some unscored ones), so about 1,000,000 answers; and ``submission_scores`` exactly
as ``_write_scores`` would have written them at finalisation.

    scripts/seed_bulk                           # into the embedded database of scripts/serve
    scripts/seed_bulk --dsn postgresql://...    # into that database (migrated first)
    scripts/seed_bulk --services 200 --visits 4000 --seed 7

Everything is made in Python from one fixed random seed and loaded with COPY
(``copy_records_to_table``) in a single transaction: a failure leaves nothing behind. No
constraint, trigger or index is disabled; the answers stream into COPY while they are
generated, so PostgreSQL works on one core while Python works on the other.

How the data is shaped (so scorecards look like real ones):

- services: care_home 40%, gp_surgery 25%, hospital_ward 20%, home_care 10%, library 5%,
  around one county (lat/lon near Leicester); wards of one hospital share its site.
- checklists: the care-home visit is used for care_home and home_care, the ward
  walk-round (15 Steps) for hospital_ward, gp_surgery and library; their published
  versions say so in ``service_kinds``, as the visits API requires.
- visits: more at some services (log-normal), slightly more in recent months; weekdays,
  daytime; 5% cancelled (no submissions); some still in progress (one member's
  draft; mostly in the last two weeks). Loaded in time order, as a real database fills up.
  Teams: mostly 2 citizens + 1 professional; also 1 + 1, 3 + 1, 2 + 2 and citizens only.
- answers: each service has a quality that drifts (some improve, some decline), domains
  differ, each visit and each inspector adds a little noise; citizens rate dignity lower
  than professionals at a quarter of care homes, "caring and involving" lower at some
  wards, and professionals are stricter on safety. Some N/A where a question allows it
  (citizens often are not shown where medicines are kept). Photo evidence is not seeded.
- points, max_points and weight come from the real ``points``/``max_points`` of
  inspections/checklists/questions.py; ``submission_scores`` holds, per final submission
  and domain, sum(weight * points), sum(weight * max_points) and the count over answers
  with points and a positive maximum, checked against the answers in SQL after loading.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from argon2 import PasswordHasher

from inspections.checklists.questions import (
    Choice,
    Number,
    PassFail,
    Question,
    Rating,
    Text,
    YesNo,
    max_points,
    points,
    questions,
)
from inspections.checklists.schemas import ChecklistCreate
from inspections.checklists.starter import load_starters
from service import db

ROOT = Path(__file__).resolve().parents[2]

MIGRATIONS = ROOT / "inspections" / "migrations"  # as inspections.wiring.MIGRATIONS
ORG_NAME = "Bulk County Council"
DOMAIN = "bulk-county.example.org"
PASSWORD = "bulk county passphrase"
YEARS = 3
# kind: (share of services, visit frequency factor, checklist starter's own kind)
KINDS: dict[str, tuple[float, float, str]] = {
    "care_home": (0.40, 0.9, "care_home"),
    "gp_surgery": (0.25, 1.1, "hospital_ward"),
    "hospital_ward": (0.20, 1.2, "hospital_ward"),
    "home_care": (0.10, 0.7, "care_home"),
    "library": (0.05, 0.8, "hospital_ward"),
}
# (citizens, professionals): share of visits. Citizens are at least half of every team.
TEAMS: list[tuple[tuple[int, int], float]] = [
    ((2, 1), 0.45),
    ((1, 1), 0.30),
    ((2, 0), 0.10),
    ((1, 0), 0.06),
    ((3, 1), 0.06),
    ((2, 2), 0.03),
]
CANCELLED = 0.05
RECENT_IN_PROGRESS = 0.3  # of visits in the last 14 days
STALE_IN_PROGRESS = 0.003  # of older visits
NA_RATE = 0.06
COMMENT_RATE = 0.10
CENTRE = (52.64, -1.13)  # the county's centre

_enc = msgspec.json.Encoder()
ALL_DOMAINS = sorted({q.domain for c in load_starters() for q in questions(c.content)})

PLACES = (
    "Ashby Barrow Birstall Blaby Braunstone Broughton Burbage Donington Coalville Cosby "
    "Countesthorpe Enderby Evington Glenfield Groby Hinckley Hugglescote Ibstock Kegworth "
    "Kibworth Knighton Lutterworth Markfield Melton Mountsorrel Narborough Oadby Quorn Ratby "
    "Rothley Shepshed Sileby Syston Thurmaston Whetstone Wigston Anstey Shilton Fleckney Hathern "
    "Loughborough Harborough Measham Queniborough Stanton"
).split()
NAMES = (
    "Elm Oak Beech Willow Cedar Rowan Holly Ash Maple Linden Hawthorn Birch Laurel Juniper "
    "Chestnut Sycamore Alder Poplar Meadow Brook River Orchard Park Grange Manor Abbey Priory "
    "Hill Field Vale Lea Green Dale Spring Church Mill Bridge"
).split()
FIRST = (
    "Ann Bob Carol Dev Eileen Farid Grace Hamza Irene Jamal Kate Leon Maya Nadia Owen Priya "
    "Qasim Rose Sam Tara Uma Vik Wendy Xavier Yusuf Zara Alan Beth Chris Dina Ed Fay"
).split()
LAST = (
    "Ahmed Baker Clarke Davies Evans Fisher Green Hughes Iqbal Jones Khan Lewis Morris Nolan "
    "Owens Patel Quinn Roberts Singh Taylor Usman Vaughan Walker Young Zielinski Begum Mistry"
).split()
WARDS = (
    "Respiratory|Cardiology|Stroke|Elderly Care|Orthopaedics|Maternity|Children's|"
    "Surgical|Acute Medical|Renal|Oncology|Neurology|Gastro"
).split("|")
HOSPITALS = [
    ("Royal County Infirmary", 52.627, -1.137),
    ("General Hospital", 52.625, -1.081),
    ("Glenfield Hospital", 52.655, -1.191),
    ("Community Hospital, Loughborough", 52.771, -1.214),
    ("St Luke's Hospital, Market Harborough", 52.478, -0.921),
    ("Hinckley and Bosworth Community Hospital", 52.541, -1.372),
]
COMMENTS = [
    "Staff knocked and waited before going into the bedrooms we saw.",
    "Lunch was served hot; people who needed help were helped patiently.",
    "The lounge was calm; the television was off and music was playing quietly.",
    "A fire door on the first floor was propped open with a chair.",
    "Relatives told us they are always made welcome, at any time of day.",
    "Hand gel dispensers at the entrance were empty.",
    "Nobody greeted us for several minutes; the desk was unstaffed.",
    "Notices were out of date and hard to read from a wheelchair.",
    "A person asked twice for a drink before anyone came.",
    "Staff spoke to people by name and took time to listen.",
]
TEXTS = [
    "A warm place overall; people looked relaxed and were chatting with staff.",
    "Busy and a little chaotic at lunchtime, but staff were kind throughout.",
    "Clean and bright. Corridors were clear. Some notices need updating.",
    "We saw people waiting a long time for help to the toilet.",
    "Friendly staff; the garden is lovely but the door to it was locked.",
]
DEVICES = ["Pixel 7", "Pixel 8a", "iPhone 13", "iPhone 15", "Galaxy A54", "Moto g84", "iPad"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- model


@dataclass
class Q:
    """A question as the generator sees it, with exact points per possible value."""

    key: str
    domain: str
    weight: float
    type: str
    allow_na: bool
    scored: bool
    labels: int = 0
    ease: float = 0.0
    options: list[str] = field(default_factory=list)
    lo: float = 0.0
    hi: float = 0.0
    good: bool = True  # yes_no: the good answer
    # value (hashable) -> (json text, points, max_points), from questions.points/max_points
    table: dict[Any, tuple[str, float | None, float | None]] = field(default_factory=dict)


def model_questions(content_questions: list[Question], rng: random.Random) -> list[Q]:
    out = []
    for q in content_questions:
        m = Q(
            key=q.key,
            domain=q.domain,
            weight=float(q.weight),
            type=type(q).__name__,
            allow_na=q.allow_na,
            scored=max_points(q) is not None,
            ease=rng.gauss(0.0, 0.07),
        )
        values: list[Any] = []
        match q:
            case Rating(labels=labels):
                m.labels = len(labels)
                values = list(range(1, len(labels) + 1))
            case PassFail():
                values = ["pass", "qualified_pass", "fail"]
            case YesNo(good_answer=good):
                m.good = good
                values = [True, False]
            case Choice(options=options):
                m.options = [o.value for o in options]
            case Number(min=lo, max=hi):
                m.lo, m.hi = lo or 0.0, min(hi if hi is not None else 30.0, 30.0)
            case Text():
                pass
        for v in values:
            earned = points(q, v)
            top = max_points(q) if earned is not None else None
            m.table[v] = (_enc.encode(v).decode(), earned, top)
        out.append(m)
    return out


@dataclass
class Service:
    id: uuid.UUID
    kind: str
    name: str
    quality: float  # now, 0..1
    drift: float  # per year, added going forward in time
    domain_offsets: dict[str, float]  # both perspectives
    citizen_offsets: dict[str, float]  # citizens only (added to domain_offsets)
    pro_offsets: dict[str, float]  # professionals only


@dataclass
class Person:
    id: uuid.UUID
    bias: float
    activity: float


def new_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


@dataclass
class Summary:
    org_id: uuid.UUID
    coordinator_email: str
    scrutiny_email: str
    password: str
    counts: dict[str, int]
    timings: dict[str, float]
    by_kind: dict[str, int]
    first_visit: dt.datetime
    last_visit: dt.datetime
    lines: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- seeding


# The columns of each table COPY fills, in the order of the rows built for it.
# fmt: off
COLUMNS: dict[str, list[str]] = {
    "users": [
        "id", "organisation_id", "email", "display_name", "password_hash", "roles", "active",
        "created_at", "updated_at"
    ],
    "training_records": [
        "id", "organisation_id", "user_id", "kind", "course", "completed_on", "expires_on",
        "recorded_by"
    ],
    "services": [
        "id", "organisation_id", "name", "kind", "address", "lat", "lon", "geofence_m",
        "created_at", "updated_at"
    ],
    "visits": [
        "id", "organisation_id", "service_id", "checklist_id", "checklist_version", "starts_at",
        "ends_at", "announced", "status", "cancelled_reason", "created_by", "created_at",
        "updated_at"
    ],
    "visit_members": ["visit_id", "user_id", "organisation_id", "perspective", "is_lead"],
    "submissions": [
        "id", "organisation_id", "visit_id", "user_id", "perspective", "state", "body_hash",
        "device", "client_started_at", "client_updated_at", "created_at", "updated_at",
        "finalised_at"
    ],
    "answers": [
        "submission_id", "position", "question_key", "organisation_id", "domain", "value", "na",
        "comment", "points", "max_points", "weight"
    ],
    "submission_scores": [
        "submission_id", "domain", "organisation_id", "service_id", "visit_id", "user_id",
        "perspective", "visit_starts_at", "wp", "wm", "answers"
    ],
    "service_managers": ["service_id", "user_id", "organisation_id"],
}
# fmt: on


async def copy(conn: asyncpg.Connection, table: str, records: Any) -> int:
    """COPY ``records`` into ``table`` (its COLUMNS); how many rows went in."""
    status = await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])
    return int(status.split()[-1])


async def seed(
    dsn: str,
    n_services: int = 1000,
    n_visits: int = 20000,
    seed_value: int = 1,
    progress: Callable[[str], None] = log,
) -> Summary:
    """Migrate ``dsn``, then load the organisation in one transaction; returns what it made."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    await db.migrate(dsn, MIGRATIONS)
    timings["migrate"] = time.perf_counter() - t_start
    rng = random.Random(seed_value)
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    org_created = now - dt.timedelta(days=365 * YEARS + 60)
    period_start = now - dt.timedelta(days=365 * YEARS)

    conn = await asyncpg.connect(dsn)
    try:
        existing = await conn.fetchval(
            "select id from organisations where name = $1 limit 1", ORG_NAME
        )
        if existing is not None or await conn.fetchval(
            "select 1 from users where lower(email) = $1", f"coordinator@{DOMAIN}"
        ):
            raise SystemExit(
                f"error: this database already holds {ORG_NAME!r} (organisation {existing}); "
                "seed a fresh database (e.g. --dsn of a new one)"
            )
        t0 = time.perf_counter()
        progress("seed_bulk: hashing the password (argon2, once) ...")
        pw_hash = PasswordHasher().hash(PASSWORD)
        timings["argon2"] = time.perf_counter() - t0

        async with conn.transaction():
            summary = await _load(
                conn,
                rng,
                pw_hash,
                now,
                org_created,
                period_start,
                n_services,
                n_visits,
                seed_value,
                timings,
                progress,
            )
        t0 = time.perf_counter()
        progress("seed_bulk: checking submission_scores against the answers ...")
        bad = await conn.fetchval(CHECK_SQL, summary.org_id)
        timings["check"] = time.perf_counter() - t0
        if bad:
            raise RuntimeError(f"{bad} submission_scores rows disagree with the answers")
        t0 = time.perf_counter()
        progress("seed_bulk: VACUUM (ANALYZE) of the seeded tables ...")
        for table in BIG_TABLES:
            await conn.execute(f"vacuum (analyze) {table}")
        timings["vacuum_analyze"] = time.perf_counter() - t0
    finally:
        await conn.close()
    timings["total"] = time.perf_counter() - t_start
    summary.timings = timings
    summary.lines = describe(summary)
    return summary


BIG_TABLES = [
    "users",
    "training_records",
    "services",
    "service_managers",
    "checklists",
    "checklist_versions",
    "visits",
    "visit_members",
    "submissions",
    "answers",
    "submission_scores",
]

# Every final submission's stored sums against the same aggregate _write_scores runs.
CHECK_SQL = """
    with agg as (
        select s.id submission_id, a.domain, s.user_id, s.perspective, v.service_id,
               v.id visit_id, v.starts_at, sum(a.weight * a.points) wp,
               sum(a.weight * a.max_points) wm, count(*) n
          from submissions s
          join visits v on v.id = s.visit_id
          join answers a on a.submission_id = s.id
         where s.organisation_id = $1 and s.state = 'final'
           and a.points is not null and a.max_points > 0
         group by s.id, a.domain, s.user_id, s.perspective, v.service_id, v.id, v.starts_at),
    ss as (select * from submission_scores where organisation_id = $1)
    select count(*)
      from agg full join ss using (submission_id, domain)
     where agg.submission_id is null or ss.submission_id is null
        or ss.wp <> agg.wp or ss.wm <> agg.wm or ss.answers <> agg.n
        or ss.user_id <> agg.user_id or ss.perspective <> agg.perspective
        or ss.service_id <> agg.service_id or ss.visit_id <> agg.visit_id
        or ss.visit_starts_at <> agg.starts_at"""


async def _load(
    conn: asyncpg.Connection,
    rng: random.Random,
    pw_hash: str,
    now: dt.datetime,
    org_created: dt.datetime,
    period_start: dt.datetime,
    n_services: int,
    n_visits: int,
    seed_value: int,
    timings: dict[str, float],
    progress: Callable[[str], None],
) -> Summary:
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    org = new_id(rng)
    await conn.execute(
        "insert into organisations (id, name, created_at) values ($1, $2, $3)",
        org,
        ORG_NAME,
        org_created,
    )

    # ---- people
    users: list[tuple[Any, ...]] = []

    def person(email: str, name: str, roles: list[str], created: dt.datetime) -> uuid.UUID:
        uid = new_id(rng)
        users.append((uid, org, email, name, pw_hash, roles, True, created, created))
        return uid

    coordinator = person(f"coordinator@{DOMAIN}", "Casey Coordinator", ["coordinator"], org_created)
    person(f"scrutiny@{DOMAIN}", "Cllr Sam Scrutiny", ["scrutiny_member"], org_created)

    def full_name() -> str:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"

    def joined() -> dt.datetime:
        return org_created + dt.timedelta(days=rng.uniform(1, 50), hours=rng.uniform(0, 9))

    n_citizens = max(4, round(0.3 * n_services))
    n_pros = max(2, round(0.08 * n_services))
    citizens = [
        Person(
            person(f"citizen{i:04d}@{DOMAIN}", full_name(), ["citizen_inspector"], joined()),
            rng.gauss(0.0, 0.05),
            rng.lognormvariate(0.0, 0.6),
        )
        for i in range(n_citizens)
    ]
    pros = [
        Person(
            person(f"inspector{i:03d}@{DOMAIN}", full_name(), ["professional_inspector"], joined()),
            rng.gauss(-0.02, 0.04),
            rng.lognormvariate(0.0, 0.4),
        )
        for i in range(n_pros)
    ]
    training = []
    for c in citizens:
        done = org_created - dt.timedelta(days=rng.uniform(30, 400))
        for kind, course, years in (
            ("course", "Lay assessor training", 6),
            ("safeguarding_check", "Enhanced DBS check", 4),
        ):
            completed = (done + dt.timedelta(days=rng.uniform(0, 20))).date()
            training.append(
                (new_id(rng), org, c.id, kind, course, completed,
                 completed + dt.timedelta(days=365 * years), coordinator)
            )  # fmt: skip

    # ---- services (and their managers)
    kinds: list[str] = []
    for kind, (share, _, _) in KINDS.items():
        kinds += [kind] * round(share * n_services)
    kinds = (kinds + ["care_home"] * n_services)[:n_services]
    services: list[Service] = []
    service_rows = []
    used_names: set[str] = set()
    for i, kind in enumerate(kinds):
        sid = new_id(rng)
        lat = CENTRE[0] + rng.gauss(0, 0.16)
        lon = CENTRE[1] + rng.gauss(0, 0.25)
        while True:
            place, tree = rng.choice(PLACES), rng.choice(NAMES)
            if kind == "care_home":
                house = rng.choice(["House", "Lodge", "Court", "View"])
                name = f"{tree} {house} Care Home, {place}"
            elif kind == "gp_surgery":
                name = f"{place} {rng.choice(['Medical Centre', 'Surgery', 'Health Centre'])}"
                name += f" ({tree} Road)"
            elif kind == "hospital_ward":
                hosp, lat, lon = HOSPITALS[i % len(HOSPITALS)]
                name = f"Ward {rng.randint(1, 40)} ({rng.choice(WARDS)}), {hosp}"
            elif kind == "home_care":
                name = f"{tree} Home Care ({place})"
            else:
                name = f"{place} {rng.choice(['Library', 'Community Library', 'Library Hub'])}"
            if name not in used_names:
                used_names.add(name)
                break
        domains: dict[str, float] = defaultdict(float)
        cit: dict[str, float] = defaultdict(float)
        pro: dict[str, float] = defaultdict(float)
        for d in ALL_DOMAINS:
            domains[d] = rng.gauss(0.0, 0.06)
            pro[d] = -0.05 if d in ("safety", "safe") else 0.0
        if kind == "care_home" and rng.random() < 0.25:
            cit["dignity"] = rng.uniform(-0.25, -0.12)
        if kind == "hospital_ward" and rng.random() < 0.25:
            cit["caring_and_involving"] = rng.uniform(-0.22, -0.10)
        if kind == "gp_surgery" and rng.random() < 0.2:
            cit["welcoming"] = rng.uniform(-0.2, -0.08)
        if rng.random() < 0.1:
            cit["environment"] = rng.uniform(0.05, 0.12)
        r = rng.random()
        drift = 0.12 if r < 0.1 else -0.12 if r < 0.2 else rng.gauss(0.0, 0.02)
        services.append(
            Service(
                sid, kind, name, clip(rng.gauss(0.66, 0.13), 0.15, 0.95), drift, domains, cit, pro
            )
        )
        created = org_created + dt.timedelta(days=rng.uniform(1, 40))
        service_rows.append(
            (sid, org, name, kind, f"{rng.randint(1, 240)} {tree} Road, {place}", lat, lon,
             rng.choice([100, 150, 150, 200, 300]), created, created)
        )  # fmt: skip
    managers = []
    manager_links = []
    pool = [s for s in services if rng.random() < 0.3]
    while pool:
        take = min(len(pool), rng.choice([1, 1, 1, 1, 2, 3]))
        mid = person(
            f"manager{len(managers):04d}@{DOMAIN}", full_name(), ["service_manager"], joined()
        )
        managers.append(mid)
        for s in pool[:take]:
            manager_links.append((s.id, mid, org))
        pool = pool[take:]

    counts["users"] = await copy(conn, "users", users)
    counts["training_records"] = await copy(conn, "training_records", training)
    counts["services"] = await copy(conn, "services", service_rows)
    counts["service_managers"] = await copy(conn, "service_managers", manager_links)
    counts["citizens"], counts["professionals"] = len(citizens), len(pros)
    counts["managers"] = len(managers)

    # ---- checklists: the starters, published as version 1 (as install_starters does)
    checklist_of_kind: dict[str, tuple[uuid.UUID, list[Q]]] = {}
    starters = {c.service_kinds[0]: c for c in load_starters()}
    for own_kind, c in starters.items():
        used_by = [k for k, (_, _, own) in KINDS.items() if own == own_kind]
        cid = await _publish(conn, rng, org, coordinator, c, used_by, org_created)
        qs = model_questions(questions(c.content), rng)
        for k in used_by:
            checklist_of_kind[k] = (cid, qs)
    counts["checklists"] = len(starters)
    timings["people_services_checklists"] = time.perf_counter() - t0

    # ---- visits, teams, submissions (kept in memory: ~20k + 2 x ~50k rows)
    t0 = time.perf_counter()
    span = (now - dt.timedelta(days=1) - period_start).total_seconds()
    weights = [KINDS[s.kind][1] * rng.lognormvariate(0.0, 0.55) for s in services]
    visit_services = rng.choices(services, weights=weights, k=n_visits)
    team_shapes = [t for t, _ in TEAMS]
    team_weights = [w for _, w in TEAMS]
    cit_w = [p.activity for p in citizens]
    pro_w = [p.activity for p in pros]
    visit_rows = []
    member_rows = []
    sub_rows = []
    # What the answers need per submission: (submission id, service, visit effect,
    # person, perspective, time in years from now (<= 0), questions, draft?)
    plans: list[tuple[uuid.UUID, Service, float, Person, str, float, list[Q], bool]] = []
    statuses: Counter[str] = Counter()
    slots = []
    for s in visit_services:
        frac = rng.random() ** 0.8  # a programme that grows: more visits lately
        day = (period_start + dt.timedelta(seconds=frac * span)).date()
        if day.weekday() >= 5 and rng.random() < 0.9:
            day -= dt.timedelta(days=day.weekday() - 4)  # to the Friday before
        starts = dt.datetime(
            day.year, day.month, day.day, rng.choice([9, 9, 10, 10, 11, 13, 14]),
            rng.choice([0, 15, 30, 45]), tzinfo=dt.UTC,
        )  # fmt: skip
        if starts >= now - dt.timedelta(hours=6):
            starts -= dt.timedelta(days=3)
        slots.append((starts, s))
    # In time order, as a production database fills up (heap order follows time).
    slots.sort(key=lambda x: x[0])
    first, last = slots[0][0], slots[-1][0]
    for starts, s in slots:
        vid = new_id(rng)
        ends = starts + dt.timedelta(minutes=rng.choice([90, 120, 150, 180, 240]))
        created = starts - dt.timedelta(days=rng.uniform(7, 60))
        u = rng.random()
        status = "cancelled" if u < CANCELLED else "submitted"
        # Not everyone has synced a recent visit yet; now and then an old one was never closed.
        recent = starts > now - dt.timedelta(days=14)
        if u >= CANCELLED and rng.random() < (RECENT_IN_PROGRESS if recent else STALE_IN_PROGRESS):
            status = "in_progress"
        statuses[status] += 1
        n_cit, n_pro = rng.choices(team_shapes, weights=team_weights)[0]
        team = [(p, "citizen") for p in _pick(rng, citizens, cit_w, n_cit)]
        team += [(p, "professional") for p in _pick(rng, pros, pro_w, n_pro)]
        lead = team[-1][0] if n_pro else team[0][0]
        for p, perspective in team:
            member_rows.append((vid, p.id, org, perspective, p is lead))
        cid, qs = checklist_of_kind[s.kind]
        updated = created
        if status != "cancelled":
            years = (starts - now).total_seconds() / (365.25 * 86400)
            effect = rng.gauss(0.0, 0.06)
            drafter = rng.randrange(len(team)) if status == "in_progress" else -1
            for i, (p, perspective) in enumerate(team):
                sub = new_id(rng)
                draft = i == drafter
                saved = ends + dt.timedelta(hours=rng.expovariate(1 / 8.0))
                updated = max(updated, saved)
                sub_rows.append(
                    (sub, org, vid, p.id, perspective, "draft" if draft else "final",
                     hashlib.sha256(sub.bytes).digest(), rng.choice(DEVICES),
                     starts + dt.timedelta(minutes=rng.uniform(1, 15)),
                     saved - dt.timedelta(minutes=rng.uniform(1, 30)),
                     starts + dt.timedelta(minutes=rng.uniform(1, 15)), saved,
                     None if draft else saved)
                )  # fmt: skip
                plans.append((sub, s, effect, p, perspective, years, qs, draft))
        cancelled_reason = (
            rng.choice(["Outbreak at the home", "Team member unwell", "Snow"])
            if status == "cancelled"
            else None
        )
        visit_rows.append(
            (vid, org, s.id, cid, 1, starts, ends, rng.random() < 0.85, status,
             cancelled_reason, coordinator, created, updated)
        )  # fmt: skip
    counts["visits"] = await copy(conn, "visits", visit_rows)
    counts["visit_members"] = await copy(conn, "visit_members", member_rows)
    counts["submissions"] = await copy(conn, "submissions", sub_rows)
    for k, v in statuses.items():
        counts[f"visits_{k}"] = v
    counts["submissions_final"] = sum(1 for r in sub_rows if r[5] == "final")
    counts["submissions_citizen"] = sum(1 for r in sub_rows if r[4] == "citizen")
    visit_starts = {r[0]: r[5] for r in visit_rows}
    sub_visit = {r[0]: r[2] for r in sub_rows}
    timings["visits_members_submissions"] = time.perf_counter() - t0

    # ---- answers, streamed into COPY; per-domain sums collected on the way
    t0 = time.perf_counter()
    progress(f"seed_bulk: answers for {len(plans):,} submissions (COPY, streamed) ...")
    scores: list[tuple[Any, ...]] = []
    tally: Counter[str] = Counter()
    answers = _answers(rng, org, plans, visit_starts, sub_visit, scores, tally)
    counts["answers"] = await copy(conn, "answers", answers)
    timings["answers"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts["submission_scores"] = await copy(conn, "submission_scores", scores)
    timings["submission_scores"] = time.perf_counter() - t0
    counts.update({f"answers_{k}": v for k, v in tally.items()})
    await conn.execute(
        """insert into audit_log (organisation_id, actor_id, action, object_type, object_id,
                                  summary)
           values ($1, $2, 'organisation.seed_bulk', 'organisation', $3, $4::text::jsonb)""",
        org,
        coordinator,
        str(org),
        _enc.encode({"seed": seed_value, "services": n_services, "visits": n_visits}).decode(),
    )
    return Summary(
        org_id=org,
        coordinator_email=f"coordinator@{DOMAIN}",
        scrutiny_email=f"scrutiny@{DOMAIN}",
        password=PASSWORD,
        counts=counts,
        timings=timings,
        by_kind=dict(Counter(kinds)),
        first_visit=first,
        last_visit=last,
    )


def _pick(rng: random.Random, people: list[Person], weights: list[float], k: int) -> list[Person]:
    """``k`` different people, the more active more often."""
    chosen: list[Person] = []
    while len(chosen) < k:
        p = rng.choices(people, weights=weights)[0]
        if p not in chosen:
            chosen.append(p)
    return chosen


async def _publish(
    conn: asyncpg.Connection,
    rng: random.Random,
    org: uuid.UUID,
    coordinator: uuid.UUID,
    c: ChecklistCreate,
    kinds: list[str],
    at: dt.datetime,
) -> uuid.UUID:
    contributors = _enc.encode(c.contributors).decode()
    content = _enc.encode(c.content).decode()
    cid = new_id(rng)
    # The checklist and its version 1 share these, as $1..$6 of both statements.
    shared = (cid, org, c.title, c.description, kinds, contributors)
    await conn.execute(
        """insert into checklists (id, organisation_id, title, description, service_kinds,
                                   contributors, latest_version, created_at, updated_at)
           values ($1, $2, $3, $4, $5, $6::text::jsonb, 1, $7, $7)""",
        *shared,
        at,
    )
    await conn.execute(
        """insert into checklist_versions (checklist_id, version, organisation_id, title,
               description, service_kinds, contributors, content, published_at, published_by)
           values ($1, 1, $2, $3, $4, $5, $6::text::jsonb, $7::text::jsonb, $8, $9)""",
        *shared,
        content,
        at,
        coordinator,
    )
    return cid


def _answers(
    rng: random.Random,
    org: uuid.UUID,
    plans: list[tuple[uuid.UUID, Service, float, Person, str, float, list[Q], bool]],
    visit_starts: dict[uuid.UUID, dt.datetime],
    sub_visit: dict[uuid.UUID, uuid.UUID],
    scores: list[tuple[Any, ...]],
    tally: Counter[str],
) -> Iterator[tuple[Any, ...]]:
    """Answer rows, submission by submission; appends each final one's sums to ``scores``."""
    rand, gauss, choice = rng.random, rng.gauss, rng.choice
    for sub, s, effect, person, perspective, years, qs, draft in plans:
        base = s.quality + s.drift * years + effect + person.bias
        own = s.citizen_offsets if perspective == "citizen" else s.pro_offsets
        sums: dict[str, list[float]] = {}
        position = 0
        cut = len(qs) * 0.6 if draft else len(qs)
        for i, q in enumerate(qs):
            if i >= cut:
                break
            comment = None
            if not q.scored:
                # Unscored questions are optional: answered now and then.
                if q.type == "Choice":
                    if rand() > 0.35:
                        continue
                    k = 1 + (rand() < 0.5) + (rand() < 0.3)
                    value: Any = sorted(set(choice(q.options[:-1]) for _ in range(k)))
                elif q.type == "Number":
                    if rand() > 0.3:
                        continue
                    value = round(min(q.hi, max(q.lo, rng.expovariate(1 / 4.0))))
                else:
                    if rand() > 0.15:
                        continue
                    value = choice(TEXTS)
                yield (sub, position, q.key, org, q.domain, _enc.encode(value).decode(), False,
                       None, None, None, q.weight)  # fmt: skip
                position += 1
                tally["unscored"] += 1
                continue
            na_rate = NA_RATE
            if q.key == "safety_medicines_secure" and perspective == "citizen":
                na_rate = 0.35
            if q.allow_na and rand() < na_rate:
                yield (sub, position, q.key, org, q.domain, None, True, None, None, None,
                       q.weight)  # fmt: skip
                position += 1
                tally["na"] += 1
                continue
            p = base + q.ease + s.domain_offsets[q.domain] + own.get(q.domain, 0.0)
            p = clip(p + gauss(0.0, 0.05), 0.03, 0.97)
            if q.type == "Rating":
                v: Any = 1
                for _ in range(q.labels - 1):
                    v += rand() < p
            elif q.type == "PassFail":
                u = rand()
                v = "pass" if u < p else "qualified_pass" if u < p + (1 - p) * 0.55 else "fail"
            else:
                v = q.good if rand() < min(0.98, p + 0.12) else not q.good
            text, earned, top = q.table[v]
            if rand() < COMMENT_RATE:
                comment = choice(COMMENTS)
            yield (sub, position, q.key, org, q.domain, text, False, comment, earned, top,
                   q.weight)  # fmt: skip
            position += 1
            tally["scored"] += 1
            # As _write_scores: only answers with points and a positive maximum.
            if earned is not None and top is not None and top > 0:
                acc = sums.setdefault(q.domain, [0.0, 0.0, 0])
                acc[0] += q.weight * earned
                acc[1] += q.weight * top
                acc[2] += 1
        if not draft:
            vid = sub_visit[sub]
            for domain, (wp, wm, n) in sums.items():
                scores.append(
                    (sub, domain, org, s.id, vid, person.id, perspective, visit_starts[vid],
                     wp, wm, n)
                )  # fmt: skip


def describe(s: Summary) -> list[str]:
    c, t = s.counts, s.timings
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(s.by_kind.items(), key=lambda x: -x[1]))
    return [
        f"organisation: {ORG_NAME} ({s.org_id})",
        f"people:       {c['users']:,} users: 1 coordinator, 1 scrutiny member, "
        f"{c['citizens']:,} citizen inspectors (cleared: {c['training_records']:,} training "
        f"records), {c['professionals']:,} professional inspectors, {c['managers']:,} "
        "service managers",
        f"services:     {c['services']:,} ({kinds}); {c['service_managers']:,} with a manager",
        f"checklists:   {c['checklists']} published (care-home visit; ward walk-round)",
        f"visits:       {c['visits']:,} from {s.first_visit:%Y-%m-%d} to {s.last_visit:%Y-%m-%d}: "
        f"{c.get('visits_submitted', 0):,} submitted, {c.get('visits_in_progress', 0):,} in "
        f"progress, {c.get('visits_cancelled', 0):,} cancelled; {c['visit_members']:,} members",
        f"submissions:  {c['submissions']:,} ({c['submissions_final']:,} final; "
        f"{c['submissions_citizen']:,} citizen, "
        f"{c['submissions'] - c['submissions_citizen']:,} professional)",
        f"answers:      {c['answers']:,} ({c.get('answers_scored', 0):,} scored, "
        f"{c.get('answers_na', 0):,} N/A, {c.get('answers_unscored', 0):,} unscored)",
        f"scores:       {c['submission_scores']:,} submission_scores rows (final submission x "
        "domain), equal to the answers' aggregate (checked)",
        "timings (s):  "
        + ", ".join(f"{k.replace('_', ' ')} {v:.1f}" for k, v in t.items() if k not in ("total",))
        + f"; total {t['total']:.1f}",
        f"sign in:      {s.scrutiny_email} (scrutiny member) or {s.coordinator_email} "
        f"(coordinator), password {s.password!r}",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="scripts/seed_bulk",
        description="Load a large, realistic organisation (COPY) for scorecard benchmarks.",
    )
    p.add_argument(
        "--dsn",
        help="target database (default: DATABASE_URL, else the embedded cluster of "
        "scripts/serve in DATA_DIR/pg, database 'coassess')",
    )
    p.add_argument("--services", type=int, default=1000, help="services (default 1000)")
    p.add_argument("--visits", type=int, default=20000, help="visits over 3 years (20000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = p.parse_args(argv)
    if args.services < 10 or args.visits < 1:
        p.error("--services must be >= 10 and --visits >= 1")

    def run(dsn: str) -> None:
        log(f"seed_bulk: seeding {dsn} ...")
        summary = asyncio.run(seed(dsn, args.services, args.visits, args.seed))
        print("\n".join(summary.lines))

    if args.dsn:
        run(args.dsn)
    else:
        from service.__main__ import database
        from service.settings import Settings

        with database(Settings.from_env()) as dsn:
            run(dsn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
