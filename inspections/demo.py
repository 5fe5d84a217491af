"""A demo organisation, made through the real HTTP API: `python -m service seed-demo`.

A care home where citizens rate dignity lower than professionals do, so the scorecard
(JSON and page) shows a gap, a divergence and a band from the first run.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import uuid
from typing import Any

from litestar.testing import AsyncTestClient

from service.settings import Settings

PASSWORD = "demo passphrase"  # printed for the person running the demo

# The demo's care home, as POST /v1/services takes it; the benchmarks inspect it too.
ELM_HOUSE = {
    "name": "Elm House Care Home",
    "kind": "care_home",
    "address": "1 Elm Road, Northshire",
    "lat": 52.6309,
    "lon": 1.2974,
}


def _answer(q: dict[str, Any], perspective: str, rng: random.Random) -> dict[str, Any]:
    """A plausible answer; citizens see dignity worse than professionals do."""
    low = perspective == "citizen" and q["domain"] == "dignity"
    key = q["key"]
    match q["type"]:
        case "rating":
            n = len(q["labels"])
            value = rng.choice([1, 2]) if low else rng.choice([n - 1, n])
            return {"question_key": key, "value": value}
        case "pass_fail":
            return {"question_key": key, "value": "fail" if low else "pass"}
        case "yes_no":
            good = q.get("good_answer", True)
            return {"question_key": key, "value": (not good) if low else good}
        case "choice":
            first = q["options"][0]["value"]
            return {"question_key": key, "value": [first] if q.get("multiple") else first}
        case "number":
            return {"question_key": key, "value": q.get("min") or 0}
        case _:
            return {"question_key": key, "value": "Friendly staff; residents were relaxed."}


async def seed_demo(database_url: str, org_id: str, coordinator: dict[str, Any]) -> dict[str, Any]:
    settings = Settings(
        database_url=database_url,
        jwt_secret=secrets.token_urlsafe(32),
        sweep_interval_s=0,
        log_level="WARNING",
    )
    from service.app import create_app

    rng = random.Random(7)
    async with AsyncTestClient(app=create_app(settings)) as c:
        tokens: dict[str, dict[str, str]] = {}

        async def sign_in(email: str) -> dict[str, str]:
            # Once per person: sign-in is rate limited, as it would be for a real phone.
            if email not in tokens:
                r = await c.post(
                    "/v1/auth/token",
                    json={"email": email, "password": PASSWORD, "device": "demo"},
                )
                r.raise_for_status()
                tokens[email] = {"Authorization": f"Bearer {r.json()['access_token']}"}
            return tokens[email]

        coord = await sign_in(coordinator["email"])
        people: dict[str, dict[str, Any]] = {}
        for name, roles in (
            ("Rose Citizen", ["citizen_inspector"]),
            ("Sam Citizen", ["citizen_inspector"]),
            ("Dr Priya Professional", ["professional_inspector"]),
            ("Morgan Manager", ["service_manager"]),
            ("Councillor Jones", ["scrutiny_member"]),
            ("Sasha Safeguarding", ["safeguarding_lead"]),
        ):
            email = name.lower().replace(" ", ".") + f".{org_id[:8]}@example.org"
            r = await c.post("/v1/invites", headers=coord, json={"email": email, "roles": roles})
            r.raise_for_status()
            r = await c.post(
                f"/v1/invites/{r.json()['code']}/accept",
                json={"display_name": name, "password": PASSWORD},
            )
            r.raise_for_status()
            people[name] = {**r.json(), "email": email}
        long_ago = (dt.date.today() - dt.timedelta(days=700)).isoformat()
        later = (dt.date.today() + dt.timedelta(days=700)).isoformat()
        for name in ("Rose Citizen", "Sam Citizen"):
            for kind, course in (
                ("course", "Enter and View authorised representative"),
                ("safeguarding_check", "DBS enhanced check"),
            ):
                r = await c.post(
                    f"/v1/users/{people[name]['id']}/training",
                    headers=coord,
                    json={
                        "kind": kind,
                        "course": course,
                        "completed_on": long_ago,
                        "expires_on": later,
                    },
                )
                r.raise_for_status()
        r = await c.post(
            "/v1/services",
            headers=coord,
            json={**ELM_HOUSE, "manager_ids": [people["Morgan Manager"]["id"]]},
        )
        r.raise_for_status()
        service = r.json()
        checklists = (await c.get("/v1/checklists", headers=coord)).json()["items"]
        care = next(x for x in checklists if "care_home" in x["service_kinds"])
        team = [
            {"user_id": people["Rose Citizen"]["id"], "perspective": "citizen"},
            {"user_id": people["Sam Citizen"]["id"], "perspective": "citizen"},
            {
                "user_id": people["Dr Priya Professional"]["id"],
                "perspective": "professional",
                "lead": True,
            },
        ]
        now = dt.datetime.now(dt.UTC)
        visits: dict[int, dict[str, Any]] = {}
        for days_ago in (200, 120, 60, 14):
            start = now - dt.timedelta(days=days_ago)
            r = await c.post(
                "/v1/visits",
                headers=coord,
                json={
                    "service_id": service["id"],
                    "checklist_id": care["id"],
                    "starts_at": start.isoformat(),
                    "ends_at": (start + dt.timedelta(hours=3)).isoformat(),
                    "announced": days_ago != 60,
                    "team": team,
                },
            )
            r.raise_for_status()
            visit = visits[days_ago] = r.json()
            for member in team:
                who = next(p for p in people.values() if p["id"] == member["user_id"])
                h = await sign_in(who["email"])
                bundle = (await c.get(f"/v1/visits/{visit['id']}/bundle", headers=h)).json()
                answers = [
                    _answer(q, member["perspective"], rng)
                    for s in bundle["checklist"]["content"]["sections"]
                    for q in s["questions"]
                ]
                r = await c.put(
                    f"/v1/visits/{visit['id']}/submissions/{uuid.uuid4()}",
                    headers=h,
                    json={"state": "final", "answers": answers},
                )
                if r.status_code >= 400:
                    raise RuntimeError(f"demo submission refused: {r.text}")
        card = (await c.get(f"/v1/services/{service['id']}/scorecard", headers=coord)).json()
        report = await _findings(c, coord, sign_in, people, visits[60], now)
    dignity = next(d for d in card["domains"] if d["domain"] == "dignity")
    return {
        "organisation_id": org_id,
        "service_id": service["id"],
        "password": PASSWORD,
        "sign_in": {
            "coordinator": coordinator["email"],
            "scrutiny_member": people["Councillor Jones"]["email"],
            "service_manager": people["Morgan Manager"]["email"],
            "citizen_inspector": people["Rose Citizen"]["email"],
            "safeguarding_lead": people["Sasha Safeguarding"]["email"],
        },
        "public_report": f"/public/reports/{report['id']}",
        "scorecard": {
            "band": card["band"],
            "dignity_gap": round(dignity["gap"], 1),
            "dignity_diverges": dignity["diverges"],
        },
    }


async def _findings(
    c: Any,
    coord: dict[str, str],
    sign_in: Any,
    people: dict[str, Any],
    visit: Any,
    now: dt.datetime,
) -> dict[str, Any]:
    """The 60-days-ago visit's findings, published 50 days ago: one recommendation
    accepted, done and verified by a citizen; one still unanswered (so overdue); good
    practice; and a safeguarding concern that only the lead and coordinator see."""
    rose = await sign_in(people["Rose Citizen"]["email"])
    sam = await sign_in(people["Sam Citizen"]["email"])
    manager = await sign_in(people["Morgan Manager"]["email"])
    found = {}
    for who, key, body in (
        (
            rose,
            "consent",
            {
                "title": "Residents not asked before personal care",
                "description": "Two residents told us staff start washing them without asking.",
                "domain": "dignity",
                "severity": "major",
                "recommendation": "Ask and wait for consent before any personal care; "
                "include it in supervision.",
            },
        ),
        (
            sam,
            "bells",
            {
                "title": "Call bells out of reach",
                "domain": "safety",
                "severity": "minor",
                "recommendation": "Check every evening that call bells are within reach.",
            },
        ),
        (
            sam,
            "garden",
            {
                "title": "The garden is used every day",
                "severity": "positive",
                "description": "Residents showed us the vegetables they grow.",
            },
        ),
        (
            rose,
            "concern",
            {
                "title": "A resident seemed afraid of one carer",
                "severity": "safeguarding",
                "description": "Raised with the home's lead on the day.",
            },
        ),
    ):
        r = await c.put(f"/v1/visits/{visit['id']}/findings/{uuid.uuid4()}", headers=who, json=body)
        r.raise_for_status()
        found[key] = r.json()
    r = await c.put(
        f"/v1/visits/{visit['id']}/report",
        headers=coord,
        json={"summary": "A friendly home where residents' dignity needs more care."},
    )
    r.raise_for_status()
    report = r.json()
    (await c.post(f"/v1/reports/{report['id']}/send", headers=coord)).raise_for_status()
    published_on = (now - dt.timedelta(days=50)).date().isoformat()
    r = await c.post(
        f"/v1/reports/{report['id']}/publish",
        headers=coord,
        json={"published_on": published_on},
    )
    r.raise_for_status()
    consent = found["consent"]["id"]
    target = (now + dt.timedelta(days=30)).date().isoformat()
    for who, body in (
        (
            manager,
            {
                "type": "accept",
                "actions": [
                    {
                        "action": "Consent in every care plan review",
                        "owner": "Deputy manager",
                        "target_date": target,
                    }
                ],
            },
        ),
        (manager, {"type": "action_done", "action": 1, "note": "Reviewed all 32 plans."}),
        (
            rose,
            {
                "type": "verify",
                "outcome": "confirmed",
                "note": "On our revisit every resident we asked said staff ask first.",
            },
        ),
    ):
        r = await c.put(f"/v1/findings/{consent}/updates/{uuid.uuid4()}", headers=who, json=body)
        r.raise_for_status()
    return report
