"""``/league``: services of one kind side by side, for scrutiny committees, as a page.

The rows are ``routes.league``'s, the JSON route's own function (its role check, its
managers-see-their-own rule, its sort); the CSV link downloads ``routes.league_csv`` of the
same rows. Sorting is by links (``sort`` and ``order`` in the query), so it needs no script.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from litestar import Response, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from inspections.scorecards import compute
from inspections.scorecards.page import bad_dates, nice, num, parse_when
from inspections.scorecards.routes import READERS, SortKey, league, league_csv
from inspections.scorecards.schemas import LeagueRow
from inspections.web.screens import screen, screens_router
from service.auth import AuthedRequest
from service.db import DB
from service.errors import forbidden

Order = Literal["desc", "asc"]
Kind = Annotated[str | None, QueryParameter(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Day = Annotated[str | None, QueryParameter(max_length=40)]
COLUMNS: tuple[tuple[SortKey, str], ...] = (
    ("name", "Service"),
    ("combined", "Combined"),
    ("citizen", "Citizens"),
    ("professional", "Professionals"),
)
TRENDS = {"up": "↑ up", "down": "↓ down", "steady": "→ steady", None: "—"}


def _score(x: float | None) -> str:
    return "—" if x is None else num(x)


def _row(r: LeagueRow, org: str) -> dict[str, object]:
    return {
        "name": r.service_name,
        "scorecard": f"/services/{r.service_id}/scorecard",
        "reports": f"/public/organisations/{org}?service={r.service_id}",
        "band": compute.band_words(r.band),
        "band_class": f"band-{r.band or 'none'}",
        "combined": _score(r.combined),
        "citizen": _score(r.citizen),
        "professional": _score(r.professional),
        "trend": TRENDS[r.trend],
        "caveat": "low confidence"
        if r.low_confidence
        else ("one perspective only" if r.single_perspective else ""),
        "override": r.override.reason if r.override else "",
    }


async def _kinds(db: DB, organisation_id: object) -> list[str]:
    rows = await db.fetch(
        "select distinct kind from services where organisation_id = $1 order by kind",
        organisation_id,
    )
    return [r["kind"] for r in rows]


@get("/league")
async def league_page(
    request: AuthedRequest,
    db: DB,
    kind: Kind = None,
    sort: FromQuery[SortKey] = "combined",
    order: FromQuery[Order] = "desc",
    period_from: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
    period_to: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
) -> Template:
    user = request.user
    if not user.has(*READERS):  # before listing kinds: the table's own check says it again
        raise forbidden(f"This needs one of the roles: {', '.join(READERS)}.")
    kinds = await _kinds(db, user.organisation_id)
    kind = kind or (kinds[0] if kinds else None)
    try:
        start, end = parse_when(period_from, end=False), parse_when(period_to, end=True)
    except ValueError:
        raise bad_dates("Dates must look like 2026-01-31.") from None
    rows = [] if kind is None else await league(db, user, kind, start, end, sort, order == "desc")
    base = {"kind": kind or "", "from": period_from or "", "to": period_to or ""}
    query = {k: v for k, v in base.items() if v}

    def link(**extra: str) -> str:
        return "/league?" + urlencode({**query, **extra})

    columns = []
    for key, label in COLUMNS:
        current = key == sort
        # Names read A first; scores highest first; a second click turns the order round.
        first = "asc" if key == "name" else "desc"
        flip = "asc" if order == "desc" else "desc"
        columns.append(
            {
                "label": label,
                "href": link(sort=key, order=flip if current else first),
                "sort": ("descending" if order == "desc" else "ascending") if current else "",
            }
        )
    sorted_by = dict(COLUMNS)[sort].lower()
    return screen(
        request,
        "scorecards/league.html",
        kind=kind,
        kind_label=nice(kind) if kind else "",
        kinds=[(k, nice(k), link(kind=k, sort=sort, order=order)) for k in kinds],
        rows=[_row(r, str(user.organisation_id)) for r in rows],
        columns=columns,
        sorted_words=f"Sorted by {sorted_by}, "
        + ("highest first" if order == "desc" else "lowest first")
        if sort != "name"
        else f"Sorted by name, {'A to Z' if order == 'asc' else 'Z to A'}",
        csv=f"/league.csv?{urlencode({**query, 'sort': sort, 'order': order})}" if kind else "",
        from_value=period_from or "",
        to_value=period_to or "",
    )


@get("/league.csv")
async def league_csv_page(
    request: AuthedRequest,
    db: DB,
    kind: Annotated[str, QueryParameter(pattern=r"^[a-z][a-z0-9_]{1,39}$")],
    sort: FromQuery[SortKey] = "combined",
    order: FromQuery[Order] = "desc",
    period_from: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
    period_to: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
) -> Response[str]:
    """The same table as a spreadsheet: a link cannot send the API's Accept: text/csv."""
    try:
        start, end = parse_when(period_from, end=False), parse_when(period_to, end=True)
    except ValueError:
        raise bad_dates("Dates must look like 2026-01-31.") from None
    rows = await league(db, request.user, kind, start, end, sort, order == "desc")
    return league_csv(kind, rows)


router = screens_router("/", [league_page, league_csv_page])
