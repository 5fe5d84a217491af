"""The public's pages (no sign-in): a published report, and an organisation's index of its
reports by service, each saying how to contact the organisation.

Templates in templates/findings/ (see service/pages.py for how a page is made); the reads
are public_queries', the same the open-data JSON is built from.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any
from uuid import UUID

from litestar import Router, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from inspections.findings.public_profile import public_profile
from inspections.findings.public_queries import ORG_REPORTS, one_report
from inspections.findings.public_schemas import PUBLIC_TAG, SEVERITIES
from inspections.findings.queries import local_date
from inspections.wording import long_date, plural
from service.auth import PUBLIC
from service.db import DB
from service.pages import page
from service.state import AppState

# Public pages hold nothing personal: a shared cache may keep them a few minutes.
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}
# ... so they set no cookie: a cache would hand one visitor's CSRF cookie to everyone (and
# they have no form to protect). The key is Litestar's CSRFConfig.exclude_from_csrf_key.
CACHEABLE = {"opt": {**PUBLIC["opt"], "exclude_from_csrf": True}, "security": PUBLIC["security"]}


def org_url(org_id: UUID) -> str:
    return f"/public/organisations/{org_id}"


def contact_link(contact: str | None) -> dict[str, str | None] | None:
    """How the public reaches the organisation: a link for an email or web address, else
    the words as they are (None: no contact published)."""
    if not contact:
        return None
    text = contact.strip()
    if "@" in text and " " not in text and not text.startswith(("http://", "https://")):
        return {"href": f"mailto:{text}", "text": text}
    if text.startswith("https://") and " " not in text:
        return {"href": text, "text": text}
    return {"href": None, "text": text}


async def _public_page(
    template: str, db: DB, org_id: UUID, organisation: str, **context: Any
) -> Template:
    contact = (await public_profile(db, org_id)).public_contact
    return page(
        template,
        headers=PUBLIC_CACHE,
        org_url=org_url(org_id),
        organisation=organisation,
        contact=contact_link(contact),
        long_date=long_date,
        plural=plural,
        **context,
    )


def _missing(title: str, message: str) -> Template:
    return page("findings/missing.html", status=404, title=title, message=message)


@get(
    "/public/reports/{report_id:uuid}",
    summary="A published visit report as a page (no sign-in)",
    include_in_schema=True,
)
async def public_report_page(report_id: FromPath[UUID], db: DB, state: AppState) -> Template:
    report = await one_report(db, report_id, state.settings.site_timezone)
    if report is None:
        return _missing("Report not found", "There is no published report here.")
    return await _public_page(
        "findings/report.html",
        db,
        report.organisation_id,
        report.organisation,
        r=report,
        recommendations=[f for f in report.findings if f.recommendation],
        good=[f for f in report.findings if not f.recommendation],
        severities=SEVERITIES,
    )


@get(
    "/public/organisations/{org_id:uuid}",
    summary="An organisation's published visit reports, by service (a page; no sign-in)",
    description="`service` narrows it to one service. Links the open-data feed and says "
    "how to contact the organisation.",
)
async def public_organisation_page(
    org_id: FromPath[UUID], db: DB, state: AppState, service: FromQuery[UUID | None] = None
) -> Template:
    name = await db.fetchval("select name from organisations where id = $1", org_id)
    if name is None:
        return _missing("Not found", "There is no such organisation here.")
    tz = state.settings.site_timezone
    rows = await db.fetch(ORG_REPORTS, org_id, service)
    # ORG_REPORTS is ordered by service: one section each, its reports newest first.
    services = [
        {
            "id": sid,
            "name": reports[0]["service_name"],
            "reports": [
                {
                    "id": r["id"],
                    "visited": local_date(r["starts_at"], tz) or r["starts_at"].date(),
                    "published_on": r["published_on"],
                    "recommendations": r["recommendations"],
                }
                for r in reports
            ],
        }
        for sid, group in groupby(rows, key=lambda r: r["service_id"])
        for reports in [list(group)]
    ]
    feed = f"/v1/public/reports?organisation={org_id}" + (f"&service={service}" if service else "")
    return await _public_page(
        "findings/organisation.html",
        db,
        org_id,
        name,
        services=services,
        one_service=service is not None,
        feed=feed,
    )


router = Router(
    "/",
    tags=[PUBLIC_TAG],
    route_handlers=[public_report_page, public_organisation_page],
    **CACHEABLE,
)
