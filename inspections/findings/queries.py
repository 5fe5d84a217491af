"""Loading findings with who may see them decided in the same query.

A finding the caller may not see answers 404, as if it did not exist: a service manager
must not learn that a safeguarding concern was raised about their service.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from inspections.findings import rules
from inspections.findings.schemas import (
    Action,
    ActionOut,
    Comment,
    Finding,
    FindingPut,
    FindingSettings,
    HistoryEntry,
    Report,
)
from inspections.idempotent import etag_of
from inspections.org_settings import read_section
from service.auth import Principal
from service.db import from_row, row_or_404
from service.errors import not_found

# $1 organisation, $2 caller, $3 coordinator, $4 safeguarding lead, $5 scrutiny member,
# $6 citizen inspector, $7 service manager. Safeguarding: the raiser, coordinators and
# safeguarding leads, never a manager of the service. Otherwise: coordinators, the
# visit's team; once published, scrutiny members and citizen inspectors (who verify);
# the service's managers from the factual check on, for findings in the report.
VISIBLE = """
    f.organisation_id = $1 and case
      when f.severity = 'safeguarding' then
        f.raised_by = $2
        or (($3 or $4) and not exists (select 1 from service_managers sm
                                        where sm.service_id = f.service_id and sm.user_id = $2))
      else
        $3
        or exists (select 1 from visit_members vm
                    where vm.visit_id = f.visit_id and vm.user_id = $2)
        or (f.status <> 'draft' and ($5 or $6))
        or ($7 and f.in_report
            and exists (select 1 from service_managers sm
                         where sm.service_id = f.service_id and sm.user_id = $2)
            and exists (select 1 from visit_reports r
                         where r.visit_id = f.visit_id and r.status <> 'draft'))
    end"""

FINDING_SQL = """
    select f.id, f.visit_id, f.service_id, s.name service_name, f.raised_as, f.raised_by,
           f.title, f.description, f.domain, f.question_keys, f.severity, f.evidence_ids,
           f.recommendation, f.in_report, f.status, f.due_on, f.responded_at,
           f.decline_reason, f.safeguarding_reference, f.body_hash, f.created_at,
           f.updated_at
      from findings f join services s on s.id = f.service_id"""


def visibility(caller: Principal) -> list[Any]:
    """The parameters $1..$7 of VISIBLE for this caller."""
    return [
        caller.organisation_id,
        caller.user_id,
        caller.has("coordinator"),
        caller.has("safeguarding_lead"),
        caller.has("scrutiny_member"),
        caller.has("citizen_inspector"),
        caller.has("service_manager"),
    ]


def today(timezone: str) -> dt.date:
    """Due dates are dates where the service is: 'today' is today there."""
    return dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date()


def local_date(moment: dt.datetime | None, timezone: str) -> dt.date | None:
    return None if moment is None else moment.astimezone(zoneinfo.ZoneInfo(timezone)).date()


async def finding_settings(db: asyncpg.Connection, organisation_id: UUID) -> FindingSettings:
    return await read_section(db, organisation_id, "findings", FindingSettings)


async def actions_and_history(
    db: asyncpg.Connection, ids: list[UUID]
) -> tuple[dict[UUID, list[ActionOut]], dict[UUID, list[HistoryEntry]]]:
    """Each finding's action plan and history, oldest first (for the API and the public)."""
    actions: dict[UUID, list[ActionOut]] = defaultdict(list)
    for a in await db.fetch(
        """select finding_id, position, action, owner, target_date, done_at, moderation
             from finding_actions where finding_id = any($1::uuid[])
            order by finding_id, position""",
        ids,
    ):
        actions[a["finding_id"]].append(from_row(ActionOut, a, number=a["position"]))
    history: dict[UUID, list[HistoryEntry]] = defaultdict(list)
    for h in await db.fetch(
        """select id, finding_id, kind, from_status, to_status, actor_role, note,
                  evidence_ids, created_at at, moderation
             from finding_updates where finding_id = any($1::uuid[])
            order by finding_id, created_at, id""",
        ids,
    ):
        history[h["finding_id"]].append(from_row(HistoryEntry, h))
    return actions, history


async def load_findings(
    db: asyncpg.Connection, rows: Sequence[Any], timezone: str
) -> list[Finding]:
    """Findings from FINDING_SQL rows, with their actions and history."""
    actions, history = await actions_and_history(db, [r["id"] for r in rows])
    now = today(timezone)
    out = []
    for r in rows:
        out.append(
            from_row(
                Finding,
                r,
                overdue=rules.is_overdue(r["status"], r["due_on"], now),
                responded_on_time=rules.on_time(
                    local_date(r["responded_at"], timezone), r["due_on"]
                ),
                actions=actions[r["id"]],
                history=history[r["id"]],
                etag=etag_of(r["body_hash"]),
            )
        )
    return out


async def visible_findings(
    db: asyncpg.Connection,
    caller: Principal,
    timezone: str,
    *,
    service: UUID | None = None,
    visit: UUID | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    severity: str | None = None,
    recommendations: bool = False,
    managed: bool = False,
    after: Sequence[Any] = (None, None),
    limit: int = 50,
) -> list[Any]:
    """GET /v1/findings: the FINDING_SQL rows this caller may see (VISIBLE), newest first.

    ``recommendations``: only recommendations past their draft; ``managed``: only about the
    services the caller manages; ``after``: the keyset cursor (created_at, id)."""
    return await db.fetch(
        FINDING_SQL
        + f""" where {VISIBLE}
              and ($8::uuid is null or f.service_id = $8)
              and ($9::uuid is null or f.visit_id = $9)
              and ($10::text is null or f.status = $10)
              and ($11::bool is null
                   or $11 = (f.status = 'open' and f.due_on < $12::date))
              and ($13::timestamptz is null or (f.created_at, f.id) < ($13, $14::uuid))
              and ($16::text is null or f.severity = $16)
              and (not $17 or (f.recommendation is not null and f.status <> 'draft'))
              and (not $18 or exists (select 1 from service_managers sm
                                      where sm.service_id = f.service_id and sm.user_id = $2))
            order by f.created_at desc, f.id desc limit $15""",
        *visibility(caller),
        service,
        visit,
        status,
        overdue,
        today(timezone),
        *after,
        limit,
        severity,
        recommendations,
        managed,
    )


# A visit whose report a coordinator deals with: not cancelled, and with a report, or
# submitted, or with a finding that may go in one (a safeguarding concern never does).
async def report_visits(
    db: asyncpg.Connection,
    organisation_id: UUID,
    timezone: str,
    *,
    to_review: bool = False,
    limit: int | None = 200,
) -> list[Any]:
    """The organisation's visits with a report to write, check or read, latest first, with
    the report's status and counts; ``to_review``: only those with no report past its draft."""
    return await db.fetch(
        """select v.id visit_id, s.name service_name, v.starts_at, v.status visit_status,
                  r.status, r.published_on, r.sent_at,
                  (select count(*) from findings f where f.visit_id = v.id
                      and f.severity <> 'safeguarding')::int findings,
                  (select count(*) from report_comments c where c.report_id = r.id)::int comments,
                  (select count(*) from findings f where f.visit_id = v.id and f.in_report
                      and f.status = 'open' and f.due_on < $2)::int overdue
             from visits v join services s on s.id = v.service_id
             left join visit_reports r on r.visit_id = v.id
            where v.organisation_id = $1 and v.status <> 'cancelled'
              and (r.id is not null or v.status = 'submitted'
                   or exists (select 1 from findings f where f.visit_id = v.id
                                and f.severity <> 'safeguarding'))
              and (not $3 or r.id is null or r.status = 'draft')
            order by v.starts_at desc, v.id limit $4""",
        organisation_id,
        today(timezone),  # overdue as the findings say it (rules)
        to_review,
        limit,
    )


async def finding_for(
    db: asyncpg.Connection, caller: Principal, finding_id: UUID, timezone: str, lock: bool = False
) -> Finding:
    """The finding if the caller may see it; 404 otherwise (existence is not revealed)."""
    row = await row_or_404(
        db,
        "finding",
        FINDING_SQL + f" where f.id = $8 and {VISIBLE}" + (" for update of f" if lock else ""),
        *visibility(caller),
        finding_id,
    )
    return (await load_findings(db, [row], timezone))[0]


async def manages(db: asyncpg.Connection, user_id: UUID, service_id: UUID) -> bool:
    return bool(
        await db.fetchval(
            "select exists (select 1 from service_managers where service_id = $1 and user_id = $2)",
            service_id,
            user_id,
        )
    )


async def check_evidence(
    db: asyncpg.Connection, organisation_id: UUID, service_id: UUID, ids: list[UUID], path: str
) -> list[Any]:
    """Evidence a finding may link: its own service's photos. Ids not yet uploaded (the
    phone makes them offline) are accepted; publication waits for them to be ready."""
    from service.errors import FieldError

    if not ids:
        return []
    known = {
        r["id"]: r
        for r in await db.fetch(
            """select e.id, v.service_id, e.organisation_id from evidence e
                 join visits v on v.id = e.visit_id where e.id = any($1::uuid[])""",
            ids,
        )
    }
    return [
        FieldError(field=f"$.{path}[{i}]", reason="This photo belongs to another service.")
        for i, eid in enumerate(ids)
        if eid in known
        and (
            known[eid]["organisation_id"] != organisation_id
            or known[eid]["service_id"] != service_id
        )
    ]


async def history(
    db: asyncpg.Connection,
    org: UUID,
    finding_id: UUID,
    kind: str,
    from_status: str | None,
    to_status: str,
    actor: UUID | None,
    role: str,
    note: str = "",
    evidence_ids: list[UUID] | None = None,
    update_id: UUID | None = None,
    body_hash: bytes | None = None,
) -> None:
    """One line of the finding's public history (who in role terms, when, what)."""
    await db.execute(
        """insert into finding_updates (id, organisation_id, finding_id, kind, from_status,
               to_status, actor_id, actor_role, note, evidence_ids, body_hash)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        update_id or uuid.uuid4(),
        org,
        finding_id,
        kind,
        from_status,
        to_status,
        actor,
        role,
        note,
        evidence_ids or [],
        body_hash,
    )


async def stored_finding(db: asyncpg.Connection, finding_id: UUID) -> Any:
    """The stored finding under a phone-made id and its report's status, locked (or None)."""
    return await db.fetchrow(
        """select f.visit_id, f.raised_by, f.severity, f.status, f.body_hash,
                  r.status report_status
             from findings f left join visit_reports r on r.visit_id = f.visit_id
            where f.id = $1 for update of f""",
        finding_id,
    )


async def report_status(db: asyncpg.Connection, visit_id: UUID) -> str | None:
    return await db.fetchval("select status from visit_reports where visit_id = $1", visit_id)


def _finding_fields(data: FindingPut, body_hash: bytes) -> list[Any]:
    return [
        data.title,
        data.description,
        data.domain,
        data.question_keys,
        data.severity,
        data.evidence_ids,
        data.recommendation,
        body_hash,
    ]


async def insert_finding(
    db: asyncpg.Connection,
    finding_id: UUID,
    caller: Principal,
    visit_id: UUID,
    service_id: UUID,
    raised_as: str,
    status: str,
    data: FindingPut,
    body_hash: bytes,
) -> None:
    await db.execute(
        """insert into findings (id, organisation_id, visit_id, service_id, raised_by,
               raised_as, status, title, description, domain, question_keys, severity,
               evidence_ids, recommendation, body_hash)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        finding_id,
        caller.organisation_id,
        visit_id,
        service_id,
        caller.user_id,
        raised_as,
        status,
        *_finding_fields(data, body_hash),
    )


async def update_finding(
    db: asyncpg.Connection, finding_id: UUID, data: FindingPut, body_hash: bytes
) -> None:
    """A changed finding; a draft becoming a safeguarding concern is raised at once."""
    await db.execute(
        """update findings set title = $2, description = $3, domain = $4,
               question_keys = $5, severity = $6, evidence_ids = $7, recommendation = $8,
               body_hash = $9, updated_at = now(),
               status = case when $6 = 'safeguarding' and status = 'draft'
                             then 'raised' else status end
         where id = $1""",
        finding_id,
        *_finding_fields(data, body_hash),
    )


async def add_actions(
    db: asyncpg.Connection, org: UUID, finding_id: UUID, actions: list[Action]
) -> None:
    """The action plan a manager accepts a recommendation with, numbered from 1."""
    await db.execute(
        """insert into finding_actions (organisation_id, finding_id, position, action,
                                        owner, target_date)
           select $1, $2, p, a, o, t
             from unnest($3::int[], $4::text[], $5::text[], $6::date[]) as x(p, a, o, t)""",
        org,
        finding_id,
        list(range(1, len(actions) + 1)),
        [a.action for a in actions],
        [a.owner for a in actions],
        [a.target_date for a in actions],
    )


REPORT_SQL = """
    select r.id, r.visit_id, r.service_id, s.name service_name, r.status, r.summary,
           r.sent_at, r.published_at, r.published_on, r.organisation_id,
           v.starts_at visit_starts_at
      from visit_reports r join services s on s.id = r.service_id
      join visits v on v.id = r.visit_id"""


async def report_row(
    db: asyncpg.Connection, caller: Principal, where: str, key: UUID, lock: bool = False
) -> Any:
    """The report if the caller may see it: coordinators; the visit's team; the service's
    managers from the factual check on; scrutiny members once published."""
    row = await row_or_404(
        db,
        "report",
        REPORT_SQL
        + f" where {where} = $1 and r.organisation_id = $2"
        + (" for update of r" if lock else ""),
        key,
        caller.organisation_id,
    )
    if caller.has("coordinator"):
        return row
    on_team = await db.fetchval(
        "select exists (select 1 from visit_members where visit_id = $1 and user_id = $2)",
        row["visit_id"],
        caller.user_id,
    )
    if on_team:
        return row
    if row["status"] != "draft" and caller.has("service_manager"):
        if await manages(db, caller.user_id, row["service_id"]):
            return row
    if row["status"] == "published" and caller.has("scrutiny_member"):
        return row
    raise not_found("report")


async def build_report(db: asyncpg.Connection, caller: Principal, row: Any, tz: str) -> Report:
    findings = await db.fetch(
        FINDING_SQL
        + f" where {VISIBLE} and f.visit_id = $8 and f.severity <> 'safeguarding'"
        + " order by f.created_at, f.id",
        *visibility(caller),
        row["visit_id"],
    )
    team = {
        r["perspective"]: r["n"]
        for r in await db.fetch(
            """select perspective, count(*)::int n from visit_members where visit_id = $1
                group by 1""",
            row["visit_id"],
        )
    }
    comments = []
    if caller.has("coordinator") or row["status"] != "draft":
        comments = [
            from_row(Comment, c, author_role="service manager")
            for c in await db.fetch(
                """select id, finding_id, comment, created_at from report_comments
                    where report_id = $1 order by created_at, id""",
                row["id"],
            )
        ]
    return from_row(
        Report,
        row,
        visit_date=row["visit_starts_at"].date(),
        team={"citizen": team.get("citizen", 0), "professional": team.get("professional", 0)},
        findings=await load_findings(db, list(findings), tz),
        comments=comments,
    )
