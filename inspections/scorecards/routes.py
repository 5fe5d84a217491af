"""Service scorecards: citizen and professional perspectives, combined, compared, trended."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from litestar import Response, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from inspections.audit.log import audit
from inspections.org_settings import read_section, settings_routes
from inspections.scorecards import compute, maths
from inspections.scorecards.overrides import overrides_for
from inspections.scorecards.schemas import (
    LeaguePage,
    LeagueRow,
    OverrideRequest,
    Scorecard,
    ScoringSettings,
    ScoringSettingsPatch,
)
from inspections.services.queries import service_for, service_in_org
from inspections.services.schemas import Kind
from service.auth import AuthedRequest, Principal, coordinator_only, require_roles
from service.bounds import Moment
from service.db import DB
from service.errors import problem_responses, unprocessable
from service.schema import Paging, encode_cursor

readers = [require_roles("coordinator", "scrutiny_member", "service_manager")]

SCORES_SQL = """
    select submission_id, user_id, visit_id, perspective, domain, wp, wm, answers,
           visit_starts_at >= $2 as current
      from submission_scores
     where service_id = $1 and visit_starts_at >= $3 and visit_starts_at < $4"""

# Per question and per (visit, question) the answers are reduced in PostgreSQL, so Python
# sees one row per question and one per shared unit instead of every answer: decoding
# ~1,500 answer rows into Python objects cost more than the queries themselves.
# visits_service_idx finds the period's visits; answers by submission come from their key.
FINAL_ANSWERS = """
      from visits v
      join submissions s on s.visit_id = v.id and s.state = 'final'
      join answers a on a.submission_id = s.id
     where v.service_id = $1 and v.starts_at >= $2 and v.starts_at < $3
       and a.points is not null and a.max_points > 0"""

# Each perspective's mean points per question (the items that drive a gap).
QUESTIONS_SQL = f"""
    select a.question_key, a.domain, max(a.max_points)::float8 max_points,
           avg(a.points::float8) filter (where s.perspective = 'citizen') citizen,
           avg(a.points::float8) filter (where s.perspective = 'professional') professional
    {FINAL_ANSWERS}
     group by 1, 2"""

# How often each perspective gave each answer, for the answers in words.
VALUES_SQL = f"""
    select a.question_key, s.perspective, a.value, count(*)::int n
    {FINAL_ANSWERS}
       and a.question_key = any($4::text[])
     group by 1, 2, 3"""

# maths.agreement_units in SQL: per (visit, question) both perspectives scored, the median
# over each perspective's raters of each rater's median share of the maximum.
AGREEMENT_SQL = f"""
    with rater as (
        select v.id visit_id, a.question_key, s.perspective,
               percentile_cont(0.5) within group (order by a.points::float8 / a.max_points)
                   as value
        {FINAL_ANSWERS}
         group by v.id, a.question_key, s.perspective, s.user_id)
    select percentile_cont(0.5) within group (order by value)
               filter (where perspective = 'citizen') citizen,
           percentile_cont(0.5) within group (order by value)
               filter (where perspective = 'professional') professional
      from rater
     group by visit_id, question_key
    having bool_or(perspective = 'citizen') and bool_or(perspective = 'professional')"""


OVERRIDE_RULE = (
    "A coordinator's band override applies to every scorecard (and league row) of that "
    "service whose period overlaps the override's period, until new evidence arrives: once "
    "a final submission counted in the scorecard was finalised after the override was "
    "recorded, the computed band stands again (`override_lapsed` says so). `band` is the "
    "band shown; `computed_band` and `band_reason` say what the scores alone give and which "
    "rule capped them; `override` carries the overriding band, reason, who and when."
)


async def scoring_settings(db: asyncpg.Connection, organisation_id: UUID) -> ScoringSettings:
    return await read_section(db, organisation_id, "scoring", ScoringSettings)


def _period(
    period_from: dt.datetime | None, period_to: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    start, end = compute.default_period(period_from, period_to)
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise unprocessable("from and to must be RFC 3339 times with from before to.")
    return start, end, start - (end - start)


async def service_scorecard(
    db: asyncpg.Connection,
    user: Principal,
    service_id: UUID,
    period_from: dt.datetime | None,
    period_to: dt.datetime | None,
) -> Scorecard:
    service = await service_for(db, user, service_id)
    start, end, prev_start = _period(period_from, period_to)
    settings = await scoring_settings(db, user.organisation_id)
    rows = await db.fetch(SCORES_SQL, service_id, start, prev_start, end)
    current = [r for r in rows if r["current"]]
    previous = [r for r in rows if not r["current"]]
    overall, domains, decision = compute.build(current, previous, settings)
    computed = decision.band if decision else None
    question_rows = await db.fetch(QUESTIONS_SQL, service_id, start, end)
    keys = [r["question_key"] for r in question_rows]
    questions = compute.questions(
        question_rows,
        compute.definitions(await db.fetch(compute.DEFINITIONS_SQL, service_id, start, end, keys)),
        await db.fetch(VALUES_SQL, service_id, start, end, keys),
    )
    units = await db.fetch(AGREEMENT_SQL, service_id, start, end)
    alpha = maths.units_agreement([(u[0], u[1]) for u in units])
    override, lapsed = (await overrides_for(db, [service_id], start, end)).get(
        service_id, (None, None)
    )
    notes = compute.notes(overall, domains, settings.min_submissions)
    if override:
        notes.append(compute.override_note(override, computed))
    elif lapsed:
        notes.append(compute.lapsed_note(lapsed))
    return Scorecard(
        service_id=service.id,
        service_name=service.name,
        kind=service.kind,
        period_from=start,
        period_to=end,
        overall=overall,
        band=override.band if override else computed,
        computed_band=computed,
        band_reason=compute.band_reason(decision, overall.combined.score),
        provisional=compute.provisional(overall) is not None,
        provisional_reason=compute.provisional(overall),
        override=override,
        override_lapsed=lapsed,
        agreement_alpha=alpha,
        domains=domains,
        questions=questions,
        notes=notes,
    )


@get(
    "/services/{service_id:uuid}/scorecard",
    guards=readers,
    summary="A service's scorecard (default: the last 12 months)",
    description="From final submissions only. Scrutiny members and coordinators see every "
    "service of their organisation; service managers only the services they manage. "
    + OVERRIDE_RULE,
    responses=problem_responses(422),
)
async def get_scorecard(
    service_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    period_from: Annotated[Moment | None, QueryParameter(name="from")] = None,
    period_to: Annotated[Moment | None, QueryParameter(name="to")] = None,
) -> Scorecard:
    return await service_scorecard(db, request.user, service_id, period_from, period_to)


@post(
    "/services/{service_id:uuid}/scorecard/override",
    guards=coordinator_only,
    summary="Override the overall band for a period, with a recorded reason (audited)",
    description=OVERRIDE_RULE,
)
async def override_band(
    service_id: FromPath[UUID], data: JSONBody[OverrideRequest], request: AuthedRequest, db: DB
) -> Scorecard:
    await service_in_org(db, request.user, service_id)
    _period(data.period_from, data.period_to)
    await db.execute(
        """insert into scorecard_overrides (organisation_id, service_id, period_from, period_to,
                                            band, reason, created_by)
           values ($1, $2, $3, $4, $5, $6, $7)""",
        request.user.organisation_id,
        service_id,
        data.period_from,
        data.period_to,
        data.band,
        data.reason,
        request.user.user_id,
    )
    await audit(
        db,
        request,
        "scorecard.override",
        "service",
        service_id,
        {
            "band": data.band,
            "reason": data.reason,
            "from": data.period_from.isoformat(),
            "to": data.period_to.isoformat(),
        },
    )
    return await service_scorecard(db, request.user, service_id, data.period_from, data.period_to)


def _increasing(merged: ScoringSettings) -> None:
    t = merged.band_thresholds
    if not 0 < t[0] < t[1] < t[2] <= 100:
        raise unprocessable("band_thresholds must be three increasing percentages.")


scoring_routes = settings_routes(
    "/organisation/scoring",
    "scoring",
    ScoringSettings,
    ScoringSettingsPatch,
    name="scoring",
    audit_action="organisation.scoring",
    readers=("coordinator", "scrutiny_member"),
    read_summary="How this organisation combines and bands scores",
    patch_summary="Change the citizen weight, band thresholds, minimum submissions (audited)",
    check=_increasing,
)


# The league aggregates in PostgreSQL (n, mean, sd per service x perspective x domain for
# the period, and per-submission overall means for both periods), so Python sees a few
# rows per service instead of every submission's domain scores: fetching and decoding
# those raw rows alone took longer than the 300 ms budget for 400 services.
LEAGUE_SQL = """
    with scored as (
        select ss.service_id, ss.submission_id, ss.perspective, ss.domain,
               ss.visit_starts_at >= $3 as current, 100 * ss.wp / ss.wm as score
          from submission_scores ss join services s on s.id = ss.service_id
         where ss.organisation_id = $1 and s.kind = $2
           and ss.visit_starts_at >= $4 and ss.visit_starts_at < $5),
    per_submission as (
        select service_id, current, perspective, submission_id, avg(score) as overall
          from scored group by 1, 2, 3, 4)
    select service_id, true as current, perspective, domain, count(*)::int n,
           avg(score) mean, stddev_samp(score) sd
      from scored where current group by 1, 3, 4
    union all
    select service_id, current, perspective, null, count(*)::int, avg(overall),
           stddev_samp(overall)
      from per_submission group by grouping sets ((1, 2, 3), (1, 2))"""

SortKey = Literal["combined", "citizen", "professional", "name"]


READERS = ("coordinator", "scrutiny_member", "service_manager")


async def league(
    db: asyncpg.Connection,
    user: Principal,
    kind: str,
    period_from: dt.datetime | None,
    period_to: dt.datetime | None,
    sort: SortKey = "combined",
    descending: bool = True,
) -> list[LeagueRow]:
    """Every service of ``kind`` the caller may read, sorted: the JSON route, its CSV and
    the league page all come through here (managers see only the services they manage)."""
    user.require(*READERS)
    start, end, prev_start = _period(period_from, period_to)
    settings = await scoring_settings(db, user.organisation_id)
    services = await db.fetch(
        """select s.id, s.name from services s
            where s.organisation_id = $1 and s.kind = $2
              and (not $3 or exists (select 1 from service_managers m
                                     where m.service_id = s.id and m.user_id = $4))""",
        user.organisation_id,
        kind,
        not user.has("coordinator", "scrutiny_member"),
        user.user_id,
    )
    rows_by_service: dict[UUID, list[Any]] = {s["id"]: [] for s in services}
    for r in await db.fetch(LEAGUE_SQL, user.organisation_id, kind, start, prev_start, end):
        if r["service_id"] in rows_by_service:
            rows_by_service[r["service_id"]].append(r)
    overrides = await overrides_for(db, [s["id"] for s in services], start, end)
    table = [
        compute.league_row(
            s["id"],
            s["name"],
            rows_by_service[s["id"]],
            settings,
            overrides.get(s["id"], (None, None))[0],
        )
        for s in services
    ]

    def key(row: LeagueRow) -> tuple[Any, ...]:
        value: Any = row.service_name if sort == "name" else getattr(row, sort)
        missing = value is None
        # Services without scores last, whichever direction.
        return (
            missing,
            (value if not descending or sort == "name" else -value) if not missing else 0,
            str(row.service_id),
        )

    table.sort(key=key)
    if sort == "name" and descending:
        table.reverse()
    return table


def league_csv(kind: str, rows: list[LeagueRow]) -> Response[str]:
    """The league table as a spreadsheet (the route with Accept: text/csv, the page's link)."""
    return Response(
        _csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'},
    )


@get(
    "/scorecards",
    summary="Every service of a kind side by side; Accept: text/csv for a spreadsheet",
    description="Each row's band is the band of that service's own scorecard for the same "
    "period, overrides included. Coordinators, scrutiny members and service managers (their "
    "own services only). " + OVERRIDE_RULE,
    responses=problem_responses(403, 422),
)
async def league_table(
    request: AuthedRequest,
    db: DB,
    kind: FromQuery[Kind],
    *,
    period_from: Annotated[Moment | None, QueryParameter(name="from")] = None,
    period_to: Annotated[Moment | None, QueryParameter(name="to")] = None,
    sort: FromQuery[SortKey] = "combined",
    descending: FromQuery[bool] = True,
    paging: Paging,
) -> Response[LeaguePage]:
    table = await league(db, request.user, kind, period_from, period_to, sort, descending)
    if "text/csv" in request.headers.get("accept", ""):
        # The CSV variant of the same resource; OpenAPI documents the JSON one.
        return league_csv(kind, table)  # pyright: ignore[reportReturnType]
    # Offset, not keyset: the table is sorted by computed scores, in memory.
    offset = paging.after(int)[0] or 0
    end = offset + paging.limit
    page = table[offset:end]
    nxt = encode_cursor(end) if end < len(table) else None
    return Response(LeaguePage(items=page, next_cursor=nxt))


def _csv(rows: list[LeagueRow]) -> str:
    out = io.StringIO()
    fields = [f for f in LeagueRow.__struct_fields__ if f != "override"]
    w = csv.writer(out)
    w.writerow([*fields, "override_reason"])
    for r in rows:
        w.writerow(
            [
                ""
                if getattr(r, f) is None
                else (f"{getattr(r, f):.1f}" if isinstance(getattr(r, f), float) else getattr(r, f))
                for f in fields
            ]
            + [r.override.reason if r.override else ""]
        )
    return out.getvalue()


router = Router(
    "/v1",
    tags=["scorecards"],
    route_handlers=[get_scorecard, override_band, *scoring_routes, league_table],
)
