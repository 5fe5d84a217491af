"""The two starter checklists every new organisation gets, published as version 1."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import asyncpg
import msgspec

from inspections.checklists.questions import content_problems
from inspections.checklists.schemas import ChecklistCreate

STARTERS = Path(__file__).parent / "starter"


def load_starters() -> list[ChecklistCreate]:
    out = []
    for path in sorted(STARTERS.glob("*.json")):
        checklist = msgspec.json.decode(path.read_bytes(), type=ChecklistCreate)
        assert not content_problems(checklist.content), path
        out.append(checklist)
    return out


async def install_starters(conn: asyncpg.Connection, organisation_id: UUID) -> list[UUID]:
    """Create and publish the starters (plain SQL: used by the CLI outside any request)."""
    enc = msgspec.json.Encoder()
    ids = []
    for c in load_starters():
        contributors = enc.encode(c.contributors).decode()
        content = enc.encode(c.content).decode()
        checklist_id = await conn.fetchval(
            """insert into checklists (organisation_id, title, description, service_kinds,
                                       contributors, latest_version)
               values ($1, $2, $3, $4, $5::text::jsonb, 1) returning id""",
            organisation_id,
            c.title,
            c.description,
            c.service_kinds,
            contributors,
        )
        await conn.execute(
            """insert into checklist_versions (checklist_id, version, organisation_id, title,
                   description, service_kinds, contributors, content)
               values ($1, 1, $2, $3, $4, $5, $6::text::jsonb, $7::text::jsonb)""",
            checklist_id,
            organisation_id,
            c.title,
            c.description,
            c.service_kinds,
            contributors,
            content,
        )
        ids.append(checklist_id)
    return ids
