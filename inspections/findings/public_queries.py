"""The public's reads: published reports, their findings and photos, as PUBLIC_* queries.

Only published reports, only findings in them, never a safeguarding concern, never a
person (nor a photo showing one without a recorded reason), and of the words and photos
written after publication only what a coordinator approved (moderation.py). Every query
here is built on PUBLIC_FINDINGS or PUBLIC_REPORTS, which say so in their WHERE clauses, so
no other row can leak through a join.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from msgspec.structs import asdict

from inspections.findings import rules
from inspections.findings.public_schemas import (
    STATUS_WORDS,
    PublicAction,
    PublicFinding,
    PublicPhoto,
    PublicReport,
    PublicUpdate,
)
from inspections.findings.queries import actions_and_history, local_date, today
from service.db import from_row

# Findings the public may see: in a published report, never safeguarding.
PUBLIC_FINDINGS = """
    select f.id, f.visit_id, f.title, f.description, f.domain, f.severity, f.evidence_ids,
           f.recommendation, f.status, f.due_on, f.responded_at,
           -- a reason given after publication is public once a coordinator approved it
           case when not exists (select 1 from finding_updates du
                                  where du.finding_id = f.id and du.to_status = 'declined'
                                    and du.moderation <> 'approved')
                then f.decline_reason end decline_reason,
           f.updated_at, r.id report_id, r.published_at, r.published_on, s.id service_id,
           s.name service_name,
           s.kind service_kind, s.address, s.lat, s.lon, o.name organisation_name,
           o.id organisation_id
      from findings f
      join visit_reports r on r.visit_id = f.visit_id and r.status = 'published'
      join services s on s.id = f.service_id
      join organisations o on o.id = f.organisation_id
     where f.in_report and f.severity <> 'safeguarding' and f.status <> 'draft'"""

# A photo also linked to a safeguarding concern is never public, whatever else links it;
# nor is one showing a person unless a coordinator recorded why it may be.
NOT_SAFEGUARDING = """not exists (select 1 from findings sf
                        where sf.severity = 'safeguarding' and e.id = any(sf.evidence_ids))
    and (not e.shows_person or e.public_reason is not null)"""

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

# A published photo: ready, not deleted, not safeguarding, linked to a public finding or
# to an update of one.
PUBLIC_PHOTO = f"""
    select e.display_key, e.thumb_key from evidence e
     where e.id = $1 and e.status = 'ready' and e.deleted_at is null and {NOT_SAFEGUARDING}
       and (exists (select 1 from ({PUBLIC_FINDINGS}) pf where e.id = any(pf.evidence_ids))
            or exists (select 1 from finding_updates u
                         join ({PUBLIC_FINDINGS}) pf on pf.id = u.finding_id
                        where e.id = any(u.evidence_ids) and u.moderation = 'approved'))"""

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

# The open-data feed's page: newest first, by service and organisation.
FEED = (
    PUBLIC_REPORTS
    + """ and ($1::uuid is null or r.service_id = $1)
          and ($2::timestamptz is null or (r.published_at, r.id) < ($2, $3::uuid))
          and ($5::uuid is null or r.organisation_id = $5)
        order by r.published_at desc, r.id desc limit $4"""
)

CLOSED = ("verified", "declined", "noted")

# Open311's request filters, on the public findings.
OPEN311_REQUESTS = (
    PUBLIC_FINDINGS
    + """ and ($1::uuid[] is null or f.id = any($1))
          and ($2::text is null or f.severity = $2)
          and ($3::text is null or ($3 = 'closed') = (f.status = any($4::text[])))
          and ($5::timestamptz is null or r.published_at >= $5)
          and ($6::timestamptz is null or r.published_at < $6)
          and ($7::uuid is null or f.organisation_id = $7)
        order by greatest(f.updated_at, r.published_at) desc, f.id limit 1000"""
)


def photo_url(evidence_id: UUID, size: str) -> str:
    return f"/public/evidence/{evidence_id}/{size}"


async def _ready_photos(db: asyncpg.Connection, ids: list[UUID]) -> set[UUID]:
    rows = await db.fetch(
        f"""select e.id from evidence e where e.id = any($1::uuid[]) and e.status = 'ready'
              and e.deleted_at is null and e.display_key is not null and {NOT_SAFEGUARDING}""",
        ids,
    )
    return {r["id"] for r in rows}


async def public_findings(
    db: asyncpg.Connection, rows: Sequence[Any], tz: str
) -> list[PublicFinding]:
    """PUBLIC_FINDINGS rows as the public reads them: actions, history after publication
    (by role) and the photos that are ready and not safeguarding."""
    all_actions, all_history = await actions_and_history(db, [r["id"] for r in rows])
    actions = {
        i: [
            from_row(PublicAction, asdict(a), done=a.done_at is not None)
            for a in acts
            if a.moderation == "approved"  # an owner's name waits for review
        ]
        for i, acts in all_actions.items()
    }
    # Publication is dated as the report is (published_on may be set earlier than the day
    # it was recorded); every other line by the day it happened where the service is.
    published_on = {r["id"]: r["published_on"] for r in rows}

    def on(finding: UUID, kind: str, at: dt.datetime) -> dt.date:
        local = local_date(at, tz) or at.date()
        return (published_on.get(finding) or local) if kind == "published" else local

    # What happened after publication is public, its words and photos once a coordinator
    # approved them (a status change itself names nobody); drafting before it is not.
    all_history = {i: [h for h in hs if h.to_status != "draft"] for i, hs in all_history.items()}
    history = {
        i: [
            PublicUpdate(
                kind=h.kind,
                status=h.to_status,
                by=h.actor_role,
                note=h.note if h.moderation == "approved" else "",
                at=h.at,
                on=on(i, h.kind, h.at),
            )
            for h in hs
        ]
        for i, hs in all_history.items()
    }
    photo_ids = {
        r["id"]: [
            *r["evidence_ids"],
            *(
                e
                for h in all_history.get(r["id"], [])
                if h.moderation == "approved"
                for e in h.evidence_ids
            ),
        ]
        for r in rows
    }
    ready = await _ready_photos(db, [e for es in photo_ids.values() for e in es])
    now = today(tz)
    out = []
    for r in rows:
        responded = local_date(r["responded_at"], tz)
        status: str = r["status"]
        out.append(
            from_row(
                PublicFinding,
                r,
                status_words=STATUS_WORDS.get(status) or status,
                overdue=rules.is_overdue(status, r["due_on"], now),
                responded_on=responded,
                responded_on_time=rules.on_time(responded, r["due_on"]),
                actions=actions.get(r["id"], []),
                photos=[
                    PublicPhoto(
                        display_url=photo_url(e, "display"), thumb_url=photo_url(e, "thumb")
                    )
                    for e in dict.fromkeys(photo_ids[r["id"]])
                    if e in ready
                ],
                history=history.get(r["id"], []),
            )
        )
    return out


async def public_reports(
    db: asyncpg.Connection, rows: Sequence[Any], tz: str
) -> list[PublicReport]:
    """PUBLIC_REPORTS rows with their public findings and the response figures."""
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
            from_row(
                PublicReport,
                r,
                organisation=r["organisation_name"],
                visit_date=local_date(r["starts_at"], tz) or r["starts_at"].date(),
                team={"citizen": r["citizens"], "professional": r["pros"]},
                recommendations=len(recs),
                answered_on_time=sum(1 for f in recs if f.responded_on_time),
                overdue=sum(1 for f in recs if f.overdue),
                findings=findings,
                url=f"/public/reports/{r['id']}",
            )
        )
    return out


async def one_report(db: asyncpg.Connection, report_id: UUID, tz: str) -> PublicReport | None:
    """A published report, or None (not one, or not published)."""
    rows = await db.fetch(PUBLIC_REPORTS + " and r.id = $1", report_id)
    return (await public_reports(db, rows, tz))[0] if rows else None
