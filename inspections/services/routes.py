"""Coordinators create and edit services; managers and scrutiny read them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Router, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import UNSET

from inspections.audit.log import audit
from inspections.services import queries as q
from inspections.services.schemas import (
    Kind,
    Service,
    ServiceCreate,
    ServicePage,
    ServicePatch,
)
from service.auth import AuthedRequest, require_roles
from service.db import DB, from_row
from service.errors import problem_responses
from service.schema import Limit, cursor_after, page_of


@post(
    "/",
    guards=[require_roles("coordinator")],
    summary="Create a service (a place that is inspected)",
    responses=problem_responses(401, 403, 422),
)
async def create_service(data: JSONBody[ServiceCreate], request: AuthedRequest, db: DB) -> Service:
    service_id = await db.fetchval(
        """insert into services (organisation_id, name, kind, address, lat, lon, geofence_m)
           values ($1, $2, $3, $4, $5, $6, $7) returning id""",
        request.user.organisation_id,
        data.name,
        data.kind,
        data.address,
        data.lat,
        data.lon,
        data.geofence_m,
    )
    assert service_id is not None  # insert ... returning: always a row
    await q.set_managers(db, request.user, service_id, data.manager_ids)
    service = await q.service_in_org(db, request.user, service_id)
    await audit(db, request, "service.create", "service", service_id, {"name": data.name})
    return service


@get(
    "/",
    guards=[require_roles("coordinator", "scrutiny_member", "service_manager")],
    summary="Services (managers see the ones they manage)",
    responses=problem_responses(400, 401, 403),
)
async def list_services(
    request: AuthedRequest,
    db: DB,
    kind: FromQuery[Kind | None] = None,
    q_: Annotated[str | None, QueryParameter(name="q", max_length=100)] = None,
    cursor: FromQuery[str | None] = None,
    limit: Limit = 50,
) -> ServicePage:
    after = cursor_after(cursor, str, str, UUID)
    only_managed = not request.user.has("coordinator", "scrutiny_member")
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
        request.user.organisation_id,
        kind,
        q_,
        *after,
        only_managed,
        request.user.user_id,
        limit + 1,
    )
    page, nxt = page_of(rows, limit, "kind", "name", "id")
    return ServicePage(items=[from_row(Service, r) for r in page], next_cursor=nxt)


@get(
    "/{service_id:uuid}",
    summary="One service",
    responses=problem_responses(401, 403, 404),
)
async def get_service(service_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Service:
    service = await q.service_in_org(db, request.user, service_id)
    q.may_read(request.user, service)
    return service


@patch(
    "/{service_id:uuid}",
    guards=[require_roles("coordinator")],
    summary="Edit a service or who manages it",
    responses=problem_responses(401, 403, 404, 422),
)
async def patch_service(
    service_id: FromPath[UUID], data: JSONBody[ServicePatch], request: AuthedRequest, db: DB
) -> Service:
    await q.service_in_org(db, request.user, service_id)
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
        await q.set_managers(db, request.user, service_id, data.manager_ids)
        await db.execute("update services set updated_at = now() where id = $1", service_id)
        changes["manager_ids"] = [str(m) for m in data.manager_ids]
    if changes:
        await audit(db, request, "service.update", "service", service_id, changes)
    return await q.service_in_org(db, request.user, service_id)


router = Router(
    "/v1/services",
    tags=["services"],
    route_handlers=[create_service, list_services, get_service, patch_service],
)
