"""Coordinators create and edit services; managers and scrutiny read them."""

from __future__ import annotations

from uuid import UUID

from litestar import Router, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from inspections.services import operations
from inspections.services import queries as q
from inspections.services.schemas import (
    Kind,
    Service,
    ServiceCreate,
    ServicePage,
    ServicePatch,
)
from service.auth import AuthedRequest, coordinator_only, require_roles
from service.db import DB
from service.errors import problem_responses
from service.schema import Paging, Search


@post(
    "/",
    guards=coordinator_only,
    summary="Create a service (a place that is inspected)",
)
async def create_service(data: JSONBody[ServiceCreate], request: AuthedRequest, db: DB) -> Service:
    return await operations.create_service(db, request, request.user, data)


@get(
    "/",
    guards=[require_roles("coordinator", "scrutiny_member", "service_manager")],
    summary="Services (managers see the ones they manage)",
)
async def list_services(
    request: AuthedRequest,
    db: DB,
    *,
    kind: FromQuery[Kind | None] = None,
    q_: Search = None,
    paging: Paging,
) -> ServicePage:
    items, nxt = await operations.list_services(
        db,
        request.user,
        kind=kind,
        search=q_,
        after=paging.after(str, str, UUID),
        limit=paging.limit,
    )
    return ServicePage(items=items, next_cursor=nxt)


@get(
    "/{service_id:uuid}",
    summary="One service",
    responses=problem_responses(403),
)
async def get_service(service_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Service:
    return await q.service_for(db, request.user, service_id)


@patch(
    "/{service_id:uuid}",
    guards=coordinator_only,
    summary="Edit a service or who manages it",
)
async def patch_service(
    service_id: FromPath[UUID], data: JSONBody[ServicePatch], request: AuthedRequest, db: DB
) -> Service:
    return await operations.update_service(db, request, request.user, service_id, data)


router = Router(
    "/v1/services",
    tags=["services"],
    route_handlers=[create_service, list_services, get_service, patch_service],
)
