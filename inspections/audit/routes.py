"""GET /v1/audit: the organisation's audit trail, for coordinators."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from litestar import Router, get
from litestar.params import FromQuery

from service.auth import AuthedRequest, coordinator_only
from service.db import DB, from_row
from service.schema import Body, Page, Paging


class AuditEntry(Body):
    id: int
    at: dt.datetime
    actor_id: UUID | None
    action: str
    object_type: str
    object_id: str
    summary: dict[str, Any]
    request_id: str | None


class AuditPage(Page[AuditEntry]):
    """A page of the audit log."""


@get(
    "/",
    summary="Every write in the organisation, newest first",
)
async def list_audit(
    request: AuthedRequest,
    db: DB,
    *,
    actor_id: FromQuery[UUID | None] = None,
    action: FromQuery[str | None] = None,
    object_type: FromQuery[str | None] = None,
    object_id: FromQuery[str | None] = None,
    since: FromQuery[dt.datetime | None] = None,
    until: FromQuery[dt.datetime | None] = None,
    paging: Paging,
) -> AuditPage:
    (before,) = paging.after(int)
    rows = await db.fetch(
        """select id, at, actor_id, action, object_type, object_id, summary, request_id
             from audit_log
            where organisation_id = $1
              and ($2::uuid is null or actor_id = $2)
              and ($3::text is null or action = $3)
              and ($4::text is null or object_type = $4)
              and ($5::text is null or object_id = $5)
              and ($6::timestamptz is null or at >= $6)
              and ($7::timestamptz is null or at < $7)
              and ($8::bigint is null or id < $8)
            order by id desc
            limit $9""",
        request.user.organisation_id,
        actor_id,
        action,
        object_type,
        object_id,
        since,
        until,
        before,
        paging.fetch,
    )
    page, nxt = paging.page(rows, "id")
    return AuditPage(items=[from_row(AuditEntry, r) for r in page], next_cursor=nxt)


router = Router("/v1/audit", tags=["audit"], guards=coordinator_only, route_handlers=[list_audit])
