"""What can be done to a checklist, once: the JSON routes and the Checklists pages call these.

Each takes the caller's request (for the organisation and the audit record); the routes'
guards say who may call them (``routes.coordinator``, ``routes.readers``), the pages use the
same guards.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from msgspec import UNSET

from inspections.audit.log import audit
from inspections.checklists import queries as q
from inspections.checklists.questions import Content, questions
from inspections.checklists.schemas import (
    Checklist,
    ChecklistCreate,
    ChecklistPatch,
    ChecklistSummary,
    ChecklistVersion,
    Published,
)
from inspections.checklists.spreadsheet import write_checklist
from service.auth import AuthedRequest, Principal
from service.db import from_row
from service.errors import conflict, unprocessable


async def create_draft(
    db: asyncpg.Connection, request: AuthedRequest, data: ChecklistCreate
) -> Checklist:
    """A new checklist whose draft is ``data`` (nothing published yet)."""
    q.validate_content(data.content)
    doc = q.draft_doc(
        data.title, data.description, data.service_kinds, data.contributors, data.content
    )
    checklist_id = await db.fetchval(
        """insert into checklists (organisation_id, title, description, service_kinds,
                                   contributors, draft)
           values ($1, $2, $3, $4, $5, $6) returning id""",
        request.user.organisation_id,
        data.title,
        data.description,
        data.service_kinds,
        doc["contributors"],
        doc,
    )
    assert checklist_id is not None  # insert ... returning: always a row
    await audit(db, request, "checklist.create", "checklist", checklist_id, {"title": data.title})
    return q.to_checklist(await q.checklist_row(db, request.user, checklist_id))


async def update_draft(
    db: asyncpg.Connection, request: AuthedRequest, checklist_id: UUID, data: ChecklistPatch
) -> Checklist:
    """Change the draft (editing a published checklist starts a new draft from it)."""
    row = await q.checklist_row(db, request.user, checklist_id)
    if row["retired_at"] is not None:
        raise conflict("This checklist is retired; create a new one instead.", "retired")
    doc = dict(q.current_doc(row))
    changed = []
    for field in ChecklistPatch.__struct_fields__:
        value = getattr(data, field)
        if value is not UNSET:
            if field == "content":
                q.validate_content(value)
            doc[field] = msgspec.to_builtins(value)
            changed.append(field)
    await db.execute(
        "update checklists set draft = $2, updated_at = now() where id = $1", checklist_id, doc
    )
    await audit(db, request, "checklist.edit", "checklist", checklist_id, {"fields": changed})
    return q.to_checklist(await q.checklist_row(db, request.user, checklist_id))


async def publish(db: asyncpg.Connection, request: AuthedRequest, checklist_id: UUID) -> Published:
    """Freeze the draft as the next immutable version."""
    # Lock the row so two publishes cannot both take version n+1.
    await db.execute("select 1 from checklists where id = $1 for update", checklist_id)
    row = await q.checklist_row(db, request.user, checklist_id)
    if row["retired_at"] is not None:
        raise conflict("This checklist is retired.", "retired")
    if row["draft"] is None:
        raise conflict("There is no draft to publish; edit the checklist first.", "no-draft")
    doc = row["draft"]
    content = msgspec.convert(doc["content"], Content)
    q.validate_content(content)
    if not questions(content):
        raise unprocessable("A checklist needs at least one question before it is published.")
    version = row["latest_version"] + 1
    await db.execute(
        """insert into checklist_versions (checklist_id, version, organisation_id, title,
               description, service_kinds, contributors, content, published_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        checklist_id,
        version,
        request.user.organisation_id,
        doc["title"],
        doc["description"],
        doc["service_kinds"],
        doc["contributors"],
        doc["content"],
        request.user.user_id,
    )
    await db.execute(
        """update checklists set latest_version = $2, draft = null, title = $3,
                  description = $4, service_kinds = $5, contributors = $6, updated_at = now()
            where id = $1""",
        checklist_id,
        version,
        doc["title"],
        doc["description"],
        doc["service_kinds"],
        doc["contributors"],
    )
    await audit(db, request, "checklist.publish", "checklist", checklist_id, {"version": version})
    return Published(checklist_id=checklist_id, version=version)


async def retire(db: asyncpg.Connection, request: AuthedRequest, checklist_id: UUID) -> Checklist:
    """Hidden from new visits; visits already planned keep their version."""
    await q.checklist_row(db, request.user, checklist_id)
    await db.execute(
        """update checklists set retired_at = coalesce(retired_at, now()), updated_at = now()
            where id = $1""",
        checklist_id,
    )
    await audit(db, request, "checklist.retire", "checklist", checklist_id)
    return q.to_checklist(await q.checklist_row(db, request.user, checklist_id))


async def list_checklists(
    db: asyncpg.Connection,
    caller: Principal,
    include_retired: bool,
    after: tuple[Any, ...],
    limit: int,
) -> list[Any]:
    """Rows of the caller's organisation's checklists, oldest first (``limit`` of them)."""
    return await db.fetch(
        """select id, coalesce(draft->>'title', title) title, service_kinds,
                  draft is not null has_draft, latest_version, retired_at is not null retired,
                  updated_at, created_at
             from checklists
            where organisation_id = $1 and ($2 or retired_at is null)
              and ($3::timestamptz is null or (created_at, id) > ($3::timestamptz, $4))
            order by created_at, id limit $5""",
        caller.organisation_id,
        include_retired,
        after[0],
        after[1],
        limit,
    )


def summaries(rows: list[Any]) -> list[ChecklistSummary]:
    return [from_row(ChecklistSummary, r) for r in rows]


class VersionInfo(msgspec.Struct, frozen=True):
    version: int
    published_at: dt.datetime


async def versions(
    db: asyncpg.Connection, caller: Principal, checklist_id: UUID
) -> list[VersionInfo]:
    """The published versions of a checklist of the caller's organisation, newest first."""
    await q.checklist_row(db, caller, checklist_id)  # 404 when not theirs
    rows = await db.fetch(
        """select version, published_at from checklist_versions
            where checklist_id = $1 and organisation_id = $2 order by version desc""",
        checklist_id,
        caller.organisation_id,
    )
    return [VersionInfo(r["version"], r["published_at"]) for r in rows]


async def get_version(
    db: asyncpg.Connection, caller: Principal, checklist_id: UUID, version: int
) -> ChecklistVersion:
    return await q.version_in_org(db, caller.organisation_id, checklist_id, version)


async def get_checklist(db: asyncpg.Connection, caller: Principal, checklist_id: UUID) -> Checklist:
    """The checklist with its draft (or its latest version when there is no draft)."""
    return q.to_checklist(await q.checklist_row(db, caller, checklist_id))


def _as_create(c: Checklist | ChecklistVersion) -> ChecklistCreate:
    return ChecklistCreate(
        title=c.title,
        description=c.description,
        service_kinds=c.service_kinds,
        contributors=c.contributors,
        content=c.content,
    )


def workbook_name(title: str, suffix: str) -> str:
    """A file name from the title: letters, digits and dashes only (safe in any header)."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "checklist"
    return f"{slug}-{suffix}.xlsx"


async def export_version(
    db: asyncpg.Connection, caller: Principal, checklist_id: UUID, version: int
) -> tuple[str, bytes]:
    """A published version as an .xlsx workbook: (file name, bytes)."""
    v = await get_version(db, caller, checklist_id, version)
    return workbook_name(v.title, f"v{version}"), write_checklist(_as_create(v))


async def export_current(
    db: asyncpg.Connection, caller: Principal, checklist_id: UUID
) -> tuple[str, bytes]:
    """The draft (or, with none, the latest version) as an .xlsx workbook."""
    c = await get_checklist(db, caller, checklist_id)
    suffix = "draft" if c.has_draft else f"v{c.latest_version}"
    return workbook_name(c.title, suffix), write_checklist(_as_create(c))
