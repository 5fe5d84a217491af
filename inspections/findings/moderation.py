"""The moderation queue: what was written after a report was published waits here.

Notes, decline reasons and photos (a finding's history lines) and action plans (their
actions and owners) written once a report is public are free text that can name residents
or staff, so the database marks them ``pending`` (migration 0024's trigger) and the public
pages and Open311 leave them out (public_queries.py) until a coordinator approves them.
A rejection keeps the item for the organisation (the manager still sees it) with the
coordinator's reason; each decision is audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from litestar import Request, Router, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from inspections.audit.log import audit
from service.auth import AuthedRequest, Principal
from service.db import DB, from_row
from service.errors import conflict, forbidden, not_found, problem_responses
from service.schema import Body

Kind = Literal["update", "action"]
TABLES: dict[str, str] = {"update": "finding_updates", "action": "finding_actions"}


class PendingItem(Body, kw_only=True):
    """One thing waiting to be reviewed before the public sees it."""

    kind: Kind  # update: a history line (note, decline reason, photos); action: a plan's step
    id: UUID
    finding_id: UUID
    finding_title: str
    service_name: str
    text: str  # the words that would become public
    owner: str | None  # an action's owner (a name, often)
    evidence_ids: list[UUID]
    written_by: str  # the role, as the public would read it
    created_at: dt.datetime


class Decision(Body, kw_only=True):
    """Why an item is rejected, for the record (the public never sees it)."""

    reason: Annotated[str, Meta(min_length=1, max_length=1000)]


# Only findings that could be public: in a report, never a safeguarding concern.
PENDING_SQL = """
    select * from (
        select 'update' kind, u.id, u.finding_id, f.title finding_title,
               s.name service_name, u.note text, null owner, u.evidence_ids,
               u.actor_role written_by, u.created_at
          from finding_updates u join findings f on f.id = u.finding_id
          join services s on s.id = f.service_id
         where u.organisation_id = $1 and u.moderation = 'pending'
           and f.in_report and f.severity <> 'safeguarding'
        union all
        select 'action', a.id, a.finding_id, f.title, s.name, a.action, a.owner,
               '{}'::uuid[], 'service manager', a.created_at
          from finding_actions a join findings f on f.id = a.finding_id
          join services s on s.id = f.service_id
         where a.organisation_id = $1 and a.moderation = 'pending'
           and f.in_report and f.severity <> 'safeguarding'
    ) p order by created_at, id limit $2"""


def require_moderator(user: Principal) -> None:
    if not user.has("coordinator"):
        raise forbidden("Only coordinators review what is published after a report.")


async def pending(db: asyncpg.Connection, user: Principal, limit: int = 200) -> list[PendingItem]:
    """What waits for review in the caller's organisation, oldest first."""
    require_moderator(user)
    rows = await db.fetch(PENDING_SQL, user.organisation_id, limit)
    return [from_row(PendingItem, r) for r in rows]


async def pending_count(db: asyncpg.Connection, organisation_id: UUID) -> int:
    n = await db.fetchval(
        f"select count(*)::int from ({PENDING_SQL.replace('limit $2', '')}) c", organisation_id
    )
    assert n is not None  # count(*) always answers a row
    return n


async def decide(
    db: asyncpg.Connection,
    request: Request[Any, Any, Any],
    user: Principal,
    kind: str,
    item_id: UUID,
    approve: bool,
    reason: str | None = None,
) -> None:
    """Approve (it becomes public) or reject (it never does) one pending item; audited."""
    require_moderator(user)
    table = TABLES.get(kind)
    if table is None:
        raise not_found("moderation item")
    row = await db.fetchrow(
        f"select moderation, finding_id from {table} where id = $1 and organisation_id = $2"
        " for update",
        item_id,
        user.organisation_id,
    )
    if row is None:
        raise not_found("moderation item")
    if row["moderation"] != "pending":
        raise conflict(f"This was already {row['moderation']}.", "already-moderated")
    decision = "approved" if approve else "rejected"
    await db.execute(
        f"""update {table} set moderation = $2, moderated_by = $3, moderated_at = now(),
                  moderation_reason = $4 where id = $1""",
        item_id,
        decision,
        user.user_id,
        reason,
    )
    await audit(
        db,
        request,
        f"moderation.{'approve' if approve else 'reject'}",
        kind,
        item_id,
        {"finding_id": str(row["finding_id"]), **({"reason": reason} if reason else {})},
    )


@get(
    "/moderation",
    summary="What was written after publication and waits for review (coordinators)",
    description="Notes, decline reasons, photos and action plans added to published findings "
    "are not on the public pages or Open311 until a coordinator approves them.",
    responses=problem_responses(403),
)
async def list_pending(request: AuthedRequest, db: DB) -> list[PendingItem]:
    return await pending(db, request.user)


@post(
    "/moderation/{kind:str}/{item_id:uuid}/approve",
    status_code=204,
    summary="Approve a pending item: it becomes public (audited)",
    responses=problem_responses(403, 409),
)
async def approve(
    kind: FromPath[str], item_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> None:
    await decide(db, request, request.user, kind, item_id, approve=True)


@post(
    "/moderation/{kind:str}/{item_id:uuid}/reject",
    status_code=204,
    summary="Reject a pending item with a reason: it is never public (audited)",
    responses=problem_responses(403, 409),
)
async def reject(
    kind: FromPath[str],
    item_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    data: JSONBody[Decision],
) -> None:
    await decide(db, request, request.user, kind, item_id, approve=False, reason=data.reason)


router = Router("/v1", tags=["moderation"], route_handlers=[list_pending, approve, reject])
