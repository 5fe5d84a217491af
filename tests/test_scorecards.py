"""Scorecards through HTTP: citizens see dignity differently from professionals."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any

import pytest

from inspections.scorecards.maths import QuestionRating, perspective_agreement
from tests.helpers import Api, assert_problem
from tests.scenes import seeded, submit


def domain(card: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in card["domains"] if d["domain"] == name)


async def test_scorecard_shows_the_dignity_gap_divergence_and_band(api: Api) -> None:
    s, _ = await seeded(api)
    r = await api.client.get(f"/v1/services/{s.service['id']}/scorecard", headers=s.coord)
    assert r.status_code == 200, r.text
    card = r.json()
    dignity = domain(card, "dignity")
    # Citizens: privacy+2*respect over 4+8; visit 1: (1+4)/12, (2+2)/12 ...
    citizen_scores = [
        100 * 5 / 12,
        100 * 4 / 12,
        100 * 4 / 12,
        100 * 5 / 12,
        100 * 3 / 12,
        100 * 3 / 12,
    ]
    assert abs(dignity["citizen"]["score"] - sum(citizen_scores) / 6) < 1e-9
    assert dignity["citizen"]["submissions"] == 6 and dignity["citizen"]["raters"] == 2
    assert dignity["citizen"]["visits"] == 3 and dignity["citizen"]["answers"] == 12
    assert dignity["professional"]["score"] == 100
    assert dignity["professional"]["lower"] == dignity["professional"]["upper"] == 100
    assert dignity["gap"] < -60 and dignity["diverges"] is True
    assert dignity["combined"]["score"] == (dignity["citizen"]["score"] + 100) / 2
    assert dignity["band"] == "good"  # combined (33.3 + 100) / 2 = 66.7
    safety = domain(card, "safety")
    assert safety["citizen"]["score"] == safety["professional"]["score"] == 100
    assert safety["diverges"] is False and safety["band"] == "outstanding"
    # N/A never counts as zero: clutter was N/A for everyone.
    assert safety["citizen"]["answers"] == 6
    assert card["overall"]["combined"]["score"] == (dignity["combined"]["score"] + 100) / 2
    assert card["band"] == card["computed_band"] == "good"
    assert card["questions"][0]["question_key"] in ("privacy", "respect")
    assert card["questions"][0]["gap_pct"] < -50
    assert card["agreement_alpha"] is not None and card["agreement_alpha"] < 0.5
    # PostgreSQL's medians give the same alpha as the pure reference over the same answers.
    rows = await api.conn.fetch(
        """select s.visit_id visit, a.question_key question, s.perspective, s.user_id rater,
                  a.points, a.max_points
             from answers a join submissions s on s.id = a.submission_id"""
    )
    ratings = [QuestionRating(**dict(r)) for r in rows]
    assert card["agreement_alpha"] == pytest.approx(perspective_agreement(ratings), abs=1e-12)
    assert any("Dignity: citizens scored" in n and "diverge" in n for n in card["notes"])
    assert domain(card, "dignity")["trend"] is None  # nothing in the previous period


async def test_who_sees_which_scorecards(api: Api) -> None:
    s, _ = await seeded(api)
    url = f"/v1/services/{s.service['id']}/scorecard"
    manager = await api.login(s.manager)
    assert (await api.client.get(url, headers=manager)).status_code == 200
    other_manager = await api.login(await api.user(s.org, "service_manager"))
    assert_problem(await api.client.get(url, headers=other_manager), 403)
    scrutiny = await api.login(await api.user(s.org, "scrutiny_member"))
    assert (await api.client.get(url, headers=scrutiny)).status_code == 200
    assert_problem(await api.client.get(url, headers=await api.login(s.ann)), 403)
    stranger = await api.login(await api.user(await api.org("B"), "scrutiny_member"))
    assert_problem(await api.client.get(url, headers=stranger), 404)


async def test_band_override_needs_a_reason_and_is_shown_and_audited(api: Api) -> None:
    s, _ = await seeded(api)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    period = {
        "period_from": (now - dt.timedelta(days=365)).isoformat(),
        "period_to": now.isoformat(),
    }
    url = f"/v1/services/{s.service['id']}/scorecard/override"
    r = await api.client.post(
        url, headers=s.coord, json={**period, "band": "requires_improvement", "reason": "no"}
    )
    assert_problem(r, 422)
    reason = "Safeguarding concerns raised by the local authority in March."
    r = await api.client.post(
        url, headers=s.coord, json={**period, "band": "requires_improvement", "reason": reason}
    )
    assert r.status_code == 201, r.text
    card = r.json()
    assert card["band"] == "requires_improvement" and card["computed_band"] == "good"
    assert card["override"]["reason"] == reason
    assert any("set to Requires improvement by a coordinator" in n for n in card["notes"])
    params = {"from": period["period_from"], "to": period["period_to"]}
    again = await api.client.get(
        f"/v1/services/{s.service['id']}/scorecard", params=params, headers=s.coord
    )
    assert again.json()["band"] == "requires_improvement"
    audit = (await api.client.get("/v1/audit?action=scorecard.override", headers=s.coord)).json()
    assert audit["items"][0]["summary"]["reason"] == reason
    scrutiny = await api.login(await api.user(s.org, "scrutiny_member"))
    assert_problem(
        await api.client.post(
            url,
            headers=scrutiny,
            json={**period, "band": "good", "reason": "I would like it to be good"},
        ),
        403,
    )


async def test_organisation_weight_changes_the_combined_score(api: Api) -> None:
    s, _ = await seeded(api)
    r = await api.client.patch(
        "/v1/organisation/scoring", headers=s.coord, json={"citizen_weight": 0.75}
    )
    assert r.status_code == 200 and r.json()["citizen_weight"] == 0.75
    card = (
        await api.client.get(f"/v1/services/{s.service['id']}/scorecard", headers=s.coord)
    ).json()
    d = domain(card, "dignity")
    assert abs(d["combined"]["score"] - (0.75 * d["citizen"]["score"] + 0.25 * 100)) < 1e-9
    bad = await api.client.patch(
        "/v1/organisation/scoring", headers=s.coord, json={"band_thresholds": [60, 50, 90]}
    )
    assert_problem(bad, 422)


async def test_league_table_json_and_csv(api: Api) -> None:
    s, _ = await seeded(api)
    await s.ash_court()
    r = await api.client.get("/v1/scorecards?kind=care_home", headers=s.coord)
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    assert [x["service_name"] for x in rows] == ["Elm House", "Ash Court"]
    assert rows[0]["band"] == "good" and rows[1]["combined"] is None
    r = await api.client.get(
        "/v1/scorecards?kind=care_home&sort=name&descending=false", headers=s.coord
    )
    assert [x["service_name"] for x in r.json()["items"]] == ["Ash Court", "Elm House"]
    r = await api.client.get(
        "/v1/scorecards?kind=care_home", headers={**s.coord, "Accept": "text/csv"}
    )
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert table[0]["service_name"] == "Elm House" and table[0]["band"] == "good"
    page = (await api.client.get("/v1/scorecards?kind=care_home&limit=1", headers=s.coord)).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    manager = await api.login(s.manager)
    mine = (await api.client.get("/v1/scorecards?kind=care_home", headers=manager)).json()
    assert [x["service_name"] for x in mine["items"]] == ["Elm House"]


async def test_seed_demo_shows_the_gap(settings: Any) -> None:
    """The documented demo command: a care home where citizens rate dignity lower."""
    import asyncio
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
    }
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service", "seed-demo"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    demo = json.loads(out.stdout)
    assert demo["scorecard"]["dignity_gap"] < -20
    assert demo["scorecard"]["dignity_diverges"] is True
    assert demo["scorecard"]["band"] in ("good", "requires_improvement")
    # Its published report: a verified fix, an overdue recommendation, good practice; the
    # safeguarding concern stays out of it.
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        statuses = sorted(
            r[0]
            for r in await conn.fetch(
                "select status from findings where organisation_id = $1",
                uuid.UUID(demo["organisation_id"]),
            )
        )
        overdue = await conn.fetchval(
            "select count(*) from findings where status = 'open' and due_on < current_date"
        )
    finally:
        await conn.close()
    assert statuses == ["noted", "open", "raised", "verified"] and overdue == 1
    assert demo["public_report"].startswith("/public/reports/")


async def test_league_row_agrees_with_the_service_scorecard(api: Api) -> None:
    s, _ = await seeded(api)
    card = (
        await api.client.get(f"/v1/services/{s.service['id']}/scorecard", headers=s.coord)
    ).json()
    row = (await api.client.get("/v1/scorecards?kind=care_home", headers=s.coord)).json()["items"][
        0
    ]
    assert abs(row["combined"] - card["overall"]["combined"]["score"]) < 1e-9
    assert abs(row["citizen"] - card["overall"]["citizen"]["score"]) < 1e-9
    assert row["band"] == card["computed_band"]
    assert row["single_perspective"] is False


def test_summary_from_moments_matches_summarise() -> None:
    import statistics

    from inspections.scorecards.maths import summarise, summary_from_moments

    for xs in ([50.0], [40.0, 60.0], [10.0, 20.0, 35.0, 90.0, 55.5] * 6):
        a = summarise(xs)
        sd = statistics.stdev(xs) if len(xs) > 1 else None
        b = summary_from_moments(len(xs), statistics.fmean(xs), sd)
        assert b.n == a.n and abs(b.mean - a.mean) < 1e-9
        assert (a.lower is None) == (b.lower is None)
        if a.lower is not None:
            assert abs(a.lower - b.lower) < 1e-9 and abs(a.upper - b.upper) < 1e-9


async def test_league_table_and_scorecards_agree_on_every_band_with_an_override(
    api: Api,
) -> None:
    s, _ = await seeded(api)
    # A second service with its own scores, so "every service" is more than one.
    ash = await s.ash_court()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    r = await api.client.post(
        "/v1/visits",
        headers=s.coord,
        json={
            "service_id": ash["id"],
            "checklist_id": s.checklist["id"],
            "starts_at": start.isoformat(),
            "ends_at": (start + dt.timedelta(hours=2)).isoformat(),
            "team": s.team((s.ann, "citizen"), (s.pro, "professional")),
        },
    )
    assert r.status_code == 201, r.text
    await submit(api, r.json()["id"], s.ann, 4, 4)
    await submit(api, r.json()["id"], s.pro, 4, 4)

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    period = {"from": (now - dt.timedelta(days=90)).isoformat(), "to": now.isoformat()}
    reason = "Safeguarding concerns raised by the local authority in March."
    r = await api.client.post(
        f"/v1/services/{s.service['id']}/scorecard/override",
        headers=s.coord,
        json={
            "period_from": period["from"],
            "period_to": period["to"],
            "band": "requires_improvement",
            "reason": reason,
        },
    )
    assert r.status_code == 201, r.text

    # The overridden period exactly, and the default "last 12 months ending now".
    for params in (period, {}):
        league = await api.client.get(
            "/v1/scorecards", params={"kind": "care_home", **params}, headers=s.coord
        )
        rows = league.json()["items"]
        assert {x["service_name"] for x in rows} == {"Elm House", "Ash Court"}
        for row in rows:
            card = (
                await api.client.get(
                    f"/v1/services/{row['service_id']}/scorecard", params=params, headers=s.coord
                )
            ).json()
            assert row["band"] == card["band"], (params, row["service_name"])
            assert row["computed_band"] == card["computed_band"]
        elm = next(x for x in rows if x["service_name"] == "Elm House")
        assert elm["band"] == "requires_improvement" and elm["computed_band"] == "good"
        assert elm["override"]["reason"] == reason
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                (
                    await api.client.get(
                        "/v1/scorecards?kind=care_home", headers={**s.coord, "Accept": "text/csv"}
                    )
                ).text
            )
        )
    )
    elm_csv = next(x for x in csv_rows if x["service_name"] == "Elm House")
    assert elm_csv["band"] == "requires_improvement" and elm_csv["override_reason"] == reason


async def test_an_override_shows_on_the_default_scorecard_until_new_evidence(api: Api) -> None:
    s, visits = await seeded(api)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    reason = "Safeguarding concerns raised by the local authority in March."
    r = await api.client.post(
        f"/v1/services/{s.service['id']}/scorecard/override",
        headers=s.coord,
        json={
            # Recorded for the year to last week: the default period ends later (now).
            "period_from": (now - dt.timedelta(days=365)).isoformat(),
            "period_to": (now - dt.timedelta(days=7)).isoformat(),
            "band": "requires_improvement",
            "reason": reason,
        },
    )
    assert r.status_code == 201, r.text
    url = f"/v1/services/{s.service['id']}/scorecard"
    card = (await api.client.get(url, headers=s.coord)).json()
    assert card["band"] == "requires_improvement" and card["computed_band"] == "good"
    o = card["override"]
    assert o["reason"] == reason and o["band"] == "requires_improvement"
    coordinator_id = await api.conn.fetchval(
        "select created_by from scorecard_overrides where service_id = $1",
        uuid.UUID(s.service["id"]),
    )
    assert o["by"] == str(coordinator_id) and o["by_name"] and o["at"]
    assert card["override_lapsed"] is None
    # A period before the override's starts sees none of it.
    old = {"from": "2020-01-01T00:00:00Z", "to": "2021-01-01T00:00:00Z"}
    assert (await api.client.get(url, params=old, headers=s.coord)).json()["override"] is None

    # New evidence: a submission finalised after the override was recorded.
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    visit = (
        await s.visit(
            starts_at=start.isoformat(), ends_at=(start + dt.timedelta(hours=2)).isoformat()
        )
    ).json()
    await submit(api, visit["id"], s.pro, 4, 4)
    card = (await api.client.get(url, headers=s.coord)).json()
    assert card["band"] == card["computed_band"] == "good"
    assert card["override"] is None and card["override_lapsed"]["reason"] == reason
    assert any("submissions finalised since then" in n for n in card["notes"])
    league = (await api.client.get("/v1/scorecards?kind=care_home", headers=s.coord)).json()
    assert league["items"][0]["band"] == "good" and league["items"][0]["override"] is None
    # The override endpoint's description documents the rule in the OpenAPI document.
    spec = (await api.client.get("/schema/openapi.json")).json()
    described = spec["paths"]["/v1/services/{service_id}/scorecard"]["get"]["description"]
    assert "until new evidence arrives" in described


async def test_questions_carry_their_text_and_answers_in_words(api: Api) -> None:
    s, _ = await seeded(api)
    card = (
        await api.client.get(f"/v1/services/{s.service['id']}/scorecard", headers=s.coord)
    ).json()
    q = {x["question_key"]: x for x in card["questions"]}
    assert q["privacy"]["prompt"] == "Is privacy respected?" and q["privacy"]["type"] == "rating"
    assert q["privacy"]["citizen_answers"] == "1.3 of 4 on average (6 answers)"
    assert q["privacy"]["professional_answers"] == "4 of 4 (Excellent), all 3 answers"
    assert q["call_bells"]["prompt"] == "Are call bells answered?"
    assert q["call_bells"]["citizen_answers"] == "Yes, all 6 answers"
    # The band's reason: not capped here, so the score's own band, in words.
    reason = card["band_reason"]
    assert reason["rule"] is None and reason["score_band"] == "good"
    assert reason["words"] == "Combined score 83.3: Good."
    assert card["provisional"] is False and card["provisional_reason"] is None
