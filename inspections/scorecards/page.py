"""The scorecard as a page for scrutiny committees, and the list of scorecards one may read.

``GET /services/{id}/scorecard`` renders exactly what ``GET /v1/services/{id}/scorecard``
answers (the same ``service_scorecard``, so the same access rules): the overall band, the
combined score with both inputs and the interval, the gap and the agreement in plain words,
a chart of both perspectives per domain (inline SVG with a text alternative and a table of
the same numbers), trends, notes and the questions that drive the gaps. No scripts and no
external assets; colour is never the only cue (words, patterns, arrows with text); the
stylesheet (service/static/site.css, "Scorecards") fits a 390-px phone and prints on A4.

The HTML is in templates/scorecards/: ``_scorecard.html`` is the scorecard itself (also
rendered without a request by ``render``, for tests of its words), ``scorecard.html`` puts
it in the layout. This module turns a Scorecard into the template's context: words, and the
chart's geometry.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from inspections.findings.routes import summaries
from inspections.findings.schemas import ServiceSummary
from inspections.scorecards import compute
from inspections.scorecards.maths import BANDS
from inspections.scorecards.routes import READERS, scoring_settings, service_scorecard
from inspections.scorecards.schemas import (
    DomainCard,
    QuestionCard,
    Scorecard,
    ScoringSettings,
    Stats,
)
from inspections.web.public import PAGES_TAG
from inspections.web.screens import screen, screens_router
from inspections.wording import long_date, plural
from service.auth import AuthedRequest, Principal
from service.bounds import bounded_moment
from service.db import DB
from service.errors import DomainError
from service.state import app_state

TEMPLATES = Path(__file__).parent / "templates"
TOP_ITEMS = 5

# White text on each band colour; the ratios are checked by the tests (all above 4.5:1).
# The same colours are in site.css (.band-<band>), for the band boxes and badges.
BAND_COLOURS = {
    "inadequate": "#a50e0e",
    "requires_improvement": "#7a4100",
    "good": "#1d6b34",
    "outstanding": "#0b4f8a",
    None: "#4d4d4d",
}
CITIZEN_COLOUR = "#0b4f8a"  # solid bars
PROFESSIONAL_COLOUR = "#7a4100"  # striped bars with an outline
TREND = {
    "up": ("↑", "up"),
    "down": ("↓", "down"),
    "steady": ("→", "steady"),
    None: ("", "no previous data"),
}


# --------------------------------------------------------------------------- words


num = compute.number  # one way to write a score, in JSON words and on the page


def num2(x: float) -> str:
    return f"{x:.2f}".replace("-", "\u2212")


nice = compute.in_words  # one way to put a key in words, in JSON notes and on the page


day = long_date


def band_class(band: str | None) -> str:
    return f"band-{band or 'none'}"


def combined_line(d: DomainCard) -> str:
    """Combined 66.7 (citizens 33.3, 95% CI 26–41; professionals 100)."""
    if d.combined.score is None:
        return "No scores in this period."
    parts = []
    for who, s in (("citizens", d.citizen), ("professionals", d.professional)):
        if s is None:
            parts.append(f"no {who}")
        elif s.lower is not None and s.upper is not None and round(s.lower) != round(s.upper):
            parts.append(f"{who} {num(s.score)}, 95% CI {round(s.lower)}\u2013{round(s.upper)}")
        else:
            parts.append(f"{who} {num(s.score)}")
    return f"Combined {num(d.combined.score)} ({'; '.join(parts)})"


def gap_sentence(d: DomainCard, where: str) -> str:
    """Citizens scored 67 points lower than professionals on dignity."""
    if d.gap is None:
        only = "citizens" if d.citizen else "professionals"
        what = "this service" if where == "overall" else where.removeprefix("on ")
        if d.citizen is None and d.professional is None:
            return f"Nobody rated {what} in this period."
        return f"Only {only} rated {what} in this period, so there is no gap to show."
    if round(abs(d.gap)) == 0:
        text = f"Citizens and professionals scored the same {where}."
    else:
        who = "lower" if d.gap < 0 else "higher"
        points = plural(round(abs(d.gap)), "point")
        text = f"Citizens scored {points} {who} than professionals {where}."
    if d.diverges:
        text += " That is more than chance would explain: the perspectives diverge."
    return text


def alpha_sentence(alpha: float | None) -> str:
    if alpha is None:
        return (
            "Agreement between citizens and professionals cannot be measured: they did not "
            "rate the same questions at the same visits."
        )
    if alpha >= 0.8:
        reading = "they largely agree"
    elif alpha >= 0.667:
        reading = "they agree moderately"
    elif alpha > 0:
        reading = "they agree only weakly"
    else:
        reading = "they see this service differently, agreeing no more than chance would"
    return (
        "Where citizens and professionals rated the same questions at the same visits, their "
        f"agreement (Krippendorff's alpha) is {num2(alpha)}, where 1 means full agreement and 0 "
        f"no better than chance: {reading}."
    )


def trend(d: DomainCard) -> dict[str, str]:
    """The trend's arrow (hidden from screen readers), its words, and the previous score."""
    arrow, words = TREND[d.trend]
    previous = (
        f" (previous period: {num(d.previous)})"
        if d.previous is not None and d.trend is not None
        else ""
    )
    return {"arrow": arrow, "words": words, "previous": previous}


def counts(s: Stats | None, who: str) -> str:
    """Citizens: 6 submissions by 2 people at 3 visits. / No professional submissions."""
    if s is None:
        return f"No {who.removesuffix('s')} submissions."
    return (
        f"{who.capitalize()}: {plural(s.submissions, 'submission')} by "
        f"{plural(s.raters, 'person')} at {plural(s.visits, 'visit')}."
    )


# --------------------------------------------------------------------------- chart

# viewBox units: on a 390-px phone one unit is about one CSS pixel, so text stays readable.
W, X0, X1 = 360, 4, 302  # the 0..100 scale runs from X0 to X1; values are written after bars
TOP, ROW, BAR, BOTTOM = 26, 72, 18, 30


def _x(score: float) -> float:
    return round(X0 + (X1 - X0) * max(0.0, min(100.0, score)) / 100, 1)


def chart(card: Scorecard, thresholds: list[float]) -> dict[str, Any]:
    """Horizontal grouped bars: per domain, citizens (solid) above professionals (striped)."""
    rows = []
    for i, d in enumerate(card.domains):
        y = TOP + ROW * i
        bars = []
        for j, (who, s) in enumerate((("citizens", d.citizen), ("professionals", d.professional))):
            top = y + 24 + j * (BAR + 4)
            width = None if s is None else round(max(_x(s.score) - X0, 1.5), 1)
            bars.append(
                {
                    "who": who,
                    "top": top,
                    "width": width,
                    "label_x": None if width is None else round(X0 + width + 5, 1),
                    "value": None if s is None else num(s.score),
                    "fill": CITIZEN_COLOUR if j == 0 else "url(#hatch)",
                    "stroke": CITIZEN_COLOUR if j == 0 else PROFESSIONAL_COLOUR,
                }
            )
        rows.append({"name": nice(d.domain), "y": y, "bars": bars})
    bottom = TOP + ROW * len(card.domains)
    return {
        "width": W,
        "height": bottom + BOTTOM,
        "x0": X0,
        "x1": X1,
        "top": TOP,
        "bottom": bottom,
        "bar": BAR,
        "rows": rows,
        "thresholds": [{"x": _x(t), "label": num(t)} for t in thresholds],
        "ticks": [{"x": _x(t), "label": t} for t in (0, 25, 50, 75, 100)],
        "description": chart_description(card, thresholds),
        "professional_colour": PROFESSIONAL_COLOUR,
        "citizen_colour": CITIZEN_COLOUR,
    }


def chart_description(card: Scorecard, thresholds: list[float]) -> str:
    rows = []
    for d in card.domains:
        c = num(d.citizen.score) if d.citizen else "no ratings"
        p = num(d.professional.score) if d.professional else "no ratings"
        rows.append(f"{nice(d.domain)}: citizens {c}, professionals {p}.")
    t = thresholds
    return (
        "Scores out of 100. "
        + " ".join(rows)
        + f" Dashed lines mark the band thresholds: {num(t[0])} Requires improvement, "
        f"{num(t[1])} Good, {num(t[2])} Outstanding. The table below has the same numbers."
    )


# --------------------------------------------------------------------------- sections


def overall(card: Scorecard, settings: ScoringSettings) -> dict[str, Any]:
    """The band, why it is what it is, and the overall numbers in words."""
    o = card.overall
    why = []  # beside the band: how sure it is and which rule or person set it
    if card.provisional_reason:
        why.append(
            f"{card.provisional_reason}. A firm band needs "
            f"{plural(settings.min_submissions, 'submission')} from citizens and as many "
            "from professionals."
        )
    if card.override is not None:
        why.append(f"Band set by the coordinator: {card.override.reason}")
    elif card.band_reason is not None and card.band_reason.rule is not None:
        why.append(card.band_reason.words)
    extra = ""
    if card.override is not None:
        ov = card.override
        computed = compute.band_words(card.computed_band)
        if card.band_reason is not None and card.band_reason.rule is not None:
            computed += f" ({card.band_reason.words.rstrip('.')})"
        extra = (
            f"Computed from the scores: {computed}. Set by "
            f"{ov.by_name or 'a coordinator'} on {day(ov.at)}"
            + (
                f" for {day(ov.period_from)} to {day(ov.period_to - dt.timedelta(microseconds=1))}"
                if ov.period_from and ov.period_to
                else ""
            )
            + "; it stands until new submissions are finalised."
        )
    elif card.override_lapsed is not None:
        extra = compute.lapsed_note(card.override_lapsed)
    return {
        "band_class": band_class(card.band),
        "word": compute.band_words(card.band),
        "why": why,
        "scale": [{"word": compute.band_words(b), "current": b == card.band} for b in BANDS],
        "extra": extra,
        "combined": combined_line(o),
        "gap": gap_sentence(o, "overall"),
        "alpha": alpha_sentence(card.agreement_alpha),
        "trend": trend(o),
    }


def domain_cards(card: Scorecard) -> list[dict[str, Any]]:
    out = []
    for d in card.domains:
        name = nice(d.domain)
        out.append(
            {
                "name": name,
                "band_class": band_class(d.band),
                "band": compute.band_words(d.band),
                "combined": combined_line(d),
                "gap": gap_sentence(d, "on " + name.lower()),
                "trend": trend(d),
                "counts": f"{counts(d.citizen, 'citizens')} "
                f"{counts(d.professional, 'professionals')}",
            }
        )
    return out


def data_rows(card: Scorecard) -> list[dict[str, Any]]:
    return [
        {
            "name": nice(d.domain),
            "cells": [
                num(d.citizen.score) if d.citizen else "—",
                num(d.professional.score) if d.professional else "—",
                num(d.gap) if d.gap is not None else "—",
            ],
        }
        for d in card.domains
    ]


def gap_items(questions: list[QuestionCard]) -> list[QuestionCard]:
    """The questions both perspectives rated, the largest difference first."""
    rated = [q for q in questions if q.gap_pct is not None and round(abs(q.gap_pct)) > 0]
    rated.sort(key=lambda q: (-abs(q.gap_pct or 0), q.question_key))
    return rated[:TOP_ITEMS]


def items(card: Scorecard) -> list[dict[str, str]]:
    out = []
    for q in gap_items(card.questions):
        gap = q.gap_pct or 0.0
        who = "lower" if gap < 0 else "higher"
        fallback = (
            f"{num(q.citizen_mean_points or 0)} of {num(q.max_points)} points on average",
            f"{num(q.professional_mean_points or 0)} of {num(q.max_points)} points on average",
        )
        out.append(
            {
                "prompt": q.prompt or nice(q.question_key),
                "domain": nice(q.domain).lower(),
                "citizens": q.citizen_answers or fallback[0],
                "professionals": q.professional_answers or fallback[1],
                "gap": f"Citizens scored this {plural(round(abs(gap)), 'point')} {who} out of 100.",
            }
        )
    return out


def recommendations(s: ServiceSummary | None) -> list[tuple[str, int]] | None:
    """What became of what inspectors recommended: the committee's other question."""
    if s is None:
        return None
    return [
        ("Recommendations made", s.recommendations),
        ("Answered on time", s.answered_on_time),
        ("Answered late", s.answered - s.answered_on_time),
        ("Declined (with a published reason)", s.declined),
        ("Overdue: no answer past the due date", s.overdue),
        ("Done, says the service: awaiting verification", s.done_by_service),
        ("Verified by citizen inspectors", s.verified),
    ]


def how_to_read(settings: ScoringSettings) -> dict[str, Any]:
    w = settings.citizen_weight
    weighting = (
        "citizens and professionals count equally"
        if abs(w - 0.5) < 1e-9
        else f"citizens count {w:.0%} and professionals {1 - w:.0%}"
    )
    return {
        "weighting": weighting,
        "t": [num(t) for t in settings.band_thresholds],
        "min_submissions": settings.min_submissions,
    }


def context(
    card: Scorecard,
    settings: ScoringSettings,
    recs: ServiceSummary | None = None,
    reports_url: str | None = None,
) -> dict[str, Any]:
    """Everything _scorecard.html shows, in words and numbers ready to print."""
    last_day = card.period_to - dt.timedelta(microseconds=1)
    return {
        "title": f"{card.service_name}: scorecard ({compute.band_words(card.band)})",
        "card": card,
        "kind": nice(card.kind),
        "period": f"{day(card.period_from)} to {day(last_day)}",
        "from_value": f"{card.period_from:%Y-%m-%d}",
        "to_value": f"{last_day:%Y-%m-%d}",
        "overall": overall(card, settings),
        "chart": chart(card, settings.band_thresholds) if card.domains else None,
        "data_rows": data_rows(card),
        "domains": domain_cards(card),
        "notes": card.notes,
        "items": items(card),
        "recommendations": recommendations(recs),
        "reports_url": reports_url,
        "read": how_to_read(settings),
        "produced": day(dt.datetime.now(dt.UTC)),
    }


@cache
def _standalone() -> Environment:
    # The same templates outside a request (as the app's engine: autoescape, strict).
    return Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined
    )


def render(
    card: Scorecard,
    settings: ScoringSettings,
    recs: ServiceSummary | None = None,
    reports_url: str | None = None,
) -> tuple[str, str]:
    """The page's title and main content, without a request (what the page shows)."""
    ctx = context(card, settings, recs, reports_url)
    body = _standalone().get_template("scorecards/_scorecard.html").render(ctx)
    return ctx["title"], body


# --------------------------------------------------------------------------- routes


def parse_when(value: str | None, *, end: bool) -> dt.datetime | None:
    """A date (2026-01-31) or an RFC 3339 time; a date ``to`` includes that whole day."""
    if not value:
        return None
    value = value.strip()
    if len(value) == 10:
        d = dt.date.fromisoformat(value)
        start = bounded_moment(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC))
        return start + dt.timedelta(days=1) if end else start
    t = dt.datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise ValueError("a time needs its UTC offset")
    return bounded_moment(t)


def bad_dates(detail: str) -> DomainError:
    return DomainError(422, "validation", "Check the dates", detail)


# The API's refusals of a scorecard, in a committee member's words (same status).
NOT_YOURS = DomainError(
    403,
    "forbidden",
    "Not available to your account",
    "Scorecards are for scrutiny members, coordinators and the managers of a service; "
    "service managers see the services they manage only. Ask your coordinator if you need "
    "access.",
)


def _in_words(e: DomainError) -> DomainError:
    if e.status == 404:
        return DomainError(404, "not-found", "Service not found", "There is no such service.")
    if e.status == 403:
        return NOT_YOURS
    if e.status == 422:
        return bad_dates("The start must be before the end.")
    return e


@get(
    "/services/{service_id:uuid}/scorecard",
    include_in_schema=True,
    tags=[PAGES_TAG],
    summary="A service's scorecard as a page (HTML, for browsers; sign in at /signin)",
    description="The same scorecard and access rules as GET /v1/services/{id}/scorecard. "
    "`from`/`to` take dates (2026-01-31, `to` inclusive) or RFC 3339 times. Without a "
    "session, 303 to /signin?next=...; wrong role 403, unknown service 404 (HTML pages).",
)
async def scorecard_page(
    service_id: FromPath[UUID],
    request: AuthedRequest,
    db: DB,
    period_from: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
    period_to: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
) -> Template:
    user = request.user
    try:
        start = parse_when(period_from, end=False)
        end = parse_when(period_to, end=True)
    except ValueError:
        raise bad_dates(
            "Dates must look like 2026-01-31 (or be full times with a UTC offset)."
        ) from None
    try:
        card = await service_scorecard(db, user, service_id, start, end)
    except DomainError as e:
        raise _in_words(e) from e
    settings = await scoring_settings(db, user.organisation_id)
    tz = app_state(request.app).settings.site_timezone
    last_day = (card.period_to - dt.timedelta(microseconds=1)).date()
    recs = await summaries(db, user, card.period_from.date(), last_day, tz, service_id)
    reports_url = f"/public/organisations/{user.organisation_id}?service={service_id}"
    ctx = context(card, settings, recs[0] if recs else None, reports_url)
    return screen(request, "scorecards/scorecard.html", **ctx)


async def readable_services(db: asyncpg.Connection, user: Principal) -> dict[str, list[Any]]:
    """The services whose scorecards this person may read, by kind (the scorecard's rule:
    coordinators and scrutiny members every one, managers those they manage)."""
    if not user.has(*READERS):
        raise NOT_YOURS
    rows = await db.fetch(
        """select s.id, s.name, s.kind from services s
            where s.organisation_id = $1
              and (not $2 or exists (select 1 from service_managers m
                                     where m.service_id = s.id and m.user_id = $3))
            order by s.kind, lower(s.name), s.id""",
        user.organisation_id,
        not user.has("coordinator", "scrutiny_member"),
        user.user_id,
    )
    by_kind: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    return dict(by_kind)


@get(
    "/scorecards",
    include_in_schema=True,
    tags=[PAGES_TAG],
    summary="The scorecards this browser's user may read (HTML; sign in at /signin)",
)
async def home_page(request: AuthedRequest, db: DB) -> Template:
    by_kind = await readable_services(db, request.user)
    kinds = [(kind, nice(kind), services) for kind, services in by_kind.items()]
    return screen(request, "scorecards/list.html", kinds=kinds)


router = screens_router("/", [scorecard_page, home_page])
