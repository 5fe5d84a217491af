"""An organisation's settings: one JSON section per slice (scoring, findings) in
organisations.settings, read as that slice's Struct and patched field by field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import msgspec

S = TypeVar("S", bound=msgspec.Struct)


async def read_section(db: asyncpg.Connection, org: UUID, section: str, typ: type[S]) -> S:
    """The section with every default filled in (an organisation that set nothing)."""
    raw = await db.fetchval("select settings -> $2 from organisations where id = $1", org, section)
    return msgspec.convert(raw or {}, typ)


async def patch_section(
    db: asyncpg.Connection,
    org: UUID,
    section: str,
    typ: type[S],
    patch: msgspec.Struct,
    check: Callable[[S], None] = lambda _: None,
) -> tuple[S, dict[str, Any]]:
    """Apply the fields the patch sets; returns the new section and what changed (to audit).
    ``check`` raises for combinations a single field's constraint cannot express."""
    current = msgspec.to_builtins(await read_section(db, org, section, typ))
    changes = msgspec.to_builtins(patch)
    merged = msgspec.convert({**current, **changes}, typ)
    check(merged)
    await db.execute(
        "update organisations set settings = jsonb_set(settings, array[$2], $3::jsonb) "
        "where id = $1",
        org,
        section,
        msgspec.to_builtins(merged),
    )
    return merged, changes
