"""/services: the services an organisation inspects, as pages.

List and search (coordinators, scrutiny members, and managers for their own services, as the
API lists them); coordinators add a service and edit one: name, kind, address, location,
geofence radius and managers chosen from the organisation's service managers. Every handler
calls what the JSON route calls (inspections/services/operations.py), behind the same guard.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
import msgspec
from litestar import Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template

from inspections.services import operations
from inspections.services import queries as q
from inspections.services.schemas import (
    Kind,
    Service,
    ServiceCreate,
    ServicePatch,
)
from inspections.web.screens import (
    Refused,
    read_form,
    screen,
    screens_router,
    see_other,
    submit,
)
from inspections.wording import long_date
from service.auth import AuthedRequest, coordinator_only, require_roles
from service.db import DB
from service.schema import cursor_after

# The JSON routes' guards.
readers = [require_roles("coordinator", "scrutiny_member", "service_manager")]

# Kinds offered when adding a service; the league table groups services by kind.
KINDS = {
    "care_home": "Care home",
    "hospital_ward": "Hospital ward",
    "gp_surgery": "GP surgery",
    "home_care": "Home care",
    "day_centre": "Day centre",
    "dental_practice": "Dental practice",
    "pharmacy": "Pharmacy",
    "mental_health_unit": "Mental health unit",
}


def kind_words(kind: str) -> str:
    return KINDS.get(kind) or kind.replace("_", " ").capitalize()


# The form is read as the API's body itself (ServiceCreate): the same fields and rules.
LABELS = {
    "name": "Name",
    "kind": "Kind of service",
    "address": "Address",
    "lat": "Latitude",
    "lon": "Longitude",
    "geofence_m": "Geofence radius in metres",
    "manager_ids": "Managers",
}
# Where the general words would not say what to type.
PLAIN = {
    "lat": "Latitude must be a number from -90 to 90, like 51.5072",
    "lon": "Longitude must be a number from -180 to 180, like -0.1276",
    "geofence_m": "Geofence radius must be a whole number of metres from 10 to 10000",
    "kind": "Choose the kind of service",
}
FIELDS = ("name", "kind", "address", "lat", "lon", "geofence_m")


async def _kinds(db: asyncpg.Connection, request: AuthedRequest) -> dict[str, str]:
    """The kinds to choose from: the usual ones and any this organisation already uses."""
    used = await db.fetch(
        "select distinct kind from services where organisation_id = $1 order by kind",
        request.user.organisation_id,
    )
    return {**KINDS, **{r["kind"]: kind_words(r["kind"]) for r in used}}


async def _form_page(
    request: AuthedRequest,
    db: asyncpg.Connection,
    *,
    service: Service | None,
    values: dict[str, Any],
    errors: list[dict[str, str]],
    status: int = 200,
    saved: str = "",
) -> Template:
    managers = await operations.managers_to_choose(db, request.user)
    return screen(
        request,
        "services/service_form.html",
        status=status,
        service=service,
        values=values,
        errors=errors,
        kinds=await _kinds(db, request),
        managers=managers,
        saved=saved,
        updated=long_date(service.updated_at) if service else "",
    )


def _values(service: Service | None) -> dict[str, Any]:
    if service is None:
        return {f: "" for f in FIELDS} | {"geofence_m": "150", "manager_ids": []}
    return {f: str(getattr(service, f)) for f in FIELDS} | {
        "manager_ids": [str(m) for m in service.manager_ids]
    }


async def _posted(request: AuthedRequest) -> dict[str, Any]:
    raw = await request.form()
    return {f: raw.get(f, "") for f in FIELDS} | {"manager_ids": raw.getall("manager_ids", [])}


@get("/", guards=readers)
async def services_list(
    request: AuthedRequest,
    db: DB,
    search: Annotated[str | None, QueryParameter(name="q", max_length=100)] = None,
    kind: FromQuery[Kind | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Template:
    found, nxt = await operations.list_services(
        db,
        request.user,
        kind=kind,
        search=search or None,
        after=cursor_after(cursor, str, str, UUID),
    )
    names = {
        r["id"]: r["display_name"]
        for r in await db.fetch(
            """select id, display_name from users
                where id = any($1::uuid[]) and organisation_id = $2""",
            list({m for s in found for m in s.manager_ids}),
            request.user.organisation_id,
        )
    }
    rows = [
        {
            "service": s,
            "kind": kind_words(s.kind),
            "managers": [names[m] for m in s.manager_ids if m in names],
        }
        for s in found
    ]
    query = {"q": search or "", "kind": kind or ""}
    return screen(
        request,
        "services/services_list.html",
        rows=rows,
        query=query,
        kinds=await _kinds(db, request),
        filtered=bool(search or kind),
        editor=request.user.has("coordinator"),
        next_url="/services?" + urlencode({**query, "cursor": nxt}) if nxt else None,
    )


@get("/new", guards=coordinator_only)
async def new_service(request: AuthedRequest, db: DB) -> Template:
    return await _form_page(request, db, service=None, values=_values(None), errors=[])


@post("/new", guards=coordinator_only)
async def create_service(request: AuthedRequest, db: DB) -> Template | Response[None]:
    values = await _posted(request)
    made = await submit(
        db,
        await read_form(request, ServiceCreate, LABELS, PLAIN),
        lambda d: operations.create_service(db, request, request.user, d),
        LABELS,
    )
    if isinstance(made, Refused):
        return await _form_page(
            request, db, service=None, values=values, errors=made.errors, status=made.status
        )
    return see_other(f"/services/{made.id}?saved=1")


@get("/{service_id:uuid}", guards=coordinator_only)
async def edit_service(
    service_id: FromPath[UUID], request: AuthedRequest, db: DB, saved: FromQuery[str] = ""
) -> Template:
    service = await q.service_in_org(db, request.user, service_id)
    return await _form_page(
        request,
        db,
        service=service,
        values=_values(service),
        errors=[],
        saved="Service saved." if saved else "",
    )


@post("/{service_id:uuid}", guards=coordinator_only)
async def update_service(
    service_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Template | Response[None]:
    service = await q.service_in_org(db, request.user, service_id)
    values = await _posted(request)
    done = await submit(
        db,
        await read_form(request, ServiceCreate, LABELS, PLAIN),
        # The form sends every field: the whole service, as a PATCH of all of them.
        lambda d: operations.update_service(
            db, request, request.user, service_id, ServicePatch(**msgspec.structs.asdict(d))
        ),
        LABELS,
    )
    if isinstance(done, Refused):
        return await _form_page(
            request, db, service=service, values=values, errors=done.errors, status=done.status
        )
    return see_other(f"/services/{service_id}?saved=1")


router = screens_router(
    "/services", [services_list, new_service, create_service, edit_service, update_service]
)
