"""Writing to the append-only audit log, from any slice: in the caller's transaction, or in
the same statement as the change it records (``insert_from``)."""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

# One audit line's columns, in the order both writers below give them.
_COLUMNS = "(organisation_id, actor_id, action, object_type, object_id, summary, request_id)"


async def record(
    conn: asyncpg.Connection,
    organisation_id: UUID,
    actor_id: UUID | None,
    action: str,
    object_type: str,
    object_id: UUID | str,
    summary: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> None:
    await conn.execute(
        f"insert into audit_log {_COLUMNS} values ($1, $2, $3, $4, $5, $6, $7)",
        organisation_id,
        actor_id,
        action,
        object_type,
        str(object_id),
        summary or {},
        request_id,
    )


async def audit(
    db: asyncpg.Connection,
    request: Any,
    action: str,
    object_type: str,
    object_id: UUID | str,
    summary: dict[str, Any] | None = None,
    *,
    organisation_id: UUID | None = None,
    actor_id: UUID | None = None,
) -> None:
    """Record a write by the signed-in caller (or by the given actor on public routes)."""
    user = request.scope.get("user")
    await record(
        db,
        organisation_id or user.organisation_id,
        actor_id if actor_id is not None or user is None else user.user_id,
        action,
        object_type,
        object_id,
        summary,
        request.scope.get("state", {}).get("request_id"),
    )


class Entry(NamedTuple):
    """An audit line written by the same statement as the change it records (see
    ``insert_from``): the object is the id of that statement's row."""

    organisation_id: UUID
    actor_id: UUID | None
    action: str
    object_type: str
    summary: dict[str, Any]
    request_id: str | None


def insert_from(source: str, first: int) -> str:
    """SQL for a CTE that audits each row of CTE ``source`` (by its ``id``), with
    ``Entry``'s fields as parameters ``$first`` … ``$first+5``: one statement, so the
    change and its audit line commit together without a transaction of their own."""
    p = [f"${first + i}" for i in range(6)]
    return f"""insert into audit_log {_COLUMNS}
               select {p[0]}::uuid, {p[1]}::uuid, {p[2]}::text, {p[3]}::text, {source}.id::text,
                      {p[4]}::jsonb, {p[5]}::text
                 from {source}"""
