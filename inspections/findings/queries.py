"""Loading findings with who may see them decided in the same query.

A finding the caller may not see answers 404, as if it did not exist: a service manager
must not learn that a safeguarding concern was raised about their service.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from typing import Any
from uuid import UUID

import asyncpg

from inspections.findings import rules
from inspections.findings.schemas import ActionOut, Finding, FindingSettings, HistoryEntry
from inspections.org_settings import read_section
from service.auth import Principal
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


def etag_of(body_hash: bytes) -> str:
    return '"' + body_hash.hex()[:32] + '"'


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
        """select finding_id, position, action, owner, target_date, done_at
             from finding_actions where finding_id = any($1::uuid[])
            order by finding_id, position""",
        ids,
    ):
        actions[a["finding_id"]].append(
            ActionOut(
                number=a["position"],
                action=a["action"],
                owner=a["owner"],
                target_date=a["target_date"],
                done_at=a["done_at"],
            )
        )
    history: dict[UUID, list[HistoryEntry]] = defaultdict(list)
    for h in await db.fetch(
        """select id, finding_id, kind, from_status, to_status, actor_role, note,
                  evidence_ids, created_at at
             from finding_updates where finding_id = any($1::uuid[])
            order by finding_id, created_at, id""",
        ids,
    ):
        history[h["finding_id"]].append(
            HistoryEntry(**{k: h[k] for k in HistoryEntry.__struct_fields__})
        )
    return actions, history


async def load_findings(db: asyncpg.Connection, rows: list[Any], timezone: str) -> list[Finding]:
    """Findings from FINDING_SQL rows, with their actions and history."""
    actions, history = await actions_and_history(db, [r["id"] for r in rows])
    now = today(timezone)
    out = []
    for r in rows:
        fields = {k: r[k] for k in Finding.__struct_fields__ if k in r.keys()}
        out.append(
            Finding(
                **fields,
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


async def finding_for(
    db: asyncpg.Connection, caller: Principal, finding_id: UUID, timezone: str, lock: bool = False
) -> Finding:
    """The finding if the caller may see it; 404 otherwise (existence is not revealed)."""
    row = await db.fetchrow(
        FINDING_SQL + f" where f.id = $8 and {VISIBLE}" + (" for update of f" if lock else ""),
        *visibility(caller),
        finding_id,
    )
    if row is None:
        raise not_found("finding")
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
