"""From stored sums to a service's scorecard: the maths in maths.py, the I/O at the edge."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
from msgspec.structs import asdict

from inspections.checklists.questions import PassFail, Question, Rating, YesNo
from inspections.scorecards import maths
from inspections.scorecards.schemas import (
    BandReason,
    Combined,
    DomainCard,
    Override,
    QuestionCard,
    ScoringSettings,
    Stats,
)
from inspections.wording import count_words, listing, long_date, plural
from service.db import from_row

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
) -> tuple[DomainCard, list[DomainCard], maths.BandDecision | None]:
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

    def domain_card(
        name: str, stats: tuple[Any, Any], combined: Any, facts: Any, previous: float | None
    ) -> DomainCard:
        """The card of a domain (or overall) from the maths: ``facts`` has its gap and band."""
        return DomainCard(
            domain=name,
            citizen=stats[0],
            professional=stats[1],
            combined=Combined(
                score=combined.value,
                citizen_weight=settings.citizen_weight,
                single_perspective=combined.single_perspective,
            ),
            gap=facts.gap,
            diverges=facts.diverges,
            band=facts.band,
            trend=trend(name),
            previous=previous,
        )

    domains = []
    for name, d in card.domains.items():
        prev_d = before.domains.get(name)
        stats = (
            _domain_stats(d.citizen, counts[("citizen", name)]),
            _domain_stats(d.professional, counts[("professional", name)]),
        )
        previous = prev_d.combined.value if prev_d else None
        domains.append(domain_card(name, stats, d.combined, d, previous))
    stats = (
        _overall_stats(pc, counts[("citizen", OVERALL)]),
        _overall_stats(pp, counts[("professional", OVERALL)]),
    )
    overall = domain_card(OVERALL, stats, card.overall, card, before.overall.value)
    return overall, domains, card.decision


def number(x: float) -> str:
    """A score for people: one decimal at most, a real minus sign (66.7, 100, −12.5)."""
    text = f"{x:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text.replace("-", "\u2212")


_RULE_WORDS: dict[str, str] = {
    "two_inadequate_domains": "{inadequate} are Inadequate",
    "an_inadequate_domain": "a domain is Inadequate",
    "two_requires_improvement_domains": "{ri} require improvement",
    "outstanding_needs_two_outstanding_domains": (
        "Outstanding needs at least 2 Outstanding domains ({outstanding})"
    ),
    "outstanding_needs_no_domain_below_good": (
        "{ri} requires improvement, and Outstanding needs every domain Good or better"
    ),
}


def band_reason(decision: maths.BandDecision | None, score: float | None) -> BandReason | None:
    """The band rule that applied (maths.overall_band_decision), in words."""
    if decision is None or score is None:
        return None
    if decision.rule is None:
        words = f"Combined score {number(score)}: {band_words(decision.band)}."
    else:
        why = _RULE_WORDS[decision.rule].format(
            inadequate=plural(decision.inadequate_domains, "domain"),
            ri=plural(decision.requires_improvement_domains, "domain"),
            outstanding=f"this service has {decision.outstanding_domains}",
        )
        words = (
            f"{number(score)} would be {band_words(decision.score_band)}; "
            f"capped at {band_words(decision.band)} because {why}."
        )
    # The decision's facts as they are, with the score and the words.
    return from_row(BandReason, asdict(decision), score=score, words=words)


def provisional(overall: DomainCard) -> str | None:
    """Why the band is provisional (a perspective missing or thin), or None when it is not."""
    c, p = overall.citizen, overall.professional
    if overall.combined.score is None:
        return None
    if c is not None and p is not None and not c.low_confidence and not p.low_confidence:
        return None
    return (
        f"Provisional: {count_words(c.visits if c else 0, 'citizen visit')}, "
        f"{count_words(p.visits if p else 0, 'professional visit')}"
    )


# The newest definition of each question answered at the service's visits in the period.
DEFINITIONS_SQL = """
    select distinct on (q ->> 'key') q ->> 'key' as key, q
      from (select distinct checklist_id, checklist_version from visits
             where service_id = $1 and starts_at >= $2 and starts_at < $3) used
      join checklist_versions cv
        on cv.checklist_id = used.checklist_id and cv.version = used.checklist_version
     cross join lateral jsonb_array_elements(cv.content -> 'sections') sec
     cross join lateral jsonb_array_elements(sec -> 'questions') q
     where q ->> 'key' = any($4::text[])
     order by q ->> 'key', cv.published_at desc"""


def definitions(rows: list[Any]) -> dict[str, Question]:
    out: dict[str, Question] = {}
    for r in rows:
        try:
            out[r["key"]] = msgspec.convert(r["q"], Question)  # type: ignore[arg-type]
        except msgspec.ValidationError:
            continue  # an older content shape: the key stands in for the prompt
    return out


def _value_word(q: Question | None, value: Any) -> str | None:
    match q:
        case YesNo():
            return "Yes" if value is True else "No" if value is False else None
        case PassFail():
            return {"pass": "Pass", "qualified_pass": "Qualified pass", "fail": "Fail"}.get(value)
        case Rating(labels=labels) if isinstance(value, int) and 1 <= value <= len(labels):
            return f"{value} of {len(labels)} ({labels[value - 1]})"
    return None


def answers_in_words(
    q: Question | None, counts: Counter[Any], mean_points: float | None, top: float
) -> str | None:
    """One perspective's answers to a question: "No", "5 No, 1 Yes", "3 of 4 (Good)",
    "1.3 of 4 on average (6 answers)"."""
    n = sum(counts.values())
    if n == 0 or mean_points is None:
        return None
    words = {v: _value_word(q, v) for v in counts}
    if isinstance(q, Rating) and all(words.values()):
        if len(counts) == 1:
            word = next(iter(words.values()))
            return word if n == 1 else f"{word}, all {n} answers"
        return f"{number(mean_points)} of {len(q.labels)} on average ({n} answers)"
    if all(words.values()):
        if len(counts) == 1:
            word = next(iter(words.values()))
            return word if n == 1 else f"{word}, all {n} answers"
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(words[kv[0]])))
        return ", ".join(f"{k} {words[v]}" for v, k in ranked)
    return f"{number(mean_points)} of {number(top)} points on average"


def questions(
    rows: list[Any], defs: dict[str, Question] | None = None, value_rows: Sequence[Any] = ()
) -> list[QuestionCard]:
    """Per question, each perspective's mean points (QUESTIONS_SQL) and answers in words,
    biggest gaps first."""
    defs = defs or {}
    counts: dict[tuple[str, str], Counter[Any]] = defaultdict(Counter)
    for v in value_rows:
        counts[v["question_key"], v["perspective"]][v["value"]] += v["n"]
    cards = []
    for r in rows:
        c, p, top = r["citizen"], r["professional"], r["max_points"]
        key = r["question_key"]
        q = defs.get(key)
        cards.append(
            QuestionCard(
                question_key=key,
                prompt=q.prompt if q else None,
                type=type(q).__struct_config__.tag if q else None,  # type: ignore[attr-defined]
                domain=r["domain"],
                max_points=top,
                citizen_answers=answers_in_words(q, counts[key, "citizen"], c, top),
                professional_answers=answers_in_words(q, counts[key, "professional"], p, top),
                citizen_mean_points=c,
                professional_mean_points=p,
                gap_pct=None if c is None or p is None else 100 * (c - p) / top,
            )
        )
    cards.sort(key=lambda q: (q.gap_pct is None, -abs(q.gap_pct or 0), q.question_key))
    return cards


def in_words(key: str) -> str:
    """A domain, band, kind or question key as words: "requires_improvement" is
    "Requires improvement"."""
    return key.replace("_", " ").capitalize()


def domain_name(key: str) -> str:
    return "Overall" if key == OVERALL else in_words(key)


def notes(overall: DomainCard, domains: list[DomainCard], min_n: int) -> list[str]:
    """What a committee member should know, in plain words, each caveat once.

    A caveat that holds for several domains is one note naming them (or "every score"
    when it holds throughout), not one bullet per domain.
    """
    rows = [overall, *domains]
    out = []
    for d in rows:
        if d.diverges and d.gap is not None:
            who = "lower" if d.gap < 0 else "higher"
            out.append(
                f"{domain_name(d.domain)}: citizens scored {abs(d.gap):.0f} points {who} than "
                "professionals, more than chance would explain: the perspectives diverge."
            )

    def caveat(ds: list[DomainCard], everywhere: str, somewhere: str) -> None:
        # One note: the words for every score when it holds throughout, else ``somewhere``
        # naming where ({where}).
        if len(ds) == len(rows):
            out.append(everywhere)
        elif ds:
            out.append(somewhere.format(where=listing(domain_name(d.domain).lower() for d in ds)))

    for side, stats_of in (
        ("citizen", lambda d: d.citizen),
        ("professional", lambda d: d.professional),
    ):
        caveat(
            [d for d in rows if d.combined.single_perspective and stats_of(d) is not None],
            f"Only {side}s rated this service in this period, so every combined score is "
            "theirs alone.",
            f"Only {side}s rated {{where}}, so the combined score there is theirs alone.",
        )
        caveat(
            [d for d in rows if stats_of(d) is not None and stats_of(d).low_confidence],
            f"Every {side} score rests on fewer than {plural(min_n, 'submission')}: treat it "
            "with caution.",
            f"Fewer than {plural(min_n, side + ' submission')} behind {{where}}: treat with "
            "caution.",
        )
    return out


def override_note(override: Override, computed: maths.Band | None) -> str:
    return (
        f"The overall band was set to {band_words(override.band)} by a coordinator "
        f"(computed: {band_words(computed)}). Reason: {override.reason}"
    )


def lapsed_note(lapsed: Override) -> str:
    return (
        f"A coordinator set the band to {band_words(lapsed.band)} on "
        f"{long_date(lapsed.at)}; submissions finalised since then replace it, "
        "so the band shown is computed from the scores."
    )


def default_period(
    period_from: dt.datetime | None, period_to: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    to = period_to or dt.datetime.now(dt.UTC)
    return (period_from or to - dt.timedelta(days=365)), to


def band_words(band: str | None) -> str:
    # A band's words are its key's (CQC's own: "Requires improvement").
    return in_words(band) if band is not None and band in maths.BANDS else "Not rated"


def league_row(
    service_id: Any,
    name: str,
    rows: list[Any],
    settings: ScoringSettings,
    override: Override | None = None,
) -> Any:
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
        band=override.band if override else band,
        computed_band=band,
        override=override,
        trend=maths.trend(overall.get((True, None)), overall.get((False, None))),
        low_confidence=any(x is None or x.low_confidence for x in sides),
        single_perspective=combined.single_perspective,
    )
