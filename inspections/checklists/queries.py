"""SQL of the checklists slice."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from inspections.checklists.questions import Content, content_problems
from inspections.checklists.schemas import Checklist, ChecklistVersion
from service.auth import Principal
from service.db import row_or_404
from service.errors import unprocessable

VERSION_COLS = """checklist_id, version, title, description, service_kinds, contributors,
    content, published_at"""


def validate_content(content: Content) -> None:
    problems = content_problems(content)
    if problems:
        raise unprocessable("; ".join(f"{p.field}: {p.reason}" for p in problems), problems)


def draft_doc(
    title: str, description: str, kinds: list[str], contributors: Any, content: Any
) -> dict[str, Any]:
    """The draft as one JSON document (metadata travels with the content it describes)."""
    return msgspec.to_builtins(
        {
            "title": title,
            "description": description,
            "service_kinds": kinds,
            "contributors": contributors,
            "content": content,
        }
    )


async def checklist_row(db: asyncpg.Connection, caller: Principal, checklist_id: UUID) -> Any:
    return await row_or_404(
        db,
        "checklist",
        """select c.*, v.title v_title, v.description v_description,
                  v.service_kinds v_service_kinds, v.contributors v_contributors,
                  v.content v_content
             from checklists c
             left join checklist_versions v
                    on v.checklist_id = c.id and v.version = c.latest_version
            where c.id = $1 and c.organisation_id = $2""",
        checklist_id,
        caller.organisation_id,
    )


def current_doc(row: Any) -> dict[str, Any]:
    if row["draft"] is not None:
        return row["draft"]
    return {
        "title": row["v_title"],
        "description": row["v_description"],
        "service_kinds": row["v_service_kinds"],
        "contributors": row["v_contributors"],
        "content": row["v_content"],
    }


def to_checklist(row: Any) -> Checklist:
    doc = current_doc(row)
    return msgspec.convert(
        {
            **doc,
            "id": row["id"],
            "has_draft": row["draft"] is not None,
            "latest_version": row["latest_version"],
            "retired": row["retired_at"] is not None,
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        },
        Checklist,
        from_attributes=True,
    )


async def version_in_org(
    db: asyncpg.Connection, organisation_id: UUID, checklist_id: UUID, version: int
) -> ChecklistVersion:
    row = await row_or_404(
        db,
        "checklist version",
        f"""select {VERSION_COLS} from checklist_versions
             where checklist_id = $1 and version = $2 and organisation_id = $3""",
        checklist_id,
        version,
        organisation_id,
    )
    return msgspec.convert(dict(row), ChecklistVersion)
