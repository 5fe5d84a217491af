"""Creating, listing and editing services: called by the JSON routes and the pages alike."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from msgspec import UNSET

from inspections.audit.log import audit
from inspections.services import queries as q
from inspections.services.schemas import Service, ServiceCreate, ServicePatch
from service.auth import Principal
from service.db import from_row
from service.schema import page_of


async def create_service(
    db: asyncpg.Connection, request: Any, caller: Principal, data: ServiceCreate
) -> Service:
    """A new service of the caller's organisation, with its managers."""
    caller.require("coordinator")
    service_id = await db.fetchval(
        """insert into services (organisation_id, name, kind, address, lat, lon, geofence_m)
           values ($1, $2, $3, $4, $5, $6, $7) returning id""",
        caller.organisation_id,
        data.name,
        data.kind,
        data.address,
        data.lat,
        data.lon,
        data.geofence_m,
    )
    assert service_id is not None  # insert ... returning: always a row
    await q.set_managers(db, caller, service_id, data.manager_ids)
    service = await q.service_in_org(db, caller, service_id)
    await audit(db, request, "service.create", "service", service_id, {"name": data.name})
    return service


async def list_services(
    db: asyncpg.Connection,
    caller: Principal,
    *,
    kind: str | None = None,
    search: str | None = None,
    after: tuple[Any, ...] = (None, None, None),
    limit: int = 50,
) -> tuple[list[Service], str | None]:
    """Services by kind then name (managers: only the ones they manage), and the next cursor."""
    only_managed = not caller.has("coordinator", "scrutiny_member")
    rows = await db.fetch(
        f"""select {q.SERVICE_COLS} from services s
             where s.organisation_id = $1
               and ($2::text is null or s.kind = $2)
               and ($3::text is null or s.name ilike '%' || $3 || '%'
                    or s.address ilike '%' || $3 || '%')
               and ($4::text is null or (s.kind, s.name, s.id) > ($4, $5, $6))
               and (not $7 or exists (select 1 from service_managers m
                                      where m.service_id = s.id and m.user_id = $8))
             order by s.kind, s.name, s.id
             limit $9""",
        caller.organisation_id,
        kind,
        search,
        *after,
        only_managed,
        caller.user_id,
        limit + 1,
    )
    page, nxt = page_of(rows, limit, "kind", "name", "id")
    return [from_row(Service, r) for r in page], nxt


async def update_service(
    db: asyncpg.Connection, request: Any, caller: Principal, service_id: UUID, data: ServicePatch
) -> Service:
    """Change a service's details or who manages it (only what ``data`` sets)."""
    caller.require("coordinator")
    await q.service_in_org(db, caller, service_id)
    fields = ("name", "kind", "address", "lat", "lon", "geofence_m")
    changes = {f: getattr(data, f) for f in fields if getattr(data, f) is not UNSET}
    if changes:
        sets = ", ".join(f"{f} = ${i}" for i, f in enumerate(changes, start=2))
        await db.execute(
            f"update services set {sets}, updated_at = now() where id = $1",
            service_id,
            *changes.values(),
        )
    if data.manager_ids is not UNSET:
        await q.set_managers(db, caller, service_id, data.manager_ids)
        await db.execute("update services set updated_at = now() where id = $1", service_id)
        changes["manager_ids"] = [str(m) for m in data.manager_ids]
    if changes:
        await audit(db, request, "service.update", "service", service_id, changes)
    return await q.service_in_org(db, caller, service_id)


async def managers_to_choose(db: asyncpg.Connection, caller: Principal) -> list[asyncpg.Record]:
    """The organisation's active service managers (id, display_name, email): whom
    ``set_managers`` accepts."""
    return await db.fetch(
        """select id, display_name, email from users
            where organisation_id = $1 and active and 'service_manager' = any(roles)
            order by display_name, email""",
        caller.organisation_id,
    )
