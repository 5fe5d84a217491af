"""Published findings as Open311 GeoReport v2 service requests, for civic tools.

Positions are the service's (``lat``/``long``), never a photo's; ``media_url`` is the first
public photo's display derivative.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from uuid import UUID

from litestar import Request, Router, get
from litestar.params import FromPath, FromQuery

from inspections.findings.public_queries import (
    CLOSED,
    OPEN311_REQUESTS,
    PUBLIC_FINDINGS,
    public_findings,
)
from inspections.findings.public_schemas import (
    PUBLIC_TAG,
    SEVERITIES,
    Open311Request,
    Open311Service,
    PublicFinding,
)
from inspections.wording import long_date
from service.auth import PUBLIC
from service.db import DB
from service.errors import Problem, not_found, problem_responses
from service.state import AppState

OPEN311_SERVICES = [
    Open311Service(code, name, description, False, "batch", keywords, "findings")
    for code, (name, description, keywords) in SEVERITIES.items()
]


def _open311(f: Any, public: PublicFinding, base: str) -> Open311Request:
    last = public.history[-1] if public.history else None
    notes = public.status_words + (f": {last.note}" if last and last.note else "")
    due = public.due_on
    return Open311Request(
        service_request_id=str(f["id"]),
        status="closed" if f["status"] in CLOSED else "open",
        status_notes=notes,
        service_name=SEVERITIES[f["severity"]][0],
        service_code=f["severity"],
        description=f"{f['service_name']}: {f['title']}. {f['description']}".strip(),
        agency_responsible=f["organisation_name"],
        service_notice=f"Response due by {long_date(due)}" if due else "",
        requested_datetime=f["published_at"],
        updated_datetime=max(f["updated_at"], f["published_at"]),
        expected_datetime=(dt.datetime.combine(due, dt.time(17), dt.UTC) if due else None),
        address=f["address"] or f["service_name"],
        lat=f["lat"],
        long=f["lon"],
        media_url=base + public.photos[0].display_url if public.photos else None,
    )


async def _requests(
    request: Request[Any, Any, Any], state: AppState, db: DB, rows: list[Any]
) -> list[Open311Request]:
    public = await public_findings(db, rows, state.settings.site_timezone)
    # Absolute media URLs: the configured public address, else the one this was asked at.
    base = (state.settings.public_base_url or str(request.base_url)).rstrip("/")
    return [_open311(f, p, base) for f, p in zip(rows, public, strict=True)]


@get("/open311/v2/services.json", summary="Open311 GeoReport v2: the kinds of finding")
async def open311_services() -> list[Open311Service]:
    return OPEN311_SERVICES


@get(
    "/open311/v2/requests.json",
    summary="Open311 GeoReport v2: published findings as service requests",
    description="Filters as GeoReport v2: service_request_id (comma-separated), "
    "service_code, status (open, closed), start_date and end_date (on the publication "
    "time). At most 1,000, most recently updated first.",
    responses=problem_responses(400),
)
async def open311_requests(
    request: Request[Any, Any, Any],
    db: DB,
    state: AppState,
    service_request_id: FromQuery[str | None] = None,
    service_code: FromQuery[str | None] = None,
    status: FromQuery[Literal["open", "closed"] | None] = None,
    start_date: FromQuery[dt.datetime | None] = None,
    end_date: FromQuery[dt.datetime | None] = None,
    jurisdiction_id: FromQuery[UUID | None] = None,
) -> list[Open311Request]:
    ids = None
    if service_request_id:
        try:
            ids = [UUID(x.strip()) for x in service_request_id.split(",") if x.strip()]
        except ValueError:
            raise Problem(
                400, "bad-request", "Bad request", "service_request_id must be UUIDs."
            ) from None
    rows = await db.fetch(
        OPEN311_REQUESTS,
        ids,
        service_code,
        status,
        list(CLOSED),
        start_date,
        end_date,
        jurisdiction_id,
    )
    return await _requests(request, state, db, list(rows))


@get(
    "/open311/v2/requests/{request_file:str}",
    summary="Open311 GeoReport v2: one published finding",
    responses=problem_responses(404),
)
async def open311_request(
    request_file: FromPath[str], request: Request[Any, Any, Any], db: DB, state: AppState
) -> list[Open311Request]:
    """``/requests/{id}.json``: a path parameter is a whole segment, so the suffix is ours."""
    try:
        request_id = UUID(request_file.removesuffix(".json"))
    except ValueError:
        raise not_found("published finding") from None
    rows = await db.fetch(PUBLIC_FINDINGS + " and f.id = $1", request_id)
    if not rows:
        raise not_found("published finding")
    return await _requests(request, state, db, list(rows))


router = Router(
    "/",
    tags=[PUBLIC_TAG],
    route_handlers=[open311_services, open311_requests, open311_request],
    **PUBLIC,
)
