"""What the public may read: published reports (page and JSON), an open-data feed, and the
findings as Open311 GeoReport v2 requests, with the photos' display derivatives.

Only published reports, only findings in them, never a safeguarding concern, never a
person: the team is counted by perspective, history names roles, photos are the derived
copies with all metadata removed. Everything here is built from PUBLIC_* queries that
say so in their WHERE clauses, so no other row can leak through a join.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from litestar import Request, Response, get, patch
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, Meta, UnsetType

from inspections.accounts.signin_page import esc, html_response, message_page
from inspections.audit.log import audit
from inspections.findings import rules
from inspections.findings.queries import actions_and_history, local_date, today
from inspections.org_settings import patch_section, read_section
from inspections.wording import long_date, plural
from service.auth import PUBLIC, Principal, require_roles
from service.db import DB
from service.errors import Problem, not_found, problem_responses
from service.schema import Body, Limit, decode_cursor, encode_cursor

PUBLIC_TAG = "public open data"

# Findings the public may see: in a published report, never safeguarding.
PUBLIC_FINDINGS = """
    select f.id, f.visit_id, f.title, f.description, f.domain, f.severity, f.evidence_ids,
           f.recommendation, f.status, f.due_on, f.responded_at, f.decline_reason,
           f.updated_at, r.id report_id, r.published_at, r.published_on, s.id service_id,
           s.name service_name,
           s.kind service_kind, s.address, s.lat, s.lon, o.name organisation_name,
           o.id organisation_id
      from findings f
      join visit_reports r on r.visit_id = f.visit_id and r.status = 'published'
      join services s on s.id = f.service_id
      join organisations o on o.id = f.organisation_id
     where f.in_report and f.severity <> 'safeguarding' and f.status <> 'draft'"""

# A photo also linked to a safeguarding concern is never public, whatever else links it.
NOT_SAFEGUARDING = """not exists (select 1 from findings sf
                        where sf.severity = 'safeguarding' and e.id = any(sf.evidence_ids))"""

PUBLIC_REPORTS = """
    select r.id, r.summary, r.published_at, r.published_on, v.starts_at, s.id service_id,
           s.name service_name, s.kind service_kind, s.address, o.name organisation_name,
           o.id organisation_id,
           (select count(*) from visit_members m
             where m.visit_id = r.visit_id and m.perspective = 'citizen')::int citizens,
           (select count(*) from visit_members m
             where m.visit_id = r.visit_id and m.perspective = 'professional')::int pros
      from visit_reports r
      join visits v on v.id = r.visit_id
      join services s on s.id = r.service_id
      join organisations o on o.id = r.organisation_id
     where r.status = 'published'"""

STATUS_WORDS = {
    "open": "Awaiting the service's response",
    "responded": "Accepted: action plan agreed",
    "in_progress": "Accepted: in progress",
    "done_by_service": "Done, says the service: awaiting citizen verification",
    "verified": "Done and verified by citizen inspectors",
    "declined": "Declined by the service",
    "noted": "Noted (no recommendation)",
}


class PublicAction(Body, kw_only=True):
    action: str
    owner: str
    target_date: dt.date
    done: bool


class PublicUpdate(Body, kw_only=True):
    kind: str
    status: str
    by: str  # a role, never a person
    note: str
    at: dt.datetime  # when it was recorded
    on: dt.date  # the date it stands for: publication is dated published_on


class PublicPhoto(Body, kw_only=True):
    display_url: str
    thumb_url: str


class PublicFinding(Body, kw_only=True):
    id: UUID
    title: str
    description: str
    domain: str | None
    severity: str
    recommendation: str | None
    status: str
    status_words: str
    due_on: dt.date | None
    overdue: bool
    responded_on: dt.date | None
    responded_on_time: bool | None
    decline_reason: str | None
    actions: list[PublicAction]
    photos: list[PublicPhoto]
    history: list[PublicUpdate]


class PublicReport(Body, kw_only=True):
    id: UUID
    organisation: str
    organisation_id: UUID
    service_id: UUID
    service_name: str
    service_kind: str
    address: str
    visit_date: dt.date
    published_on: dt.date | None
    team: dict[str, int]  # how many citizens and professionals; never who
    summary: str
    recommendations: int
    answered_on_time: int
    overdue: int
    findings: list[PublicFinding]
    url: str


class PublicReportPage(Body, kw_only=True):
    items: list[PublicReport]
    next_cursor: str | None = None


async def _ready_photos(db: asyncpg.Connection, ids: list[UUID]) -> set[UUID]:
    rows = await db.fetch(
        f"""select e.id from evidence e where e.id = any($1::uuid[]) and e.status = 'ready'
              and e.deleted_at is null and e.display_key is not null and {NOT_SAFEGUARDING}""",
        ids,
    )
    return {r["id"] for r in rows}


async def public_findings(db: asyncpg.Connection, rows: list[Any], tz: str) -> list[PublicFinding]:
    all_actions, all_history = await actions_and_history(db, [r["id"] for r in rows])
    actions = {
        i: [
            PublicAction(
                action=a.action,
                owner=a.owner,
                target_date=a.target_date,
                done=a.done_at is not None,
            )
            for a in acts
        ]
        for i, acts in all_actions.items()
    }
    # Publication is dated as the report is (published_on may be set earlier than the day
    # it was recorded); every other line by the day it happened where the service is.
    published_on = {r["id"]: r["published_on"] for r in rows}

    def on(finding: UUID, kind: str, at: dt.datetime) -> dt.date:
        local = local_date(at, tz) or at.date()
        return (published_on.get(finding) or local) if kind == "published" else local

    # What happened after publication is public; drafting before it is not.
    history = {
        i: [
            PublicUpdate(
                kind=h.kind,
                status=h.to_status,
                by=h.actor_role,
                note=h.note,
                at=h.at,
                on=on(i, h.kind, h.at),
            )
            for h in hs
            if h.to_status != "draft"
        ]
        for i, hs in all_history.items()
    }
    photo_ids = {
        r["id"]: [
            *r["evidence_ids"],
            *(e for h in all_history[r["id"]] for e in h.evidence_ids if h.to_status != "draft"),
        ]
        for r in rows
    }
    ready = await _ready_photos(db, [e for es in photo_ids.values() for e in es])
    now = today(tz)
    out = []
    for r in rows:
        responded = local_date(r["responded_at"], tz)
        out.append(
            PublicFinding(
                id=r["id"],
                title=r["title"],
                description=r["description"],
                domain=r["domain"],
                severity=r["severity"],
                recommendation=r["recommendation"],
                status=r["status"],
                status_words=STATUS_WORDS.get(r["status"], r["status"]),
                due_on=r["due_on"],
                overdue=rules.is_overdue(r["status"], r["due_on"], now),
                responded_on=responded,
                responded_on_time=rules.on_time(responded, r["due_on"]),
                decline_reason=r["decline_reason"],
                actions=actions.get(r["id"], []),
                photos=[
                    PublicPhoto(
                        display_url=f"/public/evidence/{e}/display",
                        thumb_url=f"/public/evidence/{e}/thumb",
                    )
                    for e in dict.fromkeys(photo_ids[r["id"]])
                    if e in ready
                ],
                history=history.get(r["id"], []),
            )
        )
    return out


async def public_reports(db: asyncpg.Connection, rows: list[Any], tz: str) -> list[PublicReport]:
    by_report: dict[UUID, list[Any]] = {r["id"]: [] for r in rows}
    for f in await db.fetch(
        PUBLIC_FINDINGS + " and r.id = any($1::uuid[]) order by f.created_at, f.id",
        list(by_report),
    ):
        by_report[f["report_id"]].append(f)
    out = []
    for r in rows:
        findings = await public_findings(db, by_report[r["id"]], tz)
        recs = [f for f in findings if f.recommendation]
        out.append(
            PublicReport(
                id=r["id"],
                organisation=r["organisation_name"],
                organisation_id=r["organisation_id"],
                service_id=r["service_id"],
                service_name=r["service_name"],
                service_kind=r["service_kind"],
                address=r["address"],
                visit_date=local_date(r["starts_at"], tz) or r["starts_at"].date(),
                published_on=r["published_on"],
                team={"citizen": r["citizens"], "professional": r["pros"]},
                summary=r["summary"],
                recommendations=len(recs),
                answered_on_time=sum(1 for f in recs if f.responded_on_time),
                overdue=sum(1 for f in recs if f.overdue),
                findings=findings,
                url=f"/public/reports/{r['id']}",
            )
        )
    return out


async def _one_report(db: asyncpg.Connection, report_id: UUID, tz: str) -> PublicReport | None:
    rows = await db.fetch(PUBLIC_REPORTS + " and r.id = $1", report_id)
    return (await public_reports(db, rows, tz))[0] if rows else None


@get(
    "/v1/public/reports/{report_id:uuid}",
    tags=[PUBLIC_TAG],
    summary="A published visit report (no sign-in)",
    responses=problem_responses(404),
    **PUBLIC,
)
async def public_report_json(report_id: FromPath[UUID], db: DB, state: State) -> PublicReport:
    report = await _one_report(db, report_id, state.settings.site_timezone)
    if report is None:
        raise not_found("published report")
    return report


@get(
    "/v1/public/reports",
    tags=[PUBLIC_TAG],
    summary="Open data: every published report with its findings and responses, newest first",
    description="Filter by `service` or `organisation` (ids).",
    responses=problem_responses(400),
    **PUBLIC,
)
async def public_feed(
    db: DB,
    state: State,
    service: FromQuery[UUID | None] = None,
    organisation: FromQuery[UUID | None] = None,
    cursor: FromQuery[str | None] = None,
    limit: Limit = 20,
) -> PublicReportPage:
    after = decode_cursor(cursor, dt.datetime, UUID) if cursor else None
    rows = await db.fetch(
        PUBLIC_REPORTS
        + """ and ($1::uuid is null or r.service_id = $1)
              and ($2::timestamptz is null or (r.published_at, r.id) < ($2, $3::uuid))
              and ($5::uuid is null or r.organisation_id = $5)
            order by r.published_at desc, r.id desc limit $4""",
        service,
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
        organisation,
    )
    items = await public_reports(db, rows[:limit], state.settings.site_timezone)
    nxt = (
        encode_cursor(rows[limit - 1]["published_at"].isoformat(), str(rows[limit - 1]["id"]))
        if len(rows) > limit
        else None
    )
    return PublicReportPage(items=items, next_cursor=nxt)


# --------------------------------------------------------------------------- photos


@get(
    "/public/evidence/{evidence_id:uuid}/{size:str}",
    tags=[PUBLIC_TAG],
    summary="A published finding's photo: the derived copy, metadata removed",
    description="Only photos linked to findings of published reports; `size` is display or "
    "thumb. The original is never public.",
    responses=problem_responses(404),
    **PUBLIC,
)
async def public_photo(
    evidence_id: FromPath[UUID], size: FromPath[str], db: DB, state: State
) -> Response:
    if size not in ("display", "thumb"):
        raise not_found("photo size")
    row = await db.fetchrow(
        """select e.display_key, e.thumb_key from evidence e
            where e.id = $1 and e.status = 'ready' and e.deleted_at is null
              and """
        + NOT_SAFEGUARDING
        + """
              and (exists (select 1 from ("""
        + PUBLIC_FINDINGS
        + """) pf
                            where e.id = any(pf.evidence_ids))
                   or exists (select 1 from finding_updates u
                               join ("""
        + PUBLIC_FINDINGS
        + """) pf on pf.id = u.finding_id
                              where e.id = any(u.evidence_ids)))""",
        evidence_id,
    )
    if row is None:
        raise not_found("published photo")
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


# --------------------------------------------------------------------------- Open311


class Open311Service(Body):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class Open311Request(Body):
    """GeoReport v2 service request: a finding as civic tools read it."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    service_notice: str
    requested_datetime: dt.datetime
    updated_datetime: dt.datetime
    expected_datetime: dt.datetime | None
    address: str
    lat: float
    long: float
    media_url: str | None


# The kinds of published finding (safeguarding is never one): the page's labels and the
# Open311 service list and requests all read this one table.
SEVERITIES = {
    "positive": ("Good practice", "Good practice inspectors saw", "good practice"),
    "minor": ("Minor issue", "A minor issue, with a recommendation", "recommendation"),
    "major": ("Major issue", "A major issue, with a recommendation", "recommendation"),
}
OPEN311_SERVICES = [
    Open311Service(code, name, description, False, "batch", keywords, "findings")
    for code, (name, description, keywords) in SEVERITIES.items()
]
CLOSED = ("verified", "declined", "noted")


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


def _base(request: Request) -> str:
    settings = request.app.state.settings
    return (settings.public_base_url or str(request.base_url)).rstrip("/")


@get(
    "/open311/v2/services.json",
    tags=[PUBLIC_TAG],
    summary="Open311 GeoReport v2: the kinds of finding",
    **PUBLIC,
)
async def open311_services() -> list[Open311Service]:
    return OPEN311_SERVICES


@get(
    "/open311/v2/requests.json",
    tags=[PUBLIC_TAG],
    summary="Open311 GeoReport v2: published findings as service requests",
    description="Filters as GeoReport v2: service_request_id (comma-separated), "
    "service_code, status (open, closed), start_date and end_date (on the publication "
    "time). At most 1,000, most recently updated first.",
    responses=problem_responses(400),
    **PUBLIC,
)
async def open311_requests(
    request: Request,
    db: DB,
    state: State,
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
        PUBLIC_FINDINGS
        + """ and ($1::uuid[] is null or f.id = any($1))
              and ($2::text is null or f.severity = $2)
              and ($3::text is null or ($3 = 'closed') = (f.status = any($4::text[])))
              and ($5::timestamptz is null or r.published_at >= $5)
              and ($6::timestamptz is null or r.published_at < $6)
              and ($7::uuid is null or f.organisation_id = $7)
            order by greatest(f.updated_at, r.published_at) desc, f.id limit 1000""",
        ids,
        service_code,
        status,
        list(CLOSED),
        start_date,
        end_date,
        jurisdiction_id,
    )
    public = await public_findings(db, list(rows), state.settings.site_timezone)
    base = _base(request)
    return [_open311(f, p, base) for f, p in zip(rows, public, strict=True)]


@get(
    "/open311/v2/requests/{request_file:str}",
    tags=[PUBLIC_TAG],
    summary="Open311 GeoReport v2: one published finding",
    responses=problem_responses(404),
    **PUBLIC,
)
async def open311_request(
    request_file: FromPath[str], request: Request, db: DB, state: State
) -> list[Open311Request]:
    """``/requests/{id}.json``: a path parameter is a whole segment, so the suffix is ours."""
    try:
        request_id = UUID(request_file.removesuffix(".json"))
    except ValueError:
        raise not_found("published finding") from None
    rows = await db.fetch(PUBLIC_FINDINGS + " and f.id = $1", request_id)
    if not rows:
        raise not_found("published finding")
    public = await public_findings(db, list(rows), state.settings.site_timezone)
    return [_open311(rows[0], public[0], _base(request))]


# --------------------------------------------------------------------------- the page

REPORT_CSS = """
.meta{color:#4d4d4d;margin:0 0 .75rem}
.figures{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;list-style:none;padding:0}
.figures li{border:1px solid #767676;border-radius:.5rem;padding:.4rem .8rem}
article.finding{border:1px solid #767676;border-radius:.5rem;padding:.75rem 1rem;margin:1rem 0}
article.finding h3{margin:.1rem 0 .4rem}
.sev{font-size:.8rem;font-weight:700;text-transform:uppercase;letter-spacing:.05em}
.late{color:#a50e0e;font-weight:700}
.photos{display:flex;flex-wrap:wrap;gap:.5rem}
.photos img{max-width:min(100%,20rem);height:auto;border-radius:.25rem}
ol.history{padding-left:1.25rem;font-size:.95rem}
.contact{border-top:1px solid #767676;padding-top:.75rem;margin-top:1.5rem}
@media print{article.finding{break-inside:avoid}}
"""


def _finding_html(f: PublicFinding) -> str:
    parts = [
        '<article class="finding">',
        f'<p class="sev">{esc(SEVERITIES[f.severity][0])}'
        + (f" · {esc(f.domain.replace('_', ' '))}" if f.domain else "")
        + "</p>",
        f"<h3>{esc(f.title)}</h3>",
    ]
    if f.description:
        parts.append(f"<p>{esc(f.description)}</p>")
    if f.photos:
        parts.append(
            '<p class="photos">'
            + "".join(
                f'<img src="{esc(p.display_url)}" alt="Photo for: {esc(f.title)}" loading="lazy">'
                for p in f.photos
            )
            + "</p>"
        )
    if f.recommendation:
        parts.append(f"<p><strong>Recommendation:</strong> {esc(f.recommendation)}</p>")
        status = f"<p><strong>Status:</strong> {esc(f.status_words)}"
        if f.overdue and f.due_on:
            due = long_date(f.due_on)
            status += f' <span class="late">— overdue: response was due {due}</span>'
        elif f.due_on and f.responded_on is None:
            status += f" (response due {long_date(f.due_on)})"
        if f.responded_on:
            timely = "on time" if f.responded_on_time else "late"
            status += f". Responded {long_date(f.responded_on)} ({timely})"
        parts.append(status + ".</p>")
        if f.decline_reason:
            parts.append(f"<p><strong>Service's reason:</strong> {esc(f.decline_reason)}</p>")
        if f.actions:
            parts.append(
                "<p><strong>Action plan:</strong></p><ul>"
                + "".join(
                    f"<li>{esc(a.action)} — {esc(a.owner)}, by {long_date(a.target_date)}"
                    + (" (done)" if a.done else "")
                    + "</li>"
                    for a in f.actions
                )
                + "</ul>"
            )
    if f.history:
        parts.append(
            '<details><summary>History</summary><ol class="history">'
            + "".join(
                f"<li>{long_date(h.on)}: {esc(h.kind.replace('_', ' '))} by {esc(h.by)}"
                + (f" — {esc(h.note)}" if h.note else "")
                + "</li>"
                for h in f.history
            )
            + "</ol></details>"
        )
    parts.append("</article>")
    return "".join(parts)


def render_report(r: PublicReport, contact: str | None = None) -> str:
    team = r.team
    recs = [f for f in r.findings if f.recommendation]
    good = [f for f in r.findings if not f.recommendation]
    body = [
        f"<h1>{esc(r.service_name)}: visit report</h1>",
        f'<p class="meta">{esc(r.organisation)} · visited {long_date(r.visit_date)}'
        + (f" · published {long_date(r.published_on)}" if r.published_on else "")
        + (f" · {esc(r.address)}" if r.address else "")
        + "</p>",
        f"<p>The visit was made by {plural(team['citizen'], 'citizen inspector')} and "
        f"{plural(team['professional'], 'professional inspector')} together.</p>",
        '<ul class="figures">'
        f"<li>{plural(r.recommendations, 'recommendation')}</li>"
        f"<li>{r.answered_on_time} answered on time</li>"
        f"<li>{r.overdue} overdue</li></ul>",
    ]
    if r.summary:
        body.append(f"<h2>Summary</h2><p>{esc(r.summary)}</p>")
    if recs:
        body.append("<h2>Recommendations and the service's responses</h2>")
        body += [_finding_html(f) for f in recs]
    if good:
        body.append("<h2>What inspectors saw without a recommendation</h2>")
        body += [_finding_html(f) for f in good]
    org = _org_url(r.organisation_id)
    body.append(
        f'<p><a href="{org}?service={r.service_id}">More reports on '
        f"{esc(r.service_name)}</a> · "
        f'<a href="{org}">All reports by {esc(r.organisation)}</a></p>'
    )
    body.append(contact_html(r.organisation, contact))
    return "".join(body)


# --------------------------------------------------------------------------- organisations


class PublicProfile(Body, kw_only=True):
    """What an organisation tells the public on its public pages."""

    # How the public reaches the organisation: an email address, a web address or words
    # ("Freephone 0800 123 4567"). The organisation's, not a person's: it is public.
    public_contact: Annotated[str, Meta(min_length=3, max_length=300)] | None = None


class PublicProfilePatch(Body, kw_only=True):
    public_contact: Annotated[str, Meta(min_length=3, max_length=300)] | None | UnsetType = UNSET


def _org_url(org_id: UUID) -> str:
    return f"/public/organisations/{org_id}"


def contact_html(organisation: str, contact: str | None) -> str:
    """A line on how to reach the organisation: a link for an email or web address."""
    if not contact:
        return f'<p class="contact">{esc(organisation)} has not published a contact here yet.</p>'
    text = contact.strip()
    if "@" in text and " " not in text and not text.startswith(("http://", "https://")):
        value = f'<a href="mailto:{esc(text)}">{esc(text)}</a>'
    elif text.startswith("https://") and " " not in text:
        value = f'<a href="{esc(text)}">{esc(text)}</a>'
    else:
        value = esc(text)
    return f'<p class="contact">To contact {esc(organisation)}: {value}</p>'


async def public_profile(db: asyncpg.Connection, org: UUID) -> PublicProfile:
    return await read_section(db, org, "public", PublicProfile)


@get(
    "/v1/organisation/public-profile",
    guards=[require_roles("coordinator")],
    tags=["findings"],
    summary="What the organisation's public pages say about it (its contact)",
    responses=problem_responses(401, 403),
)
async def get_public_profile(request: Request[Principal, Any, Any], db: DB) -> PublicProfile:
    return await public_profile(db, request.user.organisation_id)


@patch(
    "/v1/organisation/public-profile",
    guards=[require_roles("coordinator")],
    tags=["findings"],
    summary="Set how the public contacts the organisation (on every public page; audited)",
    responses=problem_responses(401, 403, 422),
)
async def patch_public_profile(
    data: JSONBody[PublicProfilePatch], request: Request[Principal, Any, Any], db: DB
) -> PublicProfile:
    org = request.user.organisation_id
    merged, changes = await patch_section(db, org, "public", PublicProfile, data)
    await audit(db, request, "organisation.public_profile", "organisation", org, changes)
    return merged


def _public_page(title: str, body: str, org_id: UUID, org_name: str) -> Response[str]:
    """A public page: the organisation's name heads it and links to its reports, never to
    the signed-in side; its own photos are allowed, and it may be cached briefly."""
    response = html_response(title, body, css=REPORT_CSS, brand=(_org_url(org_id), org_name))
    csp = response.headers["Content-Security-Policy"].replace(
        "img-src data:", "img-src 'self' data:"
    )
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# An organisation's published reports with their public recommendation counts.
ORG_REPORTS = """
    select r.id, r.published_on, r.published_at, v.starts_at, s.id service_id,
           s.name service_name,
           (select count(*) from findings f
             where f.visit_id = r.visit_id and f.in_report and f.recommendation is not null
               and f.severity <> 'safeguarding' and f.status <> 'draft')::int recommendations
      from visit_reports r
      join visits v on v.id = r.visit_id
      join services s on s.id = r.service_id
     where r.status = 'published' and r.organisation_id = $1
       and ($2::uuid is null or r.service_id = $2)
     order by lower(s.name), s.id, r.published_at desc, r.id"""


@get(
    "/public/organisations/{org_id:uuid}",
    tags=[PUBLIC_TAG],
    summary="An organisation's published visit reports, by service (a page; no sign-in)",
    description="`service` narrows it to one service. Links the open-data feed and says "
    "how to contact the organisation.",
    **PUBLIC,
)
async def public_organisation_page(
    org_id: FromPath[UUID], db: DB, state: State, service: FromQuery[UUID | None] = None
) -> Response[Any]:
    org = await db.fetchrow("select id, name from organisations where id = $1", org_id)
    if org is None:
        return message_page(404, "Not found", "There is no such organisation here.")
    tz = state.settings.site_timezone
    rows = await db.fetch(ORG_REPORTS, org_id, service)
    contact = (await public_profile(db, org_id)).public_contact
    feed = f"/v1/public/reports?organisation={org_id}" + (f"&service={service}" if service else "")
    body = [
        f"<h1>{esc(org['name'])}: published visit reports</h1>",
        "<p>Reports of visits by citizen and professional inspectors, with what each "
        "service said it would do about the recommendations, and whether it did.</p>",
    ]
    if service:
        body.append(f'<p><a href="{_org_url(org_id)}">Reports on every service</a></p>')
    if not rows:
        body.append("<p>No report has been published yet.</p>")
    by_service: dict[UUID, list[Any]] = {}
    for r in rows:
        by_service.setdefault(r["service_id"], []).append(r)
    for sid, reports in by_service.items():
        items = []
        for r in reports:
            visited = local_date(r["starts_at"], tz) or r["starts_at"].date()
            published = f", published {long_date(r['published_on'])}" if r["published_on"] else ""
            items.append(
                f'<li><a href="/public/reports/{r["id"]}">Visit of {long_date(visited)}</a>'
                f"{published} · {plural(r['recommendations'], 'recommendation')}</li>"
            )
        body.append(
            f'<section id="service-{sid}"><h2>{esc(reports[0]["service_name"])}</h2>'
            f"<ul>{''.join(items)}</ul></section>"
        )
    body.append(
        f'<p>Open data: <a href="{esc(feed)}">these reports as JSON</a>, with their findings '
        "and the services' responses.</p>"
    )
    body.append(contact_html(org["name"], contact))
    return _public_page(
        f"{org['name']}: published visit reports", "".join(body), org_id, org["name"]
    )


@get(
    "/public/reports/{report_id:uuid}",
    tags=[PUBLIC_TAG],
    summary="A published visit report as a page (no sign-in)",
    include_in_schema=True,
    **PUBLIC,
)
async def public_report_page(report_id: FromPath[UUID], db: DB, state: State) -> Response[Any]:
    report = await _one_report(db, report_id, state.settings.site_timezone)
    if report is None:
        return message_page(404, "Report not found", "There is no published report here.")
    contact = (await public_profile(db, report.organisation_id)).public_contact
    return _public_page(
        f"{report.service_name}: visit report",
        render_report(report, contact),
        report.organisation_id,
        report.organisation,
    )


route_handlers = [
    public_report_json,
    public_feed,
    public_photo,
    open311_services,
    open311_requests,
    open311_request,
    public_report_page,
    public_organisation_page,
    get_public_profile,
    patch_public_profile,
]
