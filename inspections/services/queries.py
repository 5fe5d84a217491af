"""SQL of the services slice, with the check of who may see a service beside its query."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from inspections.services.schemas import Service
from service.auth import Principal
from service.db import from_row, row_or_404
from service.errors import FieldError, forbidden, unprocessable

SERVICE_COLS = """s.id, s.name, s.kind, s.address, s.lat, s.lon, s.geofence_m, s.created_at,
    s.updated_at, coalesce((select array_agg(m.user_id order by m.user_id)
                            from service_managers m where m.service_id = s.id), '{}') manager_ids"""


async def service_in_org(db: asyncpg.Connection, caller: Principal, service_id: UUID) -> Service:
    row = await row_or_404(
        db,
        "service",
        f"select {SERVICE_COLS} from services s where s.id = $1 and s.organisation_id = $2",
        service_id,
        caller.organisation_id,
    )
    return from_row(Service, row)


async def service_for(db: asyncpg.Connection, caller: Principal, service_id: UUID) -> Service:
    """One service of the caller's organisation that the caller may read (404, 403)."""
    service = await service_in_org(db, caller, service_id)
    may_read(caller, service)
    return service


def may_read(caller: Principal, service: Service) -> None:
    """Coordinators and scrutiny see every service; managers only the ones they manage."""
    if caller.has("coordinator", "scrutiny_member"):
        return
    if caller.has("service_manager") and caller.user_id in service.manager_ids:
        return
    raise forbidden("You can only see services you manage.")


async def check_managers(db: asyncpg.Connection, caller: Principal, ids: list[UUID]) -> None:
    ok = {
        r["id"]
        for r in await db.fetch(
            """select id from users where id = any($1::uuid[]) and organisation_id = $2
                  and active and 'service_manager' = any(roles)""",
            ids,
            caller.organisation_id,
        )
    }
    bad = [
        FieldError(
            field=f"$.manager_ids[{i}]",
            reason="not an active service manager in your organisation",
        )
        for i, uid in enumerate(ids)
        if uid not in ok
    ]
    if bad:
        raise unprocessable("Some managers cannot answer for this service.", bad)


async def set_managers(
    db: asyncpg.Connection, caller: Principal, service_id: UUID, ids: list[UUID]
) -> None:
    ids = list(dict.fromkeys(ids))
    await check_managers(db, caller, ids)
    await db.execute("delete from service_managers where service_id = $1", service_id)
    await db.execute(
        """insert into service_managers (service_id, user_id, organisation_id)
           select $1, unnest($2::uuid[]), $3""",
        service_id,
        ids,
        caller.organisation_id,
    )
