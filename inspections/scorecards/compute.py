"""From stored sums to a service's scorecard: the maths in maths.py, the I/O at the edge."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from inspections.scorecards import maths
from inspections.scorecards.schemas import (
    Combined,
    DomainCard,
    QuestionCard,
    ScoringSettings,
    Stats,
)

# Not a possible domain key (those match ^[a-z]...), so a domain named "overall" is safe.
OVERALL = "_overall"


def submissions_of(rows: list[Any]) -> dict[str, list[maths.SubmissionScores]]:
    """Rows of submission_scores -> per perspective, each submission's domain scores."""
    by_sub: dict[Any, dict[str, Any]] = {}
    for r in rows:
        sub = by_sub.setdefault(
            r["submission_id"],
            {
                "perspective": r["perspective"],
                "rater": r["user_id"],
                "visit": r["visit_id"],
                "domains": {},
            },
        )
        sub["domains"][r["domain"]] = maths.score_from_sums(r["wp"], r["wm"])
    out: dict[str, list[maths.SubmissionScores]] = {"citizen": [], "professional": []}
    for s in by_sub.values():
        out[s["perspective"]].append(
            maths.SubmissionScores(rater=s["rater"], visit=s["visit"], domains=s["domains"])
        )
    return out


def answer_counts(rows: list[Any]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[r["perspective"], r["domain"]] += r["answers"]
        counts[r["perspective"], OVERALL] += r["answers"]
    return counts


def _stats(
    score: float, s: maths.Summary, who: maths.DomainScores | maths.PerspectiveScores, answers: int
) -> Stats:
    return Stats(
        score=score,
        lower=s.lower,
        upper=s.upper,
        submissions=s.n,
        raters=who.raters,
        visits=who.visits,
        answers=answers,
        low_confidence=s.low_confidence,
    )


def _domain_stats(d: maths.DomainScores | None, answers: int) -> Stats | None:
    return None if d is None else _stats(d.summary.mean, d.summary, d, answers)


def _overall_stats(p: maths.PerspectiveScores, answers: int) -> Stats | None:
    if p.overall is None or p.overall_summary is None:
        return None
    return _stats(p.overall, p.overall_summary, p, answers)


def pooled(subs: dict[str, list[maths.SubmissionScores]], domain: str, min_n: int):  # type: ignore[no-untyped-def]
    """Both perspectives' submission scores together, for reading a trend with an interval."""
    scores = []
    for s in subs["citizen"] + subs["professional"]:
        if domain == OVERALL:
            if s.domains:
                scores.append(maths.mean_of(list(s.domains.values())))
        elif domain in s.domains:
            scores.append(s.domains[domain])
    return maths.summarise(scores, min_n=min_n) if scores else None


def build(
    current_rows: list[Any], previous_rows: list[Any], settings: ScoringSettings
) -> tuple[DomainCard, list[DomainCard], maths.Band | None]:
    kw = {
        "w": settings.citizen_weight,
        "thresholds": settings.band_thresholds,
        "gap_threshold": settings.gap_threshold,
    }
    cur, prev = submissions_of(current_rows), submissions_of(previous_rows)
    counts = answer_counts(current_rows)
    pc = maths.perspective_scores(cur["citizen"], min_n=settings.min_submissions)
    pp = maths.perspective_scores(cur["professional"], min_n=settings.min_submissions)
    card = maths.scorecard(pc, pp, **kw)
    before = maths.scorecard(
        maths.perspective_scores(prev["citizen"], min_n=settings.min_submissions),
        maths.perspective_scores(prev["professional"], min_n=settings.min_submissions),
        **kw,
    )

    def trend(domain: str) -> maths.Trend | None:
        return maths.trend(
            pooled(cur, domain, settings.min_submissions),
            pooled(prev, domain, settings.min_submissions),
        )

    domains = []
    for name, d in card.domains.items():
        prev_d = before.domains.get(name)
        domains.append(
            DomainCard(
                domain=name,
                citizen=_domain_stats(d.citizen, counts[("citizen", name)]),
                professional=_domain_stats(d.professional, counts[("professional", name)]),
                combined=Combined(
                    score=d.combined.value,
                    citizen_weight=settings.citizen_weight,
                    single_perspective=d.combined.single_perspective,
                ),
                gap=d.gap,
                diverges=d.diverges,
                band=d.band,
                trend=trend(name),
                previous=prev_d.combined.value if prev_d else None,
            )
        )
    overall = DomainCard(
        domain=OVERALL,
        citizen=_overall_stats(pc, counts[("citizen", OVERALL)]),
        professional=_overall_stats(pp, counts[("professional", OVERALL)]),
        combined=Combined(
            score=card.overall.value,
            citizen_weight=settings.citizen_weight,
            single_perspective=card.overall.single_perspective,
        ),
        gap=card.gap,
        diverges=card.diverges,
        band=card.band,
        trend=trend(OVERALL),
        previous=before.overall.value,
    )
    return overall, domains, card.band


def questions(rows: list[Any]) -> list[QuestionCard]:
    """Per question, each perspective's mean points (QUESTIONS_SQL), biggest gaps first."""
    cards = []
    for r in rows:
        c, p, top = r["citizen"], r["professional"], r["max_points"]
        cards.append(
            QuestionCard(
                question_key=r["question_key"],
                domain=r["domain"],
                max_points=top,
                citizen_mean_points=c,
                professional_mean_points=p,
                gap_pct=None if c is None or p is None else 100 * (c - p) / top,
            )
        )
    cards.sort(key=lambda q: (q.gap_pct is None, -abs(q.gap_pct or 0), q.question_key))
    return cards


_BAND_WORDS = {
    "inadequate": "Inadequate",
    "requires_improvement": "Requires improvement",
    "good": "Good",
    "outstanding": "Outstanding",
}


def notes(overall: DomainCard, domains: list[DomainCard], min_n: int) -> list[str]:
    """What a committee member should know, in plain words."""
    out = []
    for d in [overall, *domains]:
        name = "Overall" if d.domain == OVERALL else d.domain.replace("_", " ").capitalize()
        if d.diverges and d.gap is not None:
            who = "lower" if d.gap < 0 else "higher"
            out.append(
                f"{name}: citizens scored {abs(d.gap):.0f} points {who} than professionals, "
                "more than chance would explain: the perspectives diverge."
            )
        if d.combined.single_perspective:
            side = "citizens" if d.citizen else "professionals"
            out.append(f"{name}: only {side} rated this, so the combined score is theirs alone.")
        for side, stats in (("citizen", d.citizen), ("professional", d.professional)):
            if stats is not None and stats.low_confidence:
                out.append(f"{name}: fewer than {min_n} {side} submissions; treat with caution.")
    return out


def default_period(
    period_from: dt.datetime | None, period_to: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    to = period_to or dt.datetime.now(dt.UTC)
    return (period_from or to - dt.timedelta(days=365)), to


def band_words(band: str | None) -> str:
    return _BAND_WORDS.get(band or "", "Not rated")


def league_row(service_id: Any, name: str, rows: list[Any], settings: ScoringSettings) -> Any:
    """One service's league line from LEAGUE_SQL's aggregates (n, mean, sd per group).

    Domain means are SQL averages rather than fsum-exact sums: a service exactly on a band
    threshold could differ in the last bit from its own scorecard.
    """
    from inspections.scorecards.schemas import LeagueRow

    min_n = settings.min_submissions

    def summary(r: Any) -> maths.Summary:
        return maths.summary_from_moments(r["n"], r["mean"], r["sd"], min_n=min_n)

    domains: dict[str, dict[str, maths.Summary]] = {"citizen": {}, "professional": {}}
    overall: dict[tuple[bool, str | None], maths.Summary] = {}
    for r in rows:
        if r["domain"] is not None:
            domains[r["perspective"]][r["domain"]] = summary(r)
        else:
            overall[r["current"], r["perspective"]] = summary(r)
    headline = {p: maths.mean_of([d.mean for d in domains[p].values()]) for p in domains}
    combined = maths.combine(headline["citizen"], headline["professional"], settings.citizen_weight)
    bands = []
    for d in domains["citizen"].keys() | domains["professional"].keys():
        c, p = domains["citizen"].get(d), domains["professional"].get(d)
        value = maths.combine(
            c.mean if c else None, p.mean if p else None, settings.citizen_weight
        ).value
        if value is not None:
            bands.append(maths.band(value, settings.band_thresholds))
    band = (
        maths.overall_band(bands, combined.value, settings.band_thresholds)
        if combined.value is not None
        else None
    )
    sides = [overall.get((True, "citizen")), overall.get((True, "professional"))]
    return LeagueRow(
        service_id=service_id,
        service_name=name,
        combined=combined.value,
        citizen=headline["citizen"],
        professional=headline["professional"],
        band=band,
        trend=maths.trend(overall.get((True, None)), overall.get((False, None))),
        low_confidence=any(x is None or x.low_confidence for x in sides),
        single_perspective=combined.single_perspective,
    )
