"""An organisation's settings: one JSON section per slice (scoring, findings) in
organisations.settings, read as that slice's Struct and patched field by field, and
the GET/PATCH pair of routes every section has (``settings_routes``). Each section the
routes are made for is also listed in ``SECTIONS``: the /settings page
(inspections/org_settings_pages.py) shows and saves them through ``save_section`` too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import litestar
import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody

from inspections.audit.log import audit
from service.auth import AuthedRequest, coordinator_only, require_roles
from service.db import DB
from service.errors import problem_responses

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


def _no_check(_: Any) -> None:
    return None


@dataclass(frozen=True)
class Section:
    """One settings section as its routes save it: its Structs, its check and its audit."""

    section: str
    typ: type[msgspec.Struct]
    patch_typ: type[msgspec.Struct]
    audit_action: str
    check: Callable[[Any], None]


# Every section settings_routes was made for, in the order the slices made them.
SECTIONS: dict[str, Section] = {}


async def save_section(
    db: asyncpg.Connection, request: AuthedRequest, s: Section, patch: msgspec.Struct
) -> Any:
    """Patch the caller's organisation's section (checked) and audit what changed: the
    PATCH route and the /settings page both save this way."""
    org = request.user.organisation_id
    merged, changes = await patch_section(db, org, s.section, s.typ, patch, s.check)
    await audit(db, request, s.audit_action, "organisation", org, changes)
    return merged


def settings_routes(
    path: str,
    section: str,
    typ: type[S],
    patch_typ: type[msgspec.Struct],
    *,
    name: str,
    audit_action: str,
    readers: Sequence[str],
    read_summary: str,
    patch_summary: str,
    check: Callable[[S], None] = _no_check,
) -> list[HTTPRouteHandler]:
    """The GET/PATCH pair of one settings section: anyone in ``readers`` reads it, a
    coordinator patches it (checked by ``check``, audited as ``audit_action``).

    The handlers are named ``get_<name>`` and ``patch_<name>``: the OpenAPI operation ids
    come from the path and these names.
    """

    saved = SECTIONS[section] = Section(section, typ, patch_typ, audit_action, check)

    async def read(request: AuthedRequest, db: DB) -> Any:
        return await read_section(db, request.user.organisation_id, section, typ)

    async def write(data: Any, request: AuthedRequest, db: DB) -> Any:
        return await save_section(db, request, saved, data)

    # Real types, not the strings ``from __future__ import annotations`` leaves: Litestar
    # reads them for parsing and for the OpenAPI document.
    read.__annotations__ = {"request": AuthedRequest, "db": DB, "return": typ}
    write.__annotations__ = {
        "data": JSONBody[patch_typ],  # type: ignore[valid-type]
        "request": AuthedRequest,
        "db": DB,
        "return": typ,
    }
    read.__name__ = read.__qualname__ = f"get_{name}"
    write.__name__ = write.__qualname__ = f"patch_{name}"
    return [
        litestar.get(
            path,
            guards=[require_roles(*readers)],
            summary=read_summary,
            responses=problem_responses(401, 403),
        )(read),
        litestar.patch(
            path,
            guards=coordinator_only,
            summary=patch_summary,
            responses=problem_responses(401, 403, 422),
        )(write),
    ]
