"""Published reports as open data (JSON, no sign-in), and their findings' photos: the
display and thumbnail derivatives, with all metadata removed."""

from __future__ import annotations

import asyncio
import datetime as dt
from uuid import UUID

from litestar import Response, Router, get
from litestar.params import FromPath, FromQuery

from inspections.findings.public_pages import CACHEABLE
from inspections.findings.public_queries import FEED, PUBLIC_PHOTO, one_report, public_reports
from inspections.findings.public_schemas import PUBLIC_TAG, PublicReport, PublicReportPage
from service.db import DB, row_or_404
from service.errors import not_found
from service.schema import Paging, paged
from service.state import AppState


@get(
    "/v1/public/reports/{report_id:uuid}",
    summary="A published visit report (no sign-in)",
)
async def public_report_json(report_id: FromPath[UUID], db: DB, state: AppState) -> PublicReport:
    report = await one_report(db, report_id, state.settings.site_timezone)
    if report is None:
        raise not_found("published report")
    return report


@get(
    "/v1/public/reports",
    summary="Open data: every published report with its findings and responses, newest first",
    description="Filter by `service` or `organisation` (ids).",
    dependencies={"paging": paged(default_limit=20)},
)
async def public_feed(
    db: DB,
    state: AppState,
    *,
    service: FromQuery[UUID | None] = None,
    organisation: FromQuery[UUID | None] = None,
    paging: Paging,
) -> PublicReportPage:
    published_at, report_id = paging.after(dt.datetime, UUID)
    rows = await db.fetch(FEED, service, published_at, report_id, paging.fetch, organisation)
    page, nxt = paging.page(rows, "published_at", "id")
    items = await public_reports(db, page, state.settings.site_timezone)
    return PublicReportPage(items=items, next_cursor=nxt)


@get(
    "/public/evidence/{evidence_id:uuid}/{size:str}",
    summary="A published finding's photo: the derived copy, metadata removed",
    description="Only photos linked to findings of published reports; `size` is display or "
    "thumb. The original is never public.",
    media_type="image/jpeg",
)
async def public_photo(
    evidence_id: FromPath[UUID], size: FromPath[str], db: DB, state: AppState
) -> Response[bytes]:
    if size not in ("display", "thumb"):
        raise not_found("photo size")
    row = await row_or_404(db, "published photo", PUBLIC_PHOTO, evidence_id)
    store = state.store
    obj = await store.call(
        "get_object",
        Bucket=store.bucket,
        Key=row["display_key" if size == "display" else "thumb_key"],
    )
    body = await asyncio.to_thread(obj["Body"].read)
    # Served by us rather than a presigned redirect: stable URLs for open data, and a page
    # whose content security policy allows images from itself only.
    return Response(
        body,
        media_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


router = Router(
    "/",
    tags=[PUBLIC_TAG],
    # Photos are cached publicly too: no cookie (see public_pages.CACHEABLE).
    route_handlers=[public_report_json, public_feed, public_photo],
    **CACHEABLE,
)
