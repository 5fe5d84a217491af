"""The scorecard as a page for scrutiny committees: server-rendered HTML, for phones and paper.

``GET /services/{id}/scorecard`` renders exactly what ``GET /v1/services/{id}/scorecard``
answers (the same ``service_scorecard``, so the same access rules): the overall band, the
combined score with both inputs and the interval, the gap and the agreement in plain words,
a chart of both perspectives per domain (inline SVG with a text alternative and a table of
the same numbers), trends, notes and the questions that drive the gaps. No scripts and no
external assets; colour is never the only cue (words, patterns, arrows with text); the
stylesheet fits a 390-px phone and prints on A4.

A browser without a valid session is sent to ``/signin`` and back; wrong role, another
organisation's or an unknown service, or a bad period get a friendly HTML page.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from inspections.accounts.signin_page import (
    HTML,
    PAGES_TAG,
    esc,
    html_response,
    keep_session_alive,
    message_page,
    redirect_to_signin,
)
from inspections.findings.routes import summaries
from inspections.findings.schemas import ServiceSummary
from inspections.scorecards import compute
from inspections.scorecards.routes import scoring_settings, service_scorecard
from inspections.scorecards.schemas import (
    DomainCard,
    QuestionCard,
    Scorecard,
    ScoringSettings,
    Stats,
)
from inspections.wording import long_date, plural
from service.auth import PUBLIC, authenticate
from service.bounds import bounded_moment
from service.db import DB
from service.errors import Problem
from service.state import app_state

READERS = ("coordinator", "scrutiny_member", "service_manager")
TOP_ITEMS = 5

# White text on each band colour; the ratios are checked by the tests (all above 4.5:1).
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

PAGE_CSS = (
    """
.meta{color:#4d4d4d;margin:0 0 .75rem}
form.period{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin:0 0 1rem}
form.period label{margin:0 0 .15rem}
form.period input{width:auto}
.band-box{border-radius:.5rem;padding:.75rem 1rem;color:#fff;margin:.5rem 0;max-width:36rem}
.band-box p{margin:0}
.band-label{font-size:.875rem;font-weight:700;text-transform:uppercase;letter-spacing:.05em}
.band-word{font-size:2.25rem;font-weight:800;line-height:1.15}
.band-box p.band-why{margin:.35rem 0 0;font-weight:600}
.scale{display:flex;flex-wrap:wrap;gap:.35rem;list-style:none;padding:0;margin:.5rem 0 1rem;
font-size:.875rem}
.scale li{border:1px solid #767676;border-radius:1rem;padding:.1rem .65rem;color:#4d4d4d}
.scale li.current{border:2px solid #1a1a1a;color:#1a1a1a;font-weight:700}
.combined{font-size:1.125rem}
.badge{display:inline-block;font-size:.8rem;font-weight:700;color:#fff;border-radius:.25rem;
padding:.05rem .45rem;vertical-align:middle}
.trend{white-space:nowrap}
figure{margin:0}
.chart svg.bars{display:block;width:100%;height:auto;max-width:34rem}
.legend{display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;list-style:none;padding:0;
margin:.5rem 0;font-size:.9rem}
.legend svg{vertical-align:-3px;margin-right:.35rem}
table{border-collapse:collapse;width:100%;max-width:36rem;margin:1rem 0;font-size:.95rem}
caption{text-align:left;font-weight:700;padding-bottom:.25rem}
th,td{border-bottom:1px solid #767676;padding:.3rem .4rem;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
/* Numbers and column headings never break inside a token ("Citize|ns", "\u221263.|1");
   row headings wrap between words, and inside one only if it alone is too wide. */
table td,table th[scope=col]{overflow-wrap:normal;white-space:nowrap}
table th[scope=row]{overflow-wrap:break-word}
@media (max-width:30rem){table{font-size:.85rem}th,td{padding:.3rem .2rem}}
.domains{display:grid;gap:1rem;grid-template-columns:repeat(auto-fill,minmax(min(100%,22rem),1fr))}
article.domain{border:1px solid #767676;border-radius:.5rem;padding:.75rem 1rem}
article.domain p{margin:.35rem 0}
.notes li,.items li{margin:.4rem 0}
@media print{
.band-box{color:#000;background:#fff!important;border:3px solid #000}
.badge{color:#000;background:#fff!important;border:1px solid #000}
.domains{display:block}
article.domain{margin:0 0 .5rem}
.chart svg.bars{max-width:12cm}
}
"""
    + "".join(
        f".band-{band or 'none'}{{background:{colour}}}" for band, colour in BAND_COLOURS.items()
    )
    + "\n"
)


# --------------------------------------------------------------------------- words


num = compute.number  # one way to write a score, in JSON words and on the page


def num2(x: float) -> str:
    return f"{x:.2f}".replace("-", "\u2212")


def nice(key: str) -> str:
    return key.replace("_", " ").capitalize()


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


def trend_html(d: DomainCard) -> str:
    arrow, words = TREND[d.trend]
    previous = (
        f" (previous period: {num(d.previous)})"
        if d.previous is not None and d.trend is not None
        else ""
    )
    symbol = f'<span aria-hidden="true">{arrow}</span> ' if arrow else ""
    return f'<span class="trend">{symbol}{words}</span>{previous}'


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
    return X0 + (X1 - X0) * max(0.0, min(100.0, score)) / 100


def hatch(pattern_id: str) -> str:
    return (
        f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#fff"/>'
        f'<rect width="3" height="6" fill="{PROFESSIONAL_COLOUR}"/></pattern>'
    )


def chart(card: Scorecard, thresholds: list[float]) -> str:
    """Horizontal grouped bars: per domain, citizens (solid) above professionals (striped)."""
    height = TOP + ROW * len(card.domains) + BOTTOM
    out = [
        '<svg class="bars" role="img" aria-labelledby="chart-title" aria-describedby="chart-desc" '
        f'viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
        'font-family="system-ui, sans-serif" font-size="14">',
        '<title id="chart-title">Citizen and professional scores by domain</title>',
        f'<desc id="chart-desc">{esc(chart_description(card, thresholds))}</desc>',
        f"<defs>{hatch('hatch')}</defs>",
    ]
    for i, d in enumerate(card.domains):
        y = TOP + ROW * i
        out.append(
            f'<text x="{X0}" y="{y + 16}" font-size="15" font-weight="700" fill="#1a1a1a">'
            f"{esc(nice(d.domain))}</text>"
        )
        for j, (who, s) in enumerate((("citizens", d.citizen), ("professionals", d.professional))):
            top = y + 24 + j * (BAR + 4)
            if s is None:
                out.append(
                    f'<text x="{X0}" y="{top + 14}" font-style="italic" fill="#4d4d4d">'
                    f"no ratings from {who}</text>"
                )
                continue
            width = max(_x(s.score) - X0, 1.5)
            fill = CITIZEN_COLOUR if j == 0 else "url(#hatch)"
            out.append(
                f'<rect x="{X0}" y="{top}" width="{width:.1f}" height="{BAR}" fill="{fill}" '
                f'stroke="{CITIZEN_COLOUR if j == 0 else PROFESSIONAL_COLOUR}" stroke-width="1.5">'
                f"<title>{esc(nice(d.domain))}, {who}: {num(s.score)}</title></rect>"
                f'<text x="{X0 + width + 5:.1f}" y="{top + 14}" fill="#1a1a1a">'
                f"{num(s.score)}</text>"
            )
    bottom = TOP + ROW * len(card.domains)
    for t in thresholds:
        x = _x(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP - 6}" y2="{bottom}" stroke="#1a1a1a" '
            f'stroke-width="1" stroke-dasharray="3 3"/>'
            f'<text x="{x:.1f}" y="{TOP - 10}" text-anchor="middle" font-size="12" '
            f'fill="#1a1a1a">{num(t)}</text>'
        )
    out.append(f'<line x1="{X0}" x2="{X1}" y1="{bottom + 2}" y2="{bottom + 2}" stroke="#4d4d4d"/>')
    for tick in (0, 25, 50, 75, 100):
        x = _x(tick)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom + 2}" y2="{bottom + 7}" '
            f'stroke="#4d4d4d"/><text x="{x:.1f}" y="{bottom + 20}" text-anchor="middle" '
            f'font-size="12" fill="#4d4d4d">{tick}</text>'
        )
    out.append("</svg>")
    return "".join(out)


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


def legend() -> str:
    citizens = (
        '<svg width="28" height="14" aria-hidden="true" focusable="false">'
        f'<rect x="1" y="1" width="26" height="12" fill="{CITIZEN_COLOUR}"/></svg>'
    )
    professionals = (
        '<svg width="28" height="14" aria-hidden="true" focusable="false">'
        f"<defs>{hatch('hatch-key')}</defs>"
        '<rect x="1" y="1" width="26" height="12" fill="url(#hatch-key)" '
        f'stroke="{PROFESSIONAL_COLOUR}" stroke-width="1.5"/></svg>'
    )
    return (
        '<ul class="legend">'
        f"<li>{citizens}Citizens (solid bar, upper)</li>"
        f"<li>{professionals}Professionals (striped bar, lower)</li>"
        "<li>Dashed lines: band thresholds</li>"
        "</ul>"
    )


def data_table(card: Scorecard) -> str:
    rows = []
    for d in card.domains:
        cells = [
            num(d.citizen.score) if d.citizen else "—",
            num(d.professional.score) if d.professional else "—",
            num(d.gap) if d.gap is not None else "—",
        ]
        rows.append(
            f'<tr><th scope="row">{esc(nice(d.domain))}</th>'
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    return (
        '<table class="data"><caption>The chart’s numbers (score out of 100; gap is '
        "citizens minus professionals)</caption>"
        '<thead><tr><th scope="col">Domain</th><th scope="col">Citizens</th>'
        '<th scope="col">Professionals</th><th scope="col">Gap</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


# --------------------------------------------------------------------------- sections


def overall_section(card: Scorecard, settings: ScoringSettings) -> str:
    o = card.overall
    word = compute.band_words(card.band)
    scale = "".join(
        f'<li class="current" aria-current="true"><span aria-hidden="true">● </span>{w}'
        '<span class="visually-hidden"> (this service)</span></li>'
        if band == card.band
        else f"<li>{w}</li>"
        for band, w in (
            ("inadequate", "Inadequate"),
            ("requires_improvement", "Requires improvement"),
            ("good", "Good"),
            ("outstanding", "Outstanding"),
        )
    )
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
            f"<p>Computed from the scores: {esc(computed)}. Set by "
            f"{esc(ov.by_name or 'a coordinator')} on {esc(day(ov.at))}"
            + (
                f" for {esc(day(ov.period_from))} to "
                f"{esc(day(ov.period_to - dt.timedelta(microseconds=1)))}"
                if ov.period_from and ov.period_to
                else ""
            )
            + "; it stands until new submissions are finalised.</p>"
        )
    elif card.override_lapsed is not None:
        extra = f"<p>{esc(compute.lapsed_note(card.override_lapsed))}</p>"
    return (
        '<section aria-labelledby="overall-h"><h2 id="overall-h">Overall rating</h2>'
        f'<div class="band-box {band_class(card.band)}"><p class="band-label">Overall band</p>'
        f'<p class="band-word">{esc(word)}</p>'
        + "".join(f'<p class="band-why">{esc(w)}</p>' for w in why)
        + "</div>"
        f'<ol class="scale" aria-label="The four bands, lowest first">{scale}</ol>'
        f"{extra}"
        f'<p class="combined">{esc(combined_line(o))}</p>'
        f"<p>{esc(gap_sentence(o, 'overall'))}</p>"
        f"<p>{esc(alpha_sentence(card.agreement_alpha))}</p>"
        f"<p>Trend against the previous period of the same length: {trend_html(o)}</p>"
        "</section>"
    )


def chart_section(card: Scorecard, settings: ScoringSettings) -> str:
    if not card.domains:
        body = "<p>No final submissions in this period, so there is nothing to chart.</p>"
    else:
        body = (
            f'<figure class="chart">{chart(card, settings.band_thresholds)}'
            f"<figcaption>{legend()}</figcaption></figure>{data_table(card)}"
        )
    return (
        '<section aria-labelledby="chart-h"><h2 id="chart-h">Citizens and professionals, '
        f"domain by domain</h2>{body}</section>"
    )


def domain_cards(card: Scorecard) -> str:
    if not card.domains:
        return ""
    items = []
    for i, d in enumerate(card.domains, 1):
        name = nice(d.domain)
        items.append(
            f'<article class="domain" aria-labelledby="domain-{i}">'
            f'<h3 id="domain-{i}">{esc(name)} '
            f'<span class="badge {band_class(d.band)}">{esc(compute.band_words(d.band))}'
            "</span></h3>"
            f"<p>{esc(combined_line(d))}</p>"
            f"<p>{esc(gap_sentence(d, 'on ' + name.lower()))}</p>"
            f"<p>Trend: {trend_html(d)}</p>"
            f'<p class="muted">{esc(counts(d.citizen, "citizens"))} '
            f"{esc(counts(d.professional, 'professionals'))}</p>"
            "</article>"
        )
    return (
        '<section aria-labelledby="domains-h"><h2 id="domains-h">Each domain</h2>'
        f'<div class="domains">{"".join(items)}</div></section>'
    )


def notes_section(card: Scorecard) -> str:
    if card.notes:
        body = '<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in card.notes) + "</ul>"
    else:
        body = (
            "<p>Nothing to flag: no domain has too few submissions, only one perspective, "
            "or perspectives that diverge.</p>"
        )
    return (
        f'<section aria-labelledby="notes-h"><h2 id="notes-h">Things to know</h2>{body}</section>'
    )


def gap_items(questions: list[QuestionCard]) -> list[QuestionCard]:
    """The questions both perspectives rated, the largest difference first."""
    rated = [q for q in questions if q.gap_pct is not None and round(abs(q.gap_pct)) > 0]
    rated.sort(key=lambda q: (-abs(q.gap_pct or 0), q.question_key))
    return rated[:TOP_ITEMS]


def items_section(card: Scorecard) -> str:
    items = gap_items(card.questions)
    if not items:
        body = (
            "<p>No question was scored differently by citizens and professionals "
            "(among those both rated).</p>"
        )
    else:
        lis = []
        for q in items:
            gap = q.gap_pct or 0.0
            who = "lower" if gap < 0 else "higher"
            fallback = (
                f"{num(q.citizen_mean_points or 0)} of {num(q.max_points)} points on average",
                f"{num(q.professional_mean_points or 0)} of {num(q.max_points)} points on average",
            )
            lis.append(
                f"<li><strong>{esc(q.prompt or nice(q.question_key))}</strong> "
                f'<span class="muted">({esc(nice(q.domain).lower())})</span><br>'
                f"Citizens: {esc(q.citizen_answers or fallback[0])}. "
                f"Professionals: {esc(q.professional_answers or fallback[1])}. "
                f"Citizens scored this {plural(round(abs(gap)), 'point')} {who} "
                "out of 100.</li>"
            )
        body = (
            "<p>Questions both citizens and professionals answered, the largest difference "
            f'first.</p><ol class="items">{"".join(lis)}</ol>'
        )
    return (
        '<section aria-labelledby="items-h"><h2 id="items-h">Items that drive the biggest gaps'
        f"</h2>{body}</section>"
    )


def how_to_read(card: Scorecard, settings: ScoringSettings) -> str:
    w = settings.citizen_weight
    weighting = (
        "citizens and professionals count equally"
        if abs(w - 0.5) < 1e-9
        else f"citizens count {w:.0%} and professionals {1 - w:.0%}"
    )
    t = settings.band_thresholds
    return (
        '<section aria-labelledby="read-h"><h2 id="read-h">How to read this scorecard</h2>'
        "<p>Every score is a percentage of the most a service could earn on the questions "
        "that applied. Each perspective’s domain score is the mean of its inspectors’ "
        "submissions, with a 95% confidence interval (CI) where there is more than one. "
        f"The combined score weights the two perspectives: {weighting}. "
        f"Bands come from the combined score: below {num(t[0])} Inadequate, "
        f"{num(t[0])} to below {num(t[1])} Requires improvement, {num(t[1])} to below "
        f"{num(t[2])} Good, {num(t[2])} and above Outstanding; the overall band also "
        "follows the rules of CQC’s ratings principles (for example, two Inadequate domains "
        f"make the service Inadequate). Fewer than {settings.min_submissions} submissions "
        "from a perspective is low confidence.</p></section>"
    )


def period_form(card: Scorecard) -> str:
    last_day = card.period_to - dt.timedelta(microseconds=1)
    return (
        '<form class="period no-print" method="get" aria-label="Choose the period">'
        '<div><label for="from">From</label>'
        f'<input id="from" name="from" type="date" value="{card.period_from:%Y-%m-%d}"></div>'
        '<div><label for="to">To (inclusive)</label>'
        f'<input id="to" name="to" type="date" value="{last_day:%Y-%m-%d}"></div>'
        '<button type="submit">Show</button></form>'
    )


def recommendations_section(s: ServiceSummary | None, reports_url: str | None = None) -> str:
    """What became of what inspectors recommended: the committee's other question."""
    head = "<section><h2>Recommendations to this service</h2>"
    link = (
        f'<p><a href="{esc(reports_url)}">This service’s published visit reports</a> '
        "(public: anyone can read them).</p>"
        if reports_url
        else ""
    )
    if s is None:
        return (
            head
            + "<p>No report with recommendations was published in this period.</p>"
            + link
            + "</section>"
        )
    rows = [
        ("Recommendations made", s.recommendations),
        ("Answered on time", s.answered_on_time),
        ("Answered late", s.answered - s.answered_on_time),
        ("Declined (with a published reason)", s.declined),
        ("Overdue: no answer past the due date", s.overdue),
        ("Done, says the service: awaiting verification", s.done_by_service),
        ("Verified by citizen inspectors", s.verified),
    ]
    return (
        head
        + "<table><caption>From reports published in this period</caption><tbody>"
        + "".join(f'<tr><th scope="row">{esc(k)}</th><td>{v}</td></tr>' for k, v in rows)
        + "</tbody></table>"
        + link
        + "</section>"
    )


def render(
    card: Scorecard,
    settings: ScoringSettings,
    recs: ServiceSummary | None = None,
    reports_url: str | None = None,
) -> tuple[str, str]:
    """The page's title and main content."""
    last_day = card.period_to - dt.timedelta(microseconds=1)
    title = f"{card.service_name}: scorecard ({compute.band_words(card.band)})"
    body = (
        f"<h1>{esc(card.service_name)}</h1>"
        f'<p class="meta">{esc(nice(card.kind))} · scorecard for '
        f"{esc(day(card.period_from))} to {esc(day(last_day))}</p>"
        + period_form(card)
        + overall_section(card, settings)
        + chart_section(card, settings)
        + domain_cards(card)
        + notes_section(card)
        + items_section(card)
        + recommendations_section(recs, reports_url)
        + how_to_read(card, settings)
        + f'<p class="muted">From final submissions only. Produced '
        f"{esc(day(dt.datetime.now(dt.UTC)))}.</p>"
    )
    return title, body


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


@get(
    "/services/{service_id:uuid}/scorecard",
    **PUBLIC,
    tags=[PAGES_TAG],
    media_type=HTML,
    summary="A service's scorecard as a page (HTML, for browsers; sign in at /signin)",
    description="The same scorecard and access rules as GET /v1/services/{id}/scorecard. "
    "`from`/`to` take dates (2026-01-31, `to` inclusive) or RFC 3339 times. Without a "
    "session, 303 to /signin?next=...; wrong role 403, unknown service 404 (HTML pages).",
)
async def scorecard_page(
    service_id: FromPath[UUID],
    request: Request,
    db: DB,
    period_from: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
    period_to: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
) -> Response[Any]:
    session = await authenticate(request)
    if session is None:
        return redirect_to_signin(request)
    user, token = session
    if not user.has(*READERS):
        return message_page(
            403,
            "Not available to your account",
            "Scorecards are for scrutiny members, coordinators and the managers of a service. "
            "Ask your coordinator if you need access.",
            user,
        )
    try:
        start = parse_when(period_from, end=False)
        end = parse_when(period_to, end=True)
    except ValueError:
        return message_page(
            422,
            "Check the dates",
            "Dates must look like 2026-01-31 (or be full times with a UTC offset).",
            user,
        )
    try:
        card = await service_scorecard(db, user, service_id, start, end)
    except Problem as p:
        if p.status == 404:
            return message_page(404, "Service not found", "There is no such service.", user)
        if p.status == 403:
            return message_page(
                403,
                "Not available to your account",
                "Service managers can see the scorecards of the services they manage only.",
                user,
            )
        if p.status == 422:
            return message_page(422, "Check the dates", "The start must be before the end.", user)
        raise
    settings = await scoring_settings(db, user.organisation_id)
    tz = app_state(request.app).settings.site_timezone
    last_day = (card.period_to - dt.timedelta(microseconds=1)).date()
    recs = await summaries(db, user, card.period_from.date(), last_day, tz, service_id)
    reports_url = f"/public/organisations/{user.organisation_id}?service={service_id}"
    title, body = render(card, settings, recs[0] if recs else None, reports_url)
    response = html_response(title, body, css=PAGE_CSS, principal=user)
    keep_session_alive(request, token, response)
    return response


@get(
    "/scorecards",
    **PUBLIC,
    tags=[PAGES_TAG],
    media_type=HTML,
    summary="The scorecards this browser's user may read (HTML; sign in at /signin)",
)
async def home_page(request: Request, db: DB) -> Response[Any]:
    session = await authenticate(request)
    if session is None:
        return redirect_to_signin(request)
    user, token = session
    if not user.has(*READERS):
        body = (
            "<h1>Scorecards</h1><p>Your account has no scorecards to read: they are for "
            "scrutiny members, coordinators and service managers.</p>"
        )
    else:
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
        parts = ["<h1>Scorecards</h1>"]
        if not rows:
            parts.append("<p>There are no services for you to read yet.</p>")
        for kind, services in by_kind.items():
            parts.append(f"<h2>{esc(nice(kind))}</h2><ul>")
            parts.extend(
                f'<li><a href="/services/{s["id"]}/scorecard">{esc(s["name"])}</a></li>'
                for s in services
            )
            parts.append("</ul>")
        body = "".join(parts)
    response = html_response("Scorecards", body, principal=user)
    keep_session_alive(request, token, response)
    return response


route_handlers = [scorecard_page, home_page]
