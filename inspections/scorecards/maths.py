"""Scorecard maths: pure functions from answers to scores, intervals, bands and agreement.

Implements DESIGN.md "Scoring: combining citizen and professional ratings". Everything here
is pure (no I/O, no clock, no database) and needs neither NumPy nor SciPy: the Student t
quantile and Krippendorff's alpha are computed in this module.

Pipeline, per service x period:

    answers of one submission --submission_domain_scores--> {domain: score}
    SubmissionScores of one perspective --perspective_scores--> PerspectiveScores
    citizen + professional PerspectiveScores --scorecard--> ScoreComparison
    (combine, gap, diverges, band, overall_band, trend are the rules it is built from)

Agreement (``perspective_agreement``) is Krippendorff's ordinal alpha on each answer's
share of its question's maximum (points / max_points), not on raw answer values: a
checklist mixes 1-4 ratings with pass/fail and yes/no (0 or 2 of 2), and a raw "2" means
"Fair" on one and "Pass" on another. The share puts every question on the 0-1 footing the
scores use, and ordinal alpha then uses only its order.

Sums use ``math.fsum`` (exactly rounded), so every result is bit-for-bit independent of
the order answers and submissions arrive in.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal, Protocol
from uuid import UUID

import msgspec

Band = Literal["inadequate", "requires_improvement", "good", "outstanding"]
# Lowest first: a band's index is its rank, so "capping" is ``min`` on indices.
BANDS: tuple[Band, ...] = ("inadequate", "requires_improvement", "good", "outstanding")
Perspective = Literal["citizen", "professional"]
Trend = Literal["up", "down", "steady"]
Level = Literal["nominal", "ordinal", "interval"]
Interval = tuple[float, float]
Id = UUID | str
# CQC single-assessment cut-offs: the lowest score of RI, Good and Outstanding.
DEFAULT_THRESHOLDS: tuple[float, float, float] = (39.0, 63.0, 88.0)
DEFAULT_GAP_THRESHOLD = 10.0
DEFAULT_MIN_N = 3


# --------------------------------------------------------------------------- answers


class Scored(Protocol):
    """An answer's points out of its question's maximum (None: N/A, unanswered or
    unscored): what both the scores and the agreement read of an answer."""

    @property
    def points(self) -> float | None: ...
    @property
    def max_points(self) -> float | None: ...


class AnswerLike(Scored, Protocol):
    """What scoring needs of an answer (a DB row, a ScoredAnswer view, an AnswerPoints)."""

    @property
    def domain(self) -> str: ...
    @property
    def weight(self) -> float: ...


class Points(msgspec.Struct, frozen=True, kw_only=True):
    """Scored's two fields as values, for the answers built here and in tests."""

    points: float | None
    max_points: float | None


class AnswerPoints(Points, frozen=True, kw_only=True):
    """One answer as scoring sees it. ``points`` is None for N/A, unanswered or unscored."""

    domain: str
    weight: float = 1.0


def domain_sums(answers: Iterable[AnswerLike]) -> dict[str, tuple[float, float]]:
    """Per domain, ``(sum(w * points), sum(w * max))`` over the scored answers.

    These are the ``wp``/``wm`` columns of ``submission_scores``. N/A, unanswered and
    unscored answers (points None) add neither points nor maximum: never a zero.
    """
    wp: dict[str, list[float]] = defaultdict(list)
    wm: dict[str, list[float]] = defaultdict(list)
    for a in answers:
        if a.points is None:
            continue
        if a.max_points is None or not math.isfinite(a.max_points) or a.max_points <= 0:
            raise ValueError(f"answer in {a.domain!r} has points but no positive maximum")
        if not 0 <= a.points <= a.max_points:
            raise ValueError(f"answer in {a.domain!r} earns {a.points} of {a.max_points}")
        if not math.isfinite(a.weight) or a.weight < 0:
            raise ValueError(f"answer in {a.domain!r} has weight {a.weight}")
        if a.weight == 0:
            continue  # adds 0 to both sums; skipping keeps a weightless domain absent
        wp[a.domain].append(a.weight * a.points)
        wm[a.domain].append(a.weight * a.max_points)
    # fsum: exactly rounded, hence independent of the order the answers arrive in.
    return {d: (math.fsum(wp[d]), math.fsum(wm[d])) for d in sorted(wm)}


def score_from_sums(wp: float, wm: float) -> float:
    """A domain score, ``100 * wp / wm``, from stored sums (``wm`` must be positive)."""
    if not wm > 0 or not 0 <= wp <= wm:
        raise ValueError(f"invalid domain sums wp={wp}, wm={wm}")
    # wp <= wm, but 100 * wp rounds on its own: keep a full-marks domain at exactly 100.
    return min(100.0, 100.0 * wp / wm)


def submission_domain_scores(answers: Iterable[AnswerLike]) -> dict[str, float]:
    """One submission's domain scores in percent of the maximum, sorted by domain.

    A domain with no scored answers is absent (not 0): nothing was observed there.
    """
    return {d: score_from_sums(wp, wm) for d, (wp, wm) in domain_sums(answers).items()}


# --------------------------------------------------------------------------- Student t


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta (modified Lentz; Numerical Recipes 6.4)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 20_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            return h
    raise ArithmeticError("incomplete beta continued fraction did not converge")


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """Regularized incomplete beta I_x(a, b); ``y`` is 1 - x, passed in to keep precision."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_x = math.log(x) if x < 0.5 else math.log1p(-y)
    log_y = math.log(y) if y < 0.5 else math.log1p(-x)
    log_front = a * log_x + b * log_y - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    front = math.exp(log_front)
    # The fraction converges fast on this side of the mean; use symmetry on the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def t_sf(t: float, df: float) -> float:
    """Upper tail P(T > t) of Student's t with ``df`` degrees of freedom."""
    if not df > 0:
        raise ValueError("df must be positive")
    if t == 0:
        return 0.5
    # P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2)
    x, y = df / (df + t * t), t * t / (df + t * t)
    two_tail = _betainc(df / 2.0, 0.5, x, y)
    return two_tail / 2.0 if t > 0 else 1.0 - two_tail / 2.0


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) of Student's t with ``df`` degrees of freedom."""
    return t_sf(-t, df)


def _t_pdf(t: float, df: float) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))


def _cornish_fisher(z: float, df: float) -> float:
    """Asymptotic t quantile from the normal one (Abramowitz & Stegun 26.7.5)."""
    z2 = z * z
    g1 = z * (z2 + 1) / 4
    g2 = z * ((5 * z2 + 16) * z2 + 3) / 96
    g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384
    g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """Inverse CDF of Student's t: the ``t`` with P(T <= t) = p.

    Exact closed forms for df 1 and 2; the Cornish-Fisher series for df >= 1000 (its
    error there is below 1e-13); otherwise Newton's method on the upper tail from the
    series' estimate, kept inside a bisection bracket. Cached: scorecards only ever ask
    for (0.975, n - 1).
    """
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if not df > 0:  # also rejects NaN
        raise ValueError("df must be positive")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    q = 1.0 - p  # solve the upper tail: more precise than 1 - cdf near p = 1
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * q)
    z = statistics.NormalDist().inv_cdf(p)
    guess = _cornish_fisher(z, df)
    if df >= 1000 or math.isinf(df):
        return guess
    lo, hi = 0.0, max(guess, 1.0)
    while t_sf(hi, df) > q:  # the series can undershoot for small df: widen the bracket
        lo, hi = hi, hi * 2
    t = min(max(guess, lo), hi)
    for _ in range(200):
        f = t_sf(t, df) - q  # decreasing in t
        if f > 0:
            lo = t
        else:
            hi = t
        step = f / _t_pdf(t, df)  # Newton on sf: t_new = t - f / sf' = t + f / pdf
        new = t + step
        if not lo < new < hi:
            new = (lo + hi) / 2
        if abs(new - t) <= 1e-14 * max(1.0, abs(t)):
            return new
        t = new
    return t


# --------------------------------------------------------------------------- summaries


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """Mean of submission scores with its t-interval (lower/upper clamped to [0, 100])."""

    n: int
    mean: float
    sd: float | None  # sample standard deviation (n - 1); None when n == 1
    lower: float | None  # None when n == 1: one submission gives no interval
    upper: float | None
    low_confidence: bool  # n < min_n (DESIGN.md: below 3 submissions)

    @property
    def interval(self) -> Interval | None:
        if self.lower is None or self.upper is None:
            return None
        return (self.lower, self.upper)


def summarise(
    scores: Iterable[float], *, min_n: int = DEFAULT_MIN_N, confidence: float = 0.95
) -> Summary:
    """Mean, sample SD and ``confidence`` t-interval of the mean (n - 1 df) of scores.

    Raises ValueError for no scores: "no data" is the absence of a Summary, never a 0.
    """
    xs = list(scores)
    n = len(xs)
    if n == 0:
        raise ValueError("no scores to summarise")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    for x in xs:
        if not (math.isfinite(x) and 0.0 <= x <= 100.0):
            raise ValueError(f"score {x} is not a percentage")
    low, high = min(xs), max(xs)
    # Identical scores give exactly that mean; otherwise keep rounding inside [min, max].
    mean = low if low == high else min(max(math.fsum(xs) / n, low), high)
    if n == 1:
        sd = None
    else:
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if low != high else 0.0
    return _with_interval(n, mean, sd, min_n, confidence)


def summary_from_moments(
    n: int,
    mean: float,
    sd: float | None,
    *,
    min_n: int = DEFAULT_MIN_N,
    confidence: float = 0.95,
) -> Summary:
    """The same Summary as ``summarise`` from (n, mean, sample sd) computed elsewhere (SQL)."""
    if n < 1:
        raise ValueError("no scores to summarise")
    return _with_interval(n, min(max(mean, 0.0), 100.0), sd, min_n, confidence)


def _with_interval(n: int, mean: float, sd: float | None, min_n: int, confidence: float) -> Summary:
    """A Summary with its t interval (none from one score, or with no sd)."""
    if n == 1 or sd is None:
        return Summary(n=n, mean=mean, sd=None, lower=None, upper=None, low_confidence=n < min_n)
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Summary(
        n=n,
        mean=mean,
        sd=sd,
        # Scores live in [0, 100]; an interval reaching past them would claim the impossible.
        lower=max(0.0, mean - half),
        upper=min(100.0, mean + half),
        low_confidence=n < min_n,
    )


# --------------------------------------------------------------------------- perspectives


class SubmissionScores(msgspec.Struct, frozen=True, kw_only=True):
    """One submission (one rater at one visit): its domain scores."""

    rater: Id
    visit: Id
    domains: dict[str, float]


class DomainScores(msgspec.Struct, frozen=True, kw_only=True):
    """One perspective's scores in one domain: summary over submissions, and who gave them."""

    summary: Summary  # summary.n is the number of submissions
    raters: int
    visits: int


class PerspectiveScores(msgspec.Struct, frozen=True, kw_only=True):
    """One perspective (citizen or professional) for one service and period.

    ``overall`` is the headline (DESIGN.md): the equal-weighted mean of the domain means,
    over the domains this perspective scored, as CQC combines key questions.

    ``overall_summary`` summarises each submission's own overall (the mean of that
    submission's domain scores) across submissions. It is what gives the overall an
    interval, SD and trend: per-submission values carry the correlation between domains
    of one rater, which an interval built from domain intervals would ignore. When every
    submission scored the same domains (a full checklist, the usual case) its mean equals
    ``overall``; with patchy coverage the two can differ, and ``overall`` stays the figure
    that is shown, combined and banded.
    """

    domains: dict[str, DomainScores]
    overall: float | None  # None when no domain was scored
    overall_summary: Summary | None
    submissions: int  # submissions with at least one scored domain
    raters: int
    visits: int


def perspective_scores(
    submissions: Iterable[SubmissionScores], *, min_n: int = DEFAULT_MIN_N
) -> PerspectiveScores:
    """Aggregate one perspective's submissions for a service and period.

    A submission that scored nothing (all N/A) counts nowhere: it observed nothing.
    """
    subs = [s for s in submissions if s.domains]
    by_domain: dict[str, list[SubmissionScores]] = defaultdict(list)
    for s in subs:
        for d in s.domains:
            by_domain[d].append(s)
    domains = {
        d: DomainScores(
            summary=summarise([s.domains[d] for s in ss], min_n=min_n),
            raters=len({s.rater for s in ss}),
            visits=len({s.visit for s in ss}),
        )
        for d, ss in sorted(by_domain.items())
    }
    overall = mean_of([ds.summary.mean for ds in domains.values()])
    per_submission = [mean_of(list(s.domains.values())) for s in subs]
    return PerspectiveScores(
        domains=domains,
        overall=overall,
        overall_summary=(
            summarise([x for x in per_submission if x is not None], min_n=min_n) if subs else None
        ),
        submissions=len(subs),
        raters=len({s.rater for s in subs}),
        visits=len({s.visit for s in subs}),
    )


def mean_of(values: Sequence[float]) -> float | None:
    """Equal-weighted mean (order-independent), or None for nothing."""
    if not values:
        return None
    low, high = min(values), max(values)
    return low if low == high else min(max(math.fsum(values) / len(values), low), high)


# --------------------------------------------------------------------------- combining


class CombinedScore(msgspec.Struct, frozen=True, kw_only=True):
    """The combined figure with both inputs, which are always shown next to it."""

    value: float | None  # None only when neither perspective has data
    citizen: float | None
    professional: float | None
    w: float  # the citizen weight that was asked for
    single_perspective: bool
    perspective: Literal["both", "citizen", "professional"] | None


def combine(citizen: float | None, professional: float | None, w: float = 0.5) -> CombinedScore:
    """``w * citizen + (1 - w) * professional``; with one missing, the other one as is.

    With one perspective missing the result is that perspective's score whatever ``w``
    is (even 0 or 1), marked single-perspective: DESIGN.md says so, and a weight of the
    absent side cannot be applied.
    """
    if not 0.0 <= w <= 1.0:  # also rejects NaN
        raise ValueError("w must be in [0, 1]")
    if citizen is None and professional is None:
        return CombinedScore(
            value=None,
            citizen=None,
            professional=None,
            w=w,
            single_perspective=False,
            perspective=None,
        )
    if citizen is None or professional is None:
        only: Perspective = "citizen" if professional is None else "professional"
        return CombinedScore(
            value=citizen if professional is None else professional,
            citizen=citizen,
            professional=professional,
            w=w,
            single_perspective=True,
            perspective=only,
        )
    value = w * citizen + (1.0 - w) * professional
    # A convex combination: keep float rounding from stepping outside its inputs.
    value = min(max(value, min(citizen, professional)), max(citizen, professional))
    return CombinedScore(
        value=value,
        citizen=citizen,
        professional=professional,
        w=w,
        single_perspective=False,
        perspective="both",
    )


def gap(citizen: float | None, professional: float | None) -> float | None:
    """Citizen minus professional: positive when citizens rate the service higher."""
    if citizen is None or professional is None:
        return None
    return citizen - professional


def intervals_overlap(a: Interval, b: Interval) -> bool:
    """Closed intervals: touching ends count as overlapping (no shown difference)."""
    return a[0] <= b[1] and b[0] <= a[1]


def diverges(
    gap: float | None,
    citizen_interval: Interval | None,
    professional_interval: Interval | None,
    threshold: float = DEFAULT_GAP_THRESHOLD,
) -> bool:
    """ "Perspectives diverge": ``|gap| >= threshold`` and the two intervals do not overlap.

    Without an interval (n == 1) or a gap, divergence cannot be shown, so False.
    """
    if not threshold >= 0:
        raise ValueError("threshold must be non-negative")
    if gap is None or citizen_interval is None or professional_interval is None:
        return False
    return abs(gap) >= threshold and not intervals_overlap(citizen_interval, professional_interval)


# --------------------------------------------------------------------------- bands


def _check_thresholds(thresholds: Sequence[float]) -> None:
    if len(thresholds) != 3 or not 0 < thresholds[0] < thresholds[1] < thresholds[2] <= 100:
        raise ValueError("thresholds must be three increasing percentages in (0, 100]")


def band(pct: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Band:
    """The band of a percentage; ``thresholds`` are the lowest scores of RI, Good, Outstanding.

    The raw value is compared, never a rounded one: ``pct < 39`` Inadequate, ``< 63``
    Requires improvement, ``< 88`` Good, else Outstanding. So DESIGN.md's "39-62" means
    [39, 63): 62.5 and 62.99 are Requires improvement, 63.0 is Good. (Rounding first would
    make the result depend on a display choice; show scores floored or to one decimal
    next to the band so 62.6 is never shown as "63%, Requires improvement".)
    """
    _check_thresholds(thresholds)
    if not (math.isfinite(pct) and 0.0 <= pct <= 100.0):
        raise ValueError(f"{pct} is not a percentage")
    for i, cut in enumerate(thresholds):
        if pct < cut:
            return BANDS[i]
    return BANDS[3]


BandRule = Literal[
    "two_inadequate_domains",  # rule 1
    "an_inadequate_domain",  # rule 2
    "two_requires_improvement_domains",  # rule 2
    "outstanding_needs_two_outstanding_domains",  # rule 3
    "outstanding_needs_no_domain_below_good",  # rule 3
]


class BandDecision(msgspec.Struct, frozen=True, kw_only=True):
    """The overall band and why: the percentage's own band, and the rule that capped it.

    ``rule`` is None when the percentage's band stands. Pages word the rule from these
    fields; they never re-derive it.
    """

    band: Band
    score_band: Band  # the band of the combined percentage alone
    rule: BandRule | None  # the rule that lowered score_band to band
    inadequate_domains: int
    requires_improvement_domains: int
    outstanding_domains: int

    @property
    def capped(self) -> bool:
        return self.rule is not None


def overall_band_decision(
    domain_bands: Iterable[Band | str],
    combined_overall_pct: float,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> BandDecision:
    """The overall band: the band of the overall percentage, capped by CQC-style rules.

    1. Two or more Inadequate domains: Inadequate (whatever the percentage).
    2. Any Inadequate domain, or two or more Requires improvement: at most RI.
    3. Outstanding needs at least two Outstanding domains and no domain below Good;
       otherwise at most Good.
    Rules only lower the percentage's band, never raise it: two Outstanding domains do
    not make an overall of 80% Outstanding. No domain bands (nothing scored per domain)
    means Outstanding is out of reach by rule 3. Coordinator overrides live elsewhere
    (overrides.py). The decision names the rule that lowered the band, if any, so a page
    can say "67.6 would be Good; capped because 3 domains require improvement".
    """
    counts = Counter[str]()
    for b in domain_bands:
        if b not in BANDS:
            raise ValueError(f"unknown band {b!r}")
        counts[b] += 1
    inadequate, ri, outstanding = (
        counts["inadequate"],
        counts["requires_improvement"],
        counts["outstanding"],
    )
    own = band(combined_overall_pct, thresholds)
    cap = 3
    rule: BandRule | None = None
    rule_at_cap: BandRule | None
    if inadequate >= 2:
        cap, rule_at_cap = 0, "two_inadequate_domains"
    elif inadequate >= 1:
        cap, rule_at_cap = 1, "an_inadequate_domain"
    elif ri >= 2:
        cap, rule_at_cap = 1, "two_requires_improvement_domains"
    elif ri > 0:
        cap, rule_at_cap = 2, "outstanding_needs_no_domain_below_good"
    elif outstanding < 2:
        cap, rule_at_cap = 2, "outstanding_needs_two_outstanding_domains"
    else:
        rule_at_cap = None
    if BANDS.index(own) > cap:
        rule = rule_at_cap
    return BandDecision(
        band=BANDS[min(BANDS.index(own), cap)],
        score_band=own,
        rule=rule,
        inadequate_domains=inadequate,
        requires_improvement_domains=ri,
        outstanding_domains=outstanding,
    )


def overall_band(
    domain_bands: Iterable[Band | str],
    combined_overall_pct: float,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> Band:
    """The overall band alone (see ``overall_band_decision`` for the rules and the why)."""
    return overall_band_decision(domain_bands, combined_overall_pct, thresholds).band


def trend(current: Summary | None, previous: Summary | None) -> Trend | None:
    """Against the previous period: "up"/"down" only when the intervals are apart.

    None when either period has no data; "steady" when the intervals overlap or either
    has none (n == 1): a change that cannot be told from noise is not reported as one.
    """
    if current is None or previous is None:
        return None
    a, b = current.interval, previous.interval
    if a is None or b is None or intervals_overlap(a, b):
        return "steady"
    return "up" if current.mean > previous.mean else "down"


# --------------------------------------------------------------------------- scorecard


class DomainComparison(msgspec.Struct, frozen=True, kw_only=True):
    citizen: DomainScores | None
    professional: DomainScores | None
    combined: CombinedScore
    gap: float | None
    diverges: bool
    band: Band | None  # of the combined percentage; None without data


class ScoreComparison(msgspec.Struct, frozen=True, kw_only=True):
    domains: dict[str, DomainComparison]
    overall: CombinedScore  # of the two perspectives' headline overalls
    gap: float | None
    diverges: bool  # judged on the overall_summary intervals
    band: Band | None  # overall_band of the domain bands and the combined overall
    decision: BandDecision | None = None  # how band was reached; None without data


def scorecard(
    citizen: PerspectiveScores,
    professional: PerspectiveScores,
    *,
    w: float = 0.5,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    gap_threshold: float = DEFAULT_GAP_THRESHOLD,
) -> ScoreComparison:
    """Both perspectives side by side, combined, compared and banded (one period)."""
    cards: dict[str, DomainComparison] = {}
    for d in sorted(citizen.domains.keys() | professional.domains.keys()):
        c, p = citizen.domains.get(d), professional.domains.get(d)
        cs, ps = (c.summary if c else None), (p.summary if p else None)
        comb = combine(cs.mean if cs else None, ps.mean if ps else None, w)
        g = gap(comb.citizen, comb.professional)
        cards[d] = DomainComparison(
            citizen=c,
            professional=p,
            combined=comb,
            gap=g,
            diverges=diverges(
                g, cs.interval if cs else None, ps.interval if ps else None, gap_threshold
            ),
            band=band(comb.value, thresholds) if comb.value is not None else None,
        )
    overall = combine(citizen.overall, professional.overall, w)
    g = gap(citizen.overall, professional.overall)
    ci, pi = citizen.overall_summary, professional.overall_summary
    decision = (
        overall_band_decision([c.band for c in cards.values() if c.band], overall.value, thresholds)
        if overall.value is not None
        else None
    )
    return ScoreComparison(
        domains=cards,
        overall=overall,
        gap=g,
        diverges=diverges(
            g, ci.interval if ci else None, pi.interval if pi else None, gap_threshold
        ),
        band=decision.band if decision else None,
        decision=decision,
    )


# --------------------------------------------------------------------------- agreement

Value = float | str


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def krippendorff_alpha(
    data: Sequence[Sequence[Value | None]], level: Level = "ordinal"
) -> float | None:
    """Krippendorff's alpha of a reliability matrix: rows are coders, columns units.

    Missing values are None (or NaN). Built on the coincidence matrix: a unit with m >= 2
    values adds 1 / (m - 1) for each ordered pair of values from different coders; units
    with fewer than 2 values are dropped. alpha = 1 - (n - 1) * sum(o_ck d_ck) /
    sum(n_c n_k d_ck), with d the squared difference of the level: nominal 0/1, interval
    (c - k)^2, ordinal (sum of n_g for g from c to k - (n_c + n_k) / 2)^2 over the ordered
    observed values (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").
    Strings are allowed for nominal data only. None when undefined: no pairable values,
    or no expected disagreement (a single value throughout).
    """
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"unknown level {level!r}")
    if not data:
        return None
    width = len(data[0])
    if any(len(row) != width for row in data):
        raise ValueError("every coder needs a value or None for every unit")
    o: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for unit in zip(*data, strict=True):
        values = [v for v in unit if not _missing(v)]
        m = len(values)
        if m < 2:
            continue
        if level != "nominal" and any(isinstance(v, str) for v in values):
            raise ValueError(f"{level} alpha needs numbers, not strings")
        counts = Counter(values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_c - 1) if c == k else n_c * n_k
                if pairs:
                    o[c, k] += pairs / (m - 1)
    if not o:
        return None
    n_v: dict[Any, float] = defaultdict(float)  # keys are one level's values: comparable
    for (c, _), x in o.items():
        n_v[c] += x
    n = math.fsum(n_v.values())
    values_ = sorted(n_v) if level != "nominal" else list(n_v)
    delta = _difference(values_, n_v, level)
    observed = math.fsum(x * delta[ck] for ck, x in o.items())
    expected = math.fsum(n_v[c] * n_v[k] * delta[c, k] for c in values_ for k in values_)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def _difference(
    values: Sequence[Hashable], n_v: Mapping[Hashable, float], level: Level
) -> dict[tuple[Hashable, Hashable], float]:
    """Squared difference of every pair of observed values at the given level."""
    delta: dict[tuple[Hashable, Hashable], float] = {}
    if level == "ordinal":
        # Ranks, not numbers: the distance is the mass of values between the two.
        cum = [0.0]
        for v in values:
            cum.append(cum[-1] + n_v[v])
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                lo, hi = min(i, j), max(i, j)
                delta[c, k] = (cum[hi + 1] - cum[lo] - (n_v[c] + n_v[k]) / 2) ** 2
    for c in values:
        for k in values:
            if level == "nominal":
                delta[c, k] = 0.0 if c == k else 1.0
            elif level == "interval":
                delta[c, k] = (float(c) - float(k)) ** 2  # type: ignore[arg-type]
    return delta


class RatingLike(Scored, Protocol):
    """One rater's answer to one question at one visit, with its perspective."""

    @property
    def visit(self) -> Id: ...
    @property
    def question(self) -> str: ...
    @property
    def perspective(self) -> str: ...
    @property
    def rater(self) -> Id: ...


class QuestionRating(Points, frozen=True, kw_only=True):
    visit: Id
    question: str
    perspective: Perspective
    rater: Id


def perspective_agreement(
    ratings: Iterable[RatingLike], *, mode: Literal["median", "raters"] = "median"
) -> float | None:
    """Ordinal alpha between citizens and professionals over questions both rated at a visit.

    Units are (visit, question) pairs that at least one citizen and one professional
    scored (N/A, unanswered and unscored answers are left out). A value is the answer's
    share of its maximum (points / max): questions of different scales (1-4 ratings,
    pass/fail) are pooled on the same percent-of-max footing the scores use, rather
    than calling "2" the same category on both.

    ``mode="median"`` (default) matches DESIGN.md's two coders: the citizen perspective
    and the professional one, each valued at the median of its raters (each rater's own
    values first reduced to their median). An even count's median can fall between two
    categories (0.5 and 0.75 give 0.625); ordinal alpha uses only ranks, so that is a
    category ordered between them, not a new scale point.

    ``mode="raters"`` makes every rater a coder (missing where absent). That is the
    reliability of all raters together: citizen-citizen and professional-professional
    pairs count as much as cross-perspective ones, so it is not agreement *between* the
    perspectives; offered for comparison.
    """
    units = _rater_units(ratings)
    if mode == "median":
        return units_agreement([_perspective_medians(u) for u in units])
    if mode == "raters":
        coders = sorted({who for u in units for who in u}, key=lambda w: (w[0], str(w[1])))
        data = [[u.get(c) for u in units] for c in coders]
        return krippendorff_alpha(data, "ordinal") if units else None
    raise ValueError(f"unknown mode {mode!r}")


def agreement_units(ratings: Iterable[RatingLike]) -> list[tuple[float, float]]:
    """(citizen median, professional median) of every unit both perspectives scored.

    What the scorecard's AGREEMENT_SQL computes in PostgreSQL; this is its reference.
    """
    return [_perspective_medians(u) for u in _rater_units(ratings)]


def units_agreement(units: Sequence[tuple[float, float]]) -> float | None:
    """Ordinal alpha between the two perspectives from their per-unit medians."""
    if not units:
        return None
    return krippendorff_alpha([[c for c, _ in units], [p for _, p in units]], "ordinal")


def _perspective_medians(unit: Mapping[tuple[str, Id], float]) -> tuple[float, float]:
    def side(name: str) -> float:
        return statistics.median([v for (p, _), v in unit.items() if p == name])

    return side("citizen"), side("professional")


def _rater_units(ratings: Iterable[RatingLike]) -> list[dict[tuple[str, Id], float]]:
    """Per shared unit, each (perspective, rater)'s median share of the maximum."""
    by_unit: dict[tuple[Id, str], dict[tuple[str, Id], list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in ratings:
        if r.points is None or r.max_points is None or not r.max_points > 0:
            continue
        if r.perspective not in ("citizen", "professional"):
            raise ValueError(f"unknown perspective {r.perspective!r}")
        by_unit[r.visit, r.question][r.perspective, r.rater].append(r.points / r.max_points)
    units: list[dict[tuple[str, Id], float]] = []
    for key in sorted(by_unit, key=lambda u: (str(u[0]), u[1])):
        raters = {who: statistics.median(vs) for who, vs in by_unit[key].items()}
        if {p for p, _ in raters} == {"citizen", "professional"}:
            units.append(raters)
    return units
