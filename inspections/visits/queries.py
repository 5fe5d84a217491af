"""SQL of the visits slice, with the access checks beside the queries that load a visit."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from litestar.connection import ASGIConnection

from inspections.accounts.clearance import from_rows
from inspections.accounts.queries import principal_ids
from inspections.visits.rules import MemberFacts, TeamRules, team_problems
from inspections.visits.schemas import TeamMemberIn, Visit
from inspections.wording import sentences
from service.auth import Principal
from service.db import row_or_404
from service.errors import forbidden, unprocessable

VISIT_COLS = """v.id, v.service_id, s.name service_name, v.checklist_id, v.checklist_version,
    v.starts_at, v.ends_at, v.announced, v.status, v.cancelled_reason, v.closed_at,
    v.created_at, v.updated_at,
    coalesce((select json_agg(json_build_object(
                'user_id', m.user_id, 'display_name', u.display_name,
                'perspective', m.perspective, 'lead', m.is_lead)
                order by m.is_lead desc, u.display_name, m.user_id)
              from visit_members m join users u on u.id = m.user_id
             where m.visit_id = v.id), '[]') team"""


def bundle_etag(visit_id: UUID, *stamps: dt.datetime | None) -> str:
    """Strong ETag from what a bundle is made of: the visit, its service, the team's names.

    The pinned checklist version is immutable, so it needs no stamp of its own.
    """
    h = hashlib.sha256(str(visit_id).encode())
    for s in stamps:
        h.update(b"|" + (s.isoformat().encode() if s else b"-"))
    return '"' + h.hexdigest()[:32] + '"'


STAMPS_SQL = """
    select v.organisation_id, v.service_id, v.updated_at vu, s.updated_at su,
           (select max(u.updated_at) from visit_members m join users u on u.id = m.user_id
             where m.visit_id = v.id) tu,
           array(select m.user_id from visit_members m where m.visit_id = v.id) members
      from visits v join services s on s.id = v.service_id
     where v.id = $1"""


class BundleStamps(msgspec.Struct, frozen=True):
    organisation_id: UUID
    service_id: UUID
    members: frozenset[UUID]
    etag: str


def stamps_from(visit_id: UUID, row: Any) -> BundleStamps:
    return BundleStamps(
        row["organisation_id"],
        row["service_id"],
        frozenset(row["members"]),
        bundle_etag(visit_id, row["vu"], row["su"], row["tu"]),
    )


# The caller (as PRINCIPAL_SQL checks them) and the visit's bundle stamps, in one round trip:
# the bundle's 304 answers from this alone. No row: the sign-in is no longer valid;
# a null visit_org: no such visit.
CALLER_STAMPS_SQL = """
    select u.organisation_id, u.roles, st.visit_org, st.service_id, st.vu, st.su, st.tu,
           st.members
      from users u join devices d on d.user_id = u.id
      left join lateral (
            select v.organisation_id visit_org, v.service_id, v.updated_at vu,
                   s.updated_at su,
                   (select max(mu.updated_at) from visit_members m
                      join users mu on mu.id = m.user_id where m.visit_id = v.id) tu,
                   array(select m.user_id from visit_members m where m.visit_id = v.id) members
              from visits v join services s on s.id = v.service_id
             where v.id = $3) st on true
     where u.id = $1 and d.id = $2 and u.active and d.revoked_at is null"""


async def load_caller_and_stamps(
    connection: ASGIConnection, sub: str, dev: str
) -> Principal | None:
    """The bundle route's caller loader (service.auth.LOAD_CALLER): leaves the visit's
    current BundleStamps (or None) in ``connection.state.bundle_stamps``.

    Read whenever the route runs, never cached: a team change or a revoked sign-in made
    through any process is seen by the very next request in every process. A repeated
    request may be answered before the route from bundle_memo, under the rules there.
    """
    ids = principal_ids(sub, dev)
    visit_id = connection.path_params.get("visit_id")
    if ids is None or visit_id is None:
        return None
    visit_id = visit_id if isinstance(visit_id, UUID) else UUID(str(visit_id))
    # Seen before the read: what it reads may be answered from memory only while this
    # has not moved (bundle_memo.py).
    connection.state.seen_writes = connection.app.state.writes.current()
    # A held connection: no pool acquire/release on the phones' hottest path.
    row = await connection.app.state.reader.fetchrow(CALLER_STAMPS_SQL, *ids, visit_id)
    if row is None:
        return None
    connection.state.bundle_stamps = (
        None
        if row["visit_org"] is None
        else BundleStamps(
            row["visit_org"],
            row["service_id"],
            frozenset(row["members"]),
            bundle_etag(visit_id, row["vu"], row["su"], row["tu"]),
        )
    )
    return Principal(ids[0], row["organisation_id"], frozenset(row["roles"]), ids[1])


async def visit_in_org(db: asyncpg.Connection, caller: Principal, visit_id: UUID) -> Visit:
    row = await row_or_404(
        db,
        "visit",
        f"""select {VISIT_COLS} from visits v join services s on s.id = v.service_id
             where v.id = $1 and v.organisation_id = $2""",
        visit_id,
        caller.organisation_id,
    )
    return visit_of(row)


def visit_of(row: Any) -> Visit:
    """The Visit of a row that selected VISIT_COLS (and perhaps columns of its own)."""
    return msgspec.convert({f: row[f] for f in Visit.__struct_fields__ if f in row}, Visit)


async def locked_visit(db: asyncpg.Connection, caller: Principal, visit_id: UUID) -> Visit:
    """The visit, locked until the transaction ends: its status changes one at a time."""
    await db.execute("select 1 from visits where id = $1 for update", visit_id)
    return await visit_in_org(db, caller, visit_id)


# Said to the phone in the OpenAPI descriptions of the operations the door guards.
DOOR_RULE = (
    "A team's evidence and findings are taken until the visit's door closes, in whatever "
    "order the phone sends them (answers, photos and findings after the last member's "
    "final submission too). The door closes when a coordinator closes the visit "
    "(POST /v1/visits/{id}/close) or cancels it, or when the visit's report is sent to "
    "the service (POST /v1/reports/{id}/send); after that: 409 visit-closed."
)


def door_closed(visit: Visit, report_status: str | None) -> str | None:
    """Why the visit's team can add no more evidence or findings; None while the door is
    open (see DOOR_RULE). Reaching 'submitted' because every member is final does not
    close it: photos and findings often arrive after the answers."""
    if visit.status == "cancelled":
        return "This visit was cancelled; it takes no more evidence or findings."
    if visit.closed_at is not None:
        return "A coordinator closed this visit; it takes no more evidence or findings."
    if report_status not in (None, "draft"):
        return "This visit's report has gone to the service; it takes no more evidence or findings."
    return None


def may_see_visit(caller: Principal, visit: Visit) -> None:
    """Team members and coordinators only."""
    if caller.has("coordinator") or visit.member(caller.user_id) is not None:
        return
    raise forbidden("Only this visit's team and coordinators can see it.")


async def member_facts(
    db: asyncpg.Connection, caller: Principal, service_id: UUID, team: list[TeamMemberIn]
) -> list[MemberFacts]:
    ids = [m.user_id for m in team]
    users = {
        r["id"]: r
        for r in await db.fetch(
            """select u.id, u.display_name, u.roles, u.active,
                      exists (select 1 from service_managers sm
                               where sm.service_id = $3 and sm.user_id = u.id) manages
                 from users u where u.id = any($1::uuid[]) and u.organisation_id = $2""",
            ids,
            caller.organisation_id,
            service_id,
        )
    }
    training: dict[UUID, list[Any]] = defaultdict(list)
    for r in await db.fetch(
        """select user_id, kind, course, completed_on, expires_on from training_records
            where user_id = any($1::uuid[])""",
        list(users),
    ):
        training[r["user_id"]].append(r)
    out = []
    for m in team:
        u = users.get(m.user_id)
        if u is None:
            out.append(MemberFacts(m.user_id, m.perspective, m.lead, exists=False))
            continue
        out.append(
            MemberFacts(
                m.user_id,
                m.perspective,
                m.lead,
                active=u["active"],
                display_name=u["display_name"],
                roles=frozenset(u["roles"]),
                manages_service=u["manages"],
                training=from_rows(training[m.user_id]),
            )
        )
    return out


async def check_team(
    db: asyncpg.Connection,
    caller: Principal,
    service_id: UUID,
    team: list[TeamMemberIn],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
) -> None:
    settings = await db.fetchval(
        "select settings from organisations where id = $1", caller.organisation_id
    )
    facts = await member_facts(db, caller, service_id, team)
    problems = team_problems(
        facts, TeamRules.from_settings(settings or {}), starts_at.date(), ends_at.date()
    )
    if problems:
        raise unprocessable(sentences(p.reason for p in problems), problems)


async def write_team(
    db: asyncpg.Connection, caller: Principal, visit_id: UUID, team: list[TeamMemberIn]
) -> None:
    await db.execute("delete from visit_members where visit_id = $1", visit_id)
    await db.execute(
        """insert into visit_members (visit_id, user_id, organisation_id, perspective, is_lead)
           select $1, u, $2, p, l
             from unnest($3::uuid[], $4::text[], $5::bool[]) as t(u, p, l)""",
        visit_id,
        caller.organisation_id,
        [m.user_id for m in team],
        [m.perspective for m in team],
        [m.lead for m in team],
    )
