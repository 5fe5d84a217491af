"""The scoring maths (DESIGN.md "Scoring"): hand-computed cases, published values, properties.

Pure functions only: no database or object store is started for these tests.
"""

from __future__ import annotations

import math
import random
import warnings

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspections.scorecards.maths import (
    AnswerPoints,
    PerspectiveScores,
    QuestionRating,
    ScoreComparison,
    SubmissionScores,
    Summary,
    band,
    combine,
    diverges,
    domain_sums,
    gap,
    krippendorff_alpha,
    overall_band,
    overall_band_decision,
    perspective_agreement,
    perspective_scores,
    score_from_sums,
    scorecard,
    submission_domain_scores,
    summarise,
    t_cdf,
    t_quantile,
    trend,
)

N = None


def a(domain: str, points: float | None, max_points: float | None, weight: float = 1.0):
    return AnswerPoints(domain=domain, points=points, max_points=max_points, weight=weight)


# --------------------------------------------------------------------------- domain scores


def test_na_unanswered_and_unscored_count_neither_points_nor_maximum() -> None:
    answers = [
        a("dignity", 3, 4),  # rating 3 of 4
        a("dignity", 2, 2),  # yes/no, good answer
        a("dignity", None, 4, weight=5),  # N/A rating: must not drag the score down
        a("dignity", None, None),  # free text: unscored
        a("safe", 0, 2),  # a fail is a real 0
        a("cleanliness", None, 2),  # only N/A here
    ]
    # dignity: (3 + 2) / (4 + 2); safe: 0 / 2; cleanliness absent, not 0.
    assert submission_domain_scores(answers) == {"dignity": 500 / 6, "safe": 0.0}


def test_weights_scale_points_and_maximum() -> None:
    answers = [a("caring", 1, 4, weight=3), a("caring", 4, 4, weight=1)]
    # (3*1 + 1*4) / (3*4 + 1*4) = 7/16; unweighted it would be 5/8.
    assert submission_domain_scores(answers) == {"caring": 43.75}
    assert domain_sums(answers) == {"caring": (7.0, 16.0)}
    assert score_from_sums(7.0, 16.0) == 43.75


def test_pass_fail_and_yes_no_earn_out_of_two() -> None:
    answers = [a("d", 2, 2), a("d", 1, 2), a("d", 0, 2), a("d", 2, 2)]  # pass, qp, fail, yes
    assert submission_domain_scores(answers) == {"d": 62.5}


def test_no_scored_answers_means_no_domains() -> None:
    assert submission_domain_scores([]) == {}
    assert submission_domain_scores([a("d", None, 4), a("d", 3, 4, weight=0)]) == {}


@pytest.mark.parametrize(
    "bad",
    [a("d", 5, 4), a("d", -1, 4), a("d", 1, None), a("d", 1, 0), a("d", 1, 4, weight=-1)],
)
def test_impossible_answers_are_refused(bad: AnswerPoints) -> None:
    with pytest.raises(ValueError):
        submission_domain_scores([bad])


def test_scores_from_stored_sums_are_checked() -> None:
    assert score_from_sums(3, 4) == 75.0
    for wp, wm in [(1, 0), (5, 4), (-1, 4)]:
        with pytest.raises(ValueError):
            score_from_sums(wp, wm)


# --------------------------------------------------------------------------- Student t

# t_{0.975, df} from the standard table, to three decimals.
T_TABLE = [
    (1, 12.706),
    (2, 4.303),
    (3, 3.182),
    (4, 2.776),
    (5, 2.571),
    (10, 2.228),
    (20, 2.086),
    (29, 2.045),
    (30, 2.042),
    (60, 2.000),
    (100, 1.984),
    (120, 1.980),
    (1000, 1.962),
    (10**6, 1.960),
    (math.inf, 1.960),
]


@pytest.mark.parametrize(("df", "expected"), T_TABLE)
def test_t_quantile_matches_the_table(df: float, expected: float) -> None:
    assert round(t_quantile(0.975, df), 3) == expected


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [  # more digits (R's qt), across the methods used: closed forms, Newton, series
        (0.975, 1, 12.7062047362),
        (0.975, 2, 4.3026527297),
        (0.975, 10, 2.2281388520),
        (0.95, 10, 1.8124611228),
        (0.995, 5, 4.0321429836),
        (0.9995, 3, 12.9239786367),
        (0.975, 30, 2.0422724563),
        (0.975, 100, 1.9839715185),
        (0.025, 10, -2.2281388520),
        (0.5, 7, 0.0),
    ],
)
def test_t_quantile_precise_values(p: float, df: float, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(
    p=st.floats(1e-6, 1 - 1e-6),
    df=st.one_of(st.integers(1, 3000).map(float), st.floats(0.3, 3000)),
)
def test_t_quantile_inverts_the_cdf(p: float, df: float) -> None:
    t = t_quantile(p, df)
    assert t_cdf(t, df) == pytest.approx(p, rel=1e-8, abs=1e-12)
    assert t_quantile(1 - p, df) == pytest.approx(-t, rel=1e-9, abs=1e-12)


def test_t_quantile_refuses_nonsense() -> None:
    for p, df in [(0, 3), (1, 3), (0.5, 0), (0.9, -1)]:
        with pytest.raises(ValueError):
            t_quantile(p, df)


# --------------------------------------------------------------------------- summaries


def test_a_single_submission_has_no_interval_and_is_low_confidence() -> None:
    s = summarise([72.5])
    assert s == Summary(n=1, mean=72.5, sd=None, lower=None, upper=None, low_confidence=True)
    assert s.interval is None


def test_two_submissions_use_t_with_one_df_and_clamp_to_100() -> None:
    s = summarise([60.0, 70.0])
    # sd = 5*sqrt(2); half-width = 12.7062 * sd / sqrt(2) = 63.531; upper 128.5 -> 100.
    assert s.n == 2 and s.mean == 65.0 and s.low_confidence
    assert s.sd == pytest.approx(7.0710678)
    assert s.lower == pytest.approx(1.469, abs=1e-3)
    assert s.upper == 100.0


def test_clamps_at_zero_too() -> None:
    s = summarise([0.0, 10.0])
    assert s.lower == 0.0 and s.upper == pytest.approx(68.531, abs=1e-3)


def test_three_submissions_are_no_longer_low_confidence() -> None:
    s = summarise([70.0, 80.0, 90.0])
    # sd 10, se 10/sqrt(3) = 5.7735, t(2) = 4.3027 -> half 24.841.
    assert not s.low_confidence
    assert (s.mean, s.sd) == (80.0, 10.0)
    assert s.lower == pytest.approx(55.159, abs=1e-3) and s.upper == 100.0
    assert summarise([70.0, 80.0, 90.0], min_n=4).low_confidence


def test_thirty_submissions() -> None:
    s = summarise([60.0] * 15 + [80.0] * 15)
    # mean 70; sd = sqrt(30 * 100 / 29) = 10.1710; se = 1.8570; t(29) = 2.0452 -> 3.7979
    assert s.mean == 70.0 and s.sd == pytest.approx(10.17095, abs=1e-5)
    assert s.lower == pytest.approx(66.2021, abs=1e-4)
    assert s.upper == pytest.approx(73.7979, abs=1e-4)


def test_identical_scores_have_a_zero_width_interval() -> None:
    assert summarise([0.1] * 7).interval == (0.1, 0.1)


def test_summarise_refuses_nothing_and_non_percentages() -> None:
    for bad in ([], [101.0], [math.nan]):
        with pytest.raises(ValueError):
            summarise(bad)


# --------------------------------------------------------------------------- perspectives


def sub(rater: str, visit: str, **domains: float) -> SubmissionScores:
    return SubmissionScores(rater=rater, visit=visit, domains=domains)


def test_overall_is_the_mean_of_domain_means() -> None:
    ps = perspective_scores(
        [
            sub("r1", "v1", safe=90.0, caring=30.0),
            sub("r2", "v1", safe=90.0),
            sub("r1", "v2", safe=90.0),
        ]
    )
    assert ps.domains["safe"].summary.mean == 90.0
    assert (ps.domains["safe"].raters, ps.domains["safe"].visits) == (2, 2)
    assert ps.domains["caring"].summary.n == 1
    # (90 + 30) / 2, not the pooled (90 * 3 + 30) / 4 = 75.
    assert ps.overall == 60.0
    # Per-submission overalls 60, 90, 90: a different figure when coverage is patchy.
    assert ps.overall_summary is not None and ps.overall_summary.mean == 80.0
    assert (ps.submissions, ps.raters, ps.visits) == (3, 2, 2)


def test_with_full_coverage_the_overall_interval_is_around_the_headline() -> None:
    ps = perspective_scores(
        [sub("a", "v", safe=50.0, caring=70.0), sub("b", "v", safe=70.0, caring=90.0)]
    )
    assert ps.overall == 70.0
    assert ps.overall_summary is not None
    assert ps.overall_summary.mean == 70.0
    assert ps.overall_summary.n == 2


def test_no_data_is_no_overall() -> None:
    empty = perspective_scores([sub("a", "v")])  # an all-N/A submission observed nothing
    assert empty == PerspectiveScores(
        domains={}, overall=None, overall_summary=None, submissions=0, raters=0, visits=0
    )


# --------------------------------------------------------------------------- combining


def test_combine_equal_and_weighted() -> None:
    c = combine(80.0, 60.0)
    assert (c.value, c.citizen, c.professional, c.single_perspective) == (70.0, 80.0, 60.0, False)
    assert c.perspective == "both"
    assert combine(80.0, 60.0, w=0.25).value == 65.0
    assert combine(80.0, 60.0, w=1.0).value == 80.0
    assert combine(80.0, 60.0, w=0.0).value == 60.0


def test_a_missing_perspective_gives_the_other_marked_single() -> None:
    c = combine(None, 60.0, w=0.9)
    assert (c.value, c.single_perspective, c.perspective) == (60.0, True, "professional")
    c = combine(80.0, None, w=0.0)  # weight 0 cannot erase the only data there is
    assert (c.value, c.single_perspective, c.perspective) == (80.0, True, "citizen")
    c = combine(None, None)
    assert (c.value, c.single_perspective, c.perspective) == (None, False, None)


@pytest.mark.parametrize("w", [-0.1, 1.1, math.nan])
def test_combine_weight_must_be_a_share(w: float) -> None:
    with pytest.raises(ValueError):
        combine(50.0, 50.0, w)


@given(c=st.floats(0, 100), p=st.floats(0, 100), w=st.floats(0, 1))
def test_combined_lies_between_its_inputs(c: float, p: float, w: float) -> None:
    v = combine(c, p, w).value
    assert v is not None and min(c, p) <= v <= max(c, p)


def test_gap_is_citizen_minus_professional() -> None:
    assert gap(80.0, 60.0) == 20.0
    assert gap(60.0, 80.0) == -20.0
    assert gap(None, 60.0) is None and gap(60.0, None) is None


def test_diverges_needs_a_large_gap_and_separate_intervals() -> None:
    assert diverges(20.0, (75.0, 85.0), (55.0, 65.0))
    assert diverges(-20.0, (55.0, 65.0), (75.0, 85.0))
    assert diverges(10.0, (65.5, 75.0), (55.0, 65.0))  # exactly the threshold counts
    assert not diverges(20.0, (70.0, 85.0), (55.0, 71.0))  # overlap
    assert not diverges(20.0, (65.0, 85.0), (55.0, 65.0))  # touching ends overlap
    assert not diverges(5.0, (51.0, 52.0), (46.0, 47.0))  # apart, but a small gap
    assert diverges(5.0, (51.0, 52.0), (46.0, 47.0), threshold=5.0)
    assert not diverges(20.0, None, (55.0, 65.0))  # n == 1: cannot be shown
    assert not diverges(20.0, (75.0, 85.0), None)
    assert not diverges(None, (75.0, 85.0), (55.0, 65.0))


# --------------------------------------------------------------------------- bands


@pytest.mark.parametrize(
    ("pct", "expected"),
    [
        (0.0, "inadequate"),
        (38.99, "inadequate"),
        (39.0, "requires_improvement"),
        (62.0, "requires_improvement"),
        (62.5, "requires_improvement"),  # raw value: not rounded up to 63
        (62.999, "requires_improvement"),
        (63.0, "good"),
        (87.0, "good"),
        (87.99, "good"),
        (88.0, "outstanding"),
        (100.0, "outstanding"),
    ],
)
def test_cqc_bands(pct: float, expected: str) -> None:
    assert band(pct) == expected


def test_organisation_thresholds() -> None:
    assert band(49.0, (25, 50, 75)) == "requires_improvement"
    assert band(50.0, (25, 50, 75)) == "good"
    for bad in [(63, 39, 88), (39, 63), (0, 63, 88), (39, 63, 101)]:
        with pytest.raises(ValueError):
            band(50.0, bad)
    for pct in (-1.0, 100.5, math.nan):
        with pytest.raises(ValueError):
            band(pct)


GD, OUT, RI, INAD = "good", "outstanding", "requires_improvement", "inadequate"


@pytest.mark.parametrize(
    ("domains", "pct", "expected"),
    [
        # Rule 1: two or more Inadequate domains -> Inadequate, whatever the percentage.
        ([INAD, INAD, OUT, OUT, OUT], 90.0, INAD),
        ([INAD, INAD, GD], 70.0, INAD),
        # Rule 2: any Inadequate -> at most RI (lower when the percentage says so).
        ([INAD, OUT, OUT, OUT, OUT], 95.0, RI),
        ([INAD, GD, GD], 30.0, INAD),
        # Rule 2: two or more RI -> at most RI.
        ([RI, RI, OUT, OUT, OUT], 92.0, RI),
        ([RI, RI, GD], 50.0, RI),
        # One RI alone does not cap at RI ...
        ([RI, GD, GD, GD], 70.0, GD),
        # ... but blocks Outstanding (rule 3: none below Good).
        ([RI, OUT, OUT, OUT], 90.0, GD),
        # Rule 3: Outstanding needs at least two Outstanding domains.
        ([OUT, GD, GD, GD], 90.0, GD),
        ([OUT, OUT, GD, GD], 90.0, OUT),
        # No uplift: two Outstanding domains do not lift an overall of 80.
        ([OUT, OUT, GD], 80.0, GD),
        # Otherwise the percentage's band.
        ([GD, GD, GD], 70.0, GD),
        ([GD, GD, GD], 50.0, RI),
        ([GD, GD, GD], 20.0, INAD),
        # No domain bands: Outstanding is out of reach.
        ([], 95.0, GD),
        ([], 50.0, RI),
    ],
)
def test_overall_band_rules(domains: list[str], pct: float, expected: str) -> None:
    assert overall_band(domains, pct) == expected


@pytest.mark.parametrize(
    ("domains", "pct", "rule"),
    [
        ([INAD, INAD, OUT, OUT, OUT], 90.0, "two_inadequate_domains"),
        ([INAD, GD, GD], 30.0, None),  # the percentage alone says Inadequate: nothing capped
        ([INAD, OUT, OUT, OUT, OUT], 95.0, "an_inadequate_domain"),
        ([RI, RI, RI, OUT, OUT], 67.6, "two_requires_improvement_domains"),
        ([RI, OUT, OUT, OUT], 90.0, "outstanding_needs_no_domain_below_good"),
        ([OUT, GD, GD, GD], 90.0, "outstanding_needs_two_outstanding_domains"),
        ([OUT, OUT, GD], 80.0, None),
        ([GD, GD, GD], 50.0, None),
    ],
)
def test_overall_band_decision_names_the_rule_that_capped(
    domains: list[str], pct: float, rule: str | None
) -> None:
    decision = overall_band_decision(domains, pct)
    assert decision.rule == rule and decision.band == overall_band(domains, pct)
    assert decision.score_band == band(pct) and decision.capped == (rule is not None)


def test_the_capping_rule_in_words() -> None:
    """The committee page's words come from the decision, not from a second derivation."""
    from inspections.scorecards.compute import band_reason

    reason = band_reason(overall_band_decision([RI, RI, RI, GD, OUT], 67.6), 67.6)
    assert reason is not None and reason.requires_improvement_domains == 3
    assert reason.words == (
        "67.6 would be Good; capped at Requires improvement because 3 domains require improvement."
    )
    one = band_reason(overall_band_decision([RI, OUT, OUT], 91.0), 91.0)
    assert one is not None and one.words == (
        "91 would be Outstanding; capped at Good because 1 domain requires improvement, "
        "and Outstanding needs every domain Good or better."
    )
    plain = band_reason(overall_band_decision([GD, GD], 70.0), 70.0)
    assert plain is not None and plain.rule is None
    assert plain.words == "Combined score 70: Good."


def test_overall_band_refuses_unknown_bands() -> None:
    with pytest.raises(ValueError):
        overall_band(["Good"], 70.0)


# --------------------------------------------------------------------------- trend


def summary(mean: float, lower: float | None, upper: float | None) -> Summary:
    n = 1 if lower is None else 5
    return Summary(n=n, mean=mean, sd=None, lower=lower, upper=upper, low_confidence=False)


def test_trend() -> None:
    assert trend(None, summary(50, 40, 60)) is None
    assert trend(summary(50, 40, 60), None) is None
    assert trend(summary(70, 65, 75), summary(50, 45, 55)) == "up"
    assert trend(summary(50, 45, 55), summary(70, 65, 75)) == "down"
    assert trend(summary(70, 60, 80), summary(50, 45, 61)) == "steady"  # overlap
    assert trend(summary(70, 60, 80), summary(50, 45, 60)) == "steady"  # touching
    assert trend(summary(90, None, None), summary(50, 45, 55)) == "steady"  # n == 1
    assert trend(summary(90, 85, 95), summary(50, None, None)) == "steady"


# --------------------------------------------------------------------------- scorecard


def test_scorecard_puts_it_together() -> None:
    citizen = perspective_scores(
        [
            sub("c1", "v1", safe=90.0, caring=92.0),
            sub("c2", "v1", safe=92.0, caring=90.0),
            sub("c3", "v2", safe=94.0, caring=94.0),
        ]
    )
    professional = perspective_scores(
        [
            sub("p1", "v1", safe=70.0, caring=88.0, dignity=40.0),
            sub("p2", "v2", safe=72.0, caring=90.0),
        ]
    )
    card = scorecard(citizen, professional)
    assert isinstance(card, ScoreComparison)
    safe = card.domains["safe"]
    assert (safe.combined.value, safe.gap, safe.band) == (81.5, 21.0, "good")
    assert safe.diverges  # [87.0, 97.0] vs [58.3, 83.7]: apart, gap 21
    caring = card.domains["caring"]
    # citizen (92 + 90 + 94) / 3 = 92, professional (88 + 90) / 2 = 89.
    assert (caring.combined.value, caring.band, caring.diverges) == (90.5, "outstanding", False)
    dignity = card.domains["dignity"]  # professionals only
    assert dignity.combined.single_perspective and dignity.combined.value == 40.0
    assert (dignity.band, dignity.gap, dignity.diverges) == ("requires_improvement", None, False)
    # Overall: citizen (92 + 92) / 2 = 92; professional (71 + 89 + 40) / 3 = 66.67.
    assert card.overall.citizen == 92.0
    assert card.overall.professional == pytest.approx(200 / 3)
    assert card.overall.value == pytest.approx((92 + 200 / 3) / 2)
    assert card.band == "good"  # 79.3%: Good, and one RI domain alone does not cap it
    assert card.gap == pytest.approx(92 - 200 / 3)


# --------------------------------------------------------------------------- Krippendorff

# Krippendorff, K. (2011) "Computing Krippendorff's Alpha-Reliability", Annenberg School
# for Communication, University of Pennsylvania, section C: 4 observers x 12 units with
# missing values. Published: nominal 0.743, ordinal 0.815, interval 0.849.
K2011_C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
# Same paper, section A: binary data, two observers, no missing data: alpha 0.095.
K2011_A = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
# Wikipedia, "Krippendorff's alpha", computational example (3 coders x 15 units):
# nominal 0.691, interval 0.811.
WIKI = [
    [N, N, N, N, N, 3, 4, 1, 2, 1, 1, 3, 3, N, 3],
    [1, N, 2, 1, 3, 3, 4, 3, N, N, N, N, N, N, N],
    [N, N, 2, 1, 3, 4, 4, N, 2, 1, 1, 3, 3, N, 4],
]


@pytest.mark.parametrize(
    ("data", "level", "expected"),
    [
        (K2011_C, "nominal", 0.743),
        (K2011_C, "ordinal", 0.815),
        (K2011_C, "interval", 0.849),
        (K2011_A, "nominal", 0.095),
        (WIKI, "nominal", 0.691),
        (WIKI, "interval", 0.811),
    ],
)
def test_alpha_published_values(data: list[list[int | None]], level, expected: float) -> None:
    alpha = krippendorff_alpha(data, level)
    assert alpha is not None and round(alpha, 3) == expected


def test_alpha_nominal_on_labels_and_nan_as_missing() -> None:
    labels = {1: "very low", 2: "low", 3: "mid", 4: "high", 5: "very high"}
    as_text = [[labels[v] if v is not None else None for v in row] for row in K2011_C]
    assert round(krippendorff_alpha(as_text, "nominal") or 0, 3) == 0.743
    with_nan = [[math.nan if v is None else float(v) for v in row] for row in K2011_C]
    assert krippendorff_alpha(with_nan, "ordinal") == krippendorff_alpha(K2011_C, "ordinal")
    with pytest.raises(ValueError):
        krippendorff_alpha(as_text, "ordinal")


def test_alpha_undefined_cases() -> None:
    assert krippendorff_alpha([]) is None
    assert krippendorff_alpha([[1, 2, 3]]) is None  # one coder: nothing pairable
    assert krippendorff_alpha([[1, N], [N, 2]]) is None  # no unit with two values
    assert krippendorff_alpha([[3, 3, N], [3, 3, 1]]) is None  # one pairable value: De = 0
    assert krippendorff_alpha([[1, 2], [1, 2]]) == 1.0
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2], [1]])


def test_ordinal_alpha_depends_only_on_order() -> None:
    squashed = {1: 0.1, 2: 0.2, 3: 10.0, 4: 11.0, 5: 1000.0}
    moved = [[squashed[v] if v is not None else None for v in row] for row in K2011_C]
    assert krippendorff_alpha(moved, "ordinal") == pytest.approx(
        krippendorff_alpha(K2011_C, "ordinal"), abs=1e-12
    )


matrices = st.integers(1, 5).flatmap(
    lambda coders: st.integers(1, 9).flatmap(
        lambda units: st.lists(
            st.lists(
                st.one_of(st.none(), st.sampled_from([0, 1, 2, 3, 5, 8])),
                min_size=units,
                max_size=units,
            ),
            min_size=coders,
            max_size=coders,
        )
    )
)


def package_alpha(data: list[list[int | None]], level: str) -> float | None:
    """The independent `krippendorff` package, None where it cannot give a number."""
    arr = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            value = float(krippendorff.alpha(reliability_data=arr, level_of_measurement=level))
    except ValueError:  # fewer than two values, or no unit with two coders
        return None
    return value if math.isfinite(value) else None


@settings(max_examples=400, deadline=None)
@given(data=matrices, level=st.sampled_from(["nominal", "ordinal", "interval"]))
def test_alpha_matches_the_krippendorff_package(data, level) -> None:
    # The package's default ordinal value domain is the observed values: so is ours.
    ours, theirs = krippendorff_alpha(data, level), package_alpha(data, level)
    if theirs is None:
        assert ours is None
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


def r(visit: str, question: str, perspective: str, rater: str, points, max_points=4.0):
    return QuestionRating(
        visit=visit,
        question=question,
        perspective=perspective,  # type: ignore[arg-type]
        rater=rater,
        points=points,
        max_points=max_points,
    )


AGREEMENT = [
    r("v1", "q1", "citizen", "c1", 4),
    r("v1", "q1", "professional", "p1", 4),
    r("v1", "q2", "citizen", "c1", 3),
    r("v1", "q2", "citizen", "c2", 4),  # citizens' median (0.75 + 1.0) / 2 = 0.875
    r("v1", "q2", "professional", "p1", 3),
    r("v1", "q3", "citizen", "c1", 1),
    r("v1", "q3", "professional", "p1", 2),
    r("v1", "q4", "citizen", "c1", 2),  # citizens only: not a shared unit
    r("v1", "q5", "citizen", "c2", 2),
    r("v1", "q5", "professional", "p1", None),  # N/A: not a shared unit
    r("v2", "q1", "citizen", "c1", None, None),  # unscored
]


def test_perspective_agreement_by_hand() -> None:
    # Units q1, q2, q3: citizen (1.0, 0.875, 0.25), professional (1.0, 0.75, 0.5).
    # n = 6, n_v: .25 1, .5 1, .75 1, .875 1, 1.0 2. Observed sum o*d = 2*1 + 2*1 = 4;
    # expected sum n_c n_k d = 2 * 102 = 204. alpha = 1 - 5 * 4 / 204 = 46 / 51.
    assert perspective_agreement(AGREEMENT) == pytest.approx(46 / 51)
    assert krippendorff_alpha([[1.0, 0.875, 0.25], [1.0, 0.75, 0.5]]) == pytest.approx(46 / 51)


def test_perspective_agreement_with_raters_as_coders() -> None:
    expected = krippendorff_alpha(
        [[1.0, 0.75, 0.25], [N, 1.0, N], [1.0, 0.75, 0.5]], "ordinal"
    )  # c1, c2, p1
    assert perspective_agreement(AGREEMENT, mode="raters") == expected


def test_perspective_agreement_needs_shared_units() -> None:
    assert perspective_agreement([]) is None
    assert perspective_agreement([r("v", "q", "citizen", "c", 3)]) is None
    same = [r("v", "q", "citizen", "c", 3), r("v", "q", "professional", "p", 3)]
    assert perspective_agreement(same) is None  # one value throughout: undefined
    mixed = [
        r("v", "q", "citizen", "c", 2, 2.0),  # pass
        r("v", "q", "professional", "p", 4),  # 4 of 4: both the maximum
        r("v", "y", "citizen", "c", 0, 2.0),
        r("v", "y", "professional", "p", 0, 2.0),
    ]
    assert perspective_agreement(mixed) == 1.0


# --------------------------------------------------------------------------- invariance

DOMAINS = ["safe", "caring", "dignity", "cleanliness"]
scored_answers = st.builds(
    lambda d, mx, frac, w: a(d, float(round(frac * mx)), float(mx), w),
    st.sampled_from(DOMAINS),
    st.sampled_from([2, 3, 4, 5]),
    st.floats(0, 1),
    st.sampled_from([0.5, 1.0, 2.0, 3.3, 10.0]),
)
na_answers = st.builds(
    lambda d, mx, w: a(d, None, mx, w),
    st.sampled_from([*DOMAINS, "extra"]),
    st.sampled_from([2.0, 4.0, None]),
    st.sampled_from([1.0, 5.0]),
)
submissions = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3", "r4"]),
        st.sampled_from(["v1", "v2"]),
        st.lists(scored_answers, max_size=8),
    ),
    max_size=6,
)


def pipeline(
    citizen: list[tuple[str, str, list[AnswerPoints]]],
    professional: list[tuple[str, str, list[AnswerPoints]]],
) -> ScoreComparison:
    def side(subs: list[tuple[str, str, list[AnswerPoints]]]) -> PerspectiveScores:
        return perspective_scores(
            SubmissionScores(rater=rt, visit=v, domains=submission_domain_scores(ans))
            for rt, v, ans in subs
        )

    return scorecard(side(citizen), side(professional), w=0.4)


@settings(max_examples=200, deadline=None)
@given(
    answers=st.lists(scored_answers, max_size=12),
    extra=st.lists(na_answers, max_size=6),
    seed=st.integers(0, 2**32),
)
def test_domain_scores_ignore_order_and_na(answers, extra, seed) -> None:
    shuffled = answers + extra
    random.Random(seed).shuffle(shuffled)
    assert submission_domain_scores(shuffled) == submission_domain_scores(answers)
    for score in submission_domain_scores(answers).values():
        assert 0.0 <= score <= 100.0


@settings(max_examples=150, deadline=None)
@given(
    citizen=submissions,
    professional=submissions,
    extra=st.lists(na_answers, max_size=6),
    seed=st.integers(0, 2**32),
)
def test_scorecards_ignore_order_and_na(citizen, professional, extra, seed) -> None:
    rng = random.Random(seed)

    def disturb(subs):
        out = []
        for rater, visit, answers in subs:
            answers = answers + [x for x in extra if rng.random() < 0.5]
            rng.shuffle(answers)
            out.append((rater, visit, answers))
        out.append(("r9", "v9", list(extra)))  # a submission of nothing but N/A
        rng.shuffle(out)
        return out

    assert pipeline(disturb(citizen), disturb(professional)) == pipeline(citizen, professional)


@settings(max_examples=150, deadline=None)
@given(
    scores=st.lists(st.fixed_dictionaries({d: st.floats(0, 100) for d in DOMAINS[:3]}), min_size=1)
)
def test_full_coverage_overall_summary_agrees_with_the_headline(scores) -> None:
    ps = perspective_scores(
        SubmissionScores(rater=str(i), visit="v", domains=s) for i, s in enumerate(scores)
    )
    assert ps.overall is not None and ps.overall_summary is not None
    assert ps.overall_summary.mean == pytest.approx(ps.overall, abs=1e-9)
