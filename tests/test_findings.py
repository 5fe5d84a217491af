"""Findings through HTTP: raised at a visit, reported, answered, verified; safeguarding apart."""

from __future__ import annotations

import datetime as dt
import uuid

from inspections.findings import workdays
from tests.helpers import Api, assert_problem
from tests.scenes import CALL_BELLS, CONCERN, GARDEN, NAMES, PUBLISHED_ON, VISIT_DAY, Findings


async def test_from_findings_to_a_verified_fix(api: Api) -> None:
    f = await Findings(api).build()
    client = api.client

    # The team raises findings from their phones; a retry makes nothing new.
    bells_id = str(uuid.uuid4())
    r = await f.raise_(f.ann, id=bells_id, **CALL_BELLS)
    assert r.status_code == 201, r.text
    bells = r.json()
    assert bells["status"] == "draft" and bells["raised_as"] == "citizen"
    again = await f.raise_(f.ann, id=bells_id, **CALL_BELLS)
    assert again.status_code == 200 and again.json()["id"] == bells_id
    assert await api.conn.fetchval("select count(*) from findings") == 1
    names = (await f.raise_(f.bob, **NAMES)).json()
    garden = (await f.raise_(f.pro, **GARDEN)).json()
    concern = (await f.raise_(f.ann, **CONCERN)).json()
    assert concern["status"] == "raised"

    # Nothing reaches the manager while the findings are the team's.
    assert (await client.get("/v1/findings", headers=f.manager)).json()["items"] == []
    assert_problem(await f.get(f.manager, bells_id), 404)

    # The coordinator writes the report and sends it for a factual-accuracy check.
    visit_id = f.visit["id"]
    r = await client.put(
        f"/v1/visits/{visit_id}/report", headers=f.coord, json={"summary": "A warm home."}
    )
    assert r.status_code == 201, r.text
    report = r.json()
    assert {x["id"] for x in report["findings"]} == {bells_id, names["id"], garden["id"]}
    assert report["team"] == {"citizen": 2, "professional": 1}
    r = await client.post(f"/v1/reports/{report['id']}/send", headers=f.coord)
    assert r.status_code == 200 and r.json()["status"] == "factual_check"

    # The manager reads it (never the safeguarding concern) and comments on a fact.
    r = await client.get(f"/v1/reports/{report['id']}", headers=f.manager)
    assert r.status_code == 200
    assert {x["id"] for x in r.json()["findings"]} == {bells_id, names["id"], garden["id"]}
    r = await client.put(
        f"/v1/reports/{report['id']}/comments/{uuid.uuid4()}",
        headers=f.manager,
        json={"finding_id": bells_id, "comment": "It was one bell, for eight minutes."},
    )
    assert r.status_code == 201, r.text
    # The team can no longer change its findings.
    r = await client.put(
        f"/v1/visits/{visit_id}/findings/{bells_id}",
        headers={**f.ann, "If-Match": bells["etag"]},
        json={**CALL_BELLS, "title": "Changed"},
    )
    assert_problem(r, 409)

    # Published on Monday 15 December 2025: 20 working days skip 25, 26 Dec and 1 Jan.
    r = await client.post(
        f"/v1/reports/{report['id']}/publish",
        headers=f.coord,
        json={"published_on": PUBLISHED_ON},
    )
    assert r.status_code == 200, r.text
    published = {x["id"]: x for x in r.json()["findings"]}
    assert published[bells_id]["due_on"] == "2026-01-15"  # 2026-01-12 without bank holidays
    assert published[bells_id]["status"] == "open"
    assert (
        published[garden["id"]]["status"] == "noted" and published[garden["id"]]["due_on"] is None
    )

    # Nobody ran a job, yet both recommendations show as overdue.
    r = await client.get("/v1/findings", params={"overdue": "true"}, headers=f.manager)
    assert {x["id"] for x in r.json()["items"]} == {bells_id, names["id"]}
    assert all(x["overdue"] for x in r.json()["items"])

    # The manager accepts one with an action plan and declines the other with a reason.
    assert_problem(await f.update(f.manager, names["id"], type="decline", reason=""), 422)
    assert_problem(await f.update(f.ann, bells_id, type="accept", actions=[]), 422)
    plan = [
        {
            "action": "Add a bell response audit",
            "owner": "Deputy manager",
            "target_date": "2026-03-01",
        }
    ]
    assert_problem(await f.update(f.ann, bells_id, type="accept", actions=plan), 403)
    r = await f.update(f.manager, bells_id, type="accept", actions=plan, note="Agreed.")
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "responded" and r.json()["overdue"] is False
    assert r.json()["responded_on_time"] is False
    r = await f.update(
        f.manager,
        names["id"],
        type="decline",
        reason="Residents chose not to have names on doors for privacy.",
    )
    assert r.json()["status"] == "declined"
    # Declined is terminal.
    assert_problem(await f.update(f.manager, names["id"], type="progress", note="x"), 409)

    # Progress, then the last action done: the service says it is done.
    r = await f.update(f.manager, bells_id, type="progress", note="Audit started.")
    assert r.json()["status"] == "in_progress"
    r = await f.update(f.manager, bells_id, type="action_done", action=1)
    assert r.json()["status"] == "done_by_service"
    # A manager cannot verify their own fix; a citizen can.
    assert_problem(await f.update(f.manager, bells_id, type="verify", outcome="confirmed"), 403)
    r = await f.update(
        f.bob,
        bells_id,
        type="verify",
        outcome="confirmed",
        note="Bells answered in two minutes on our revisit.",
    )
    assert r.status_code == 201, r.text
    final = r.json()
    assert final["status"] == "verified"
    # The history says who (in role terms), when and what.
    assert [(h["kind"], h["to_status"], h["actor_role"]) for h in final["history"]] == [
        ("raised", "draft", "citizen inspector"),
        ("published", "open", "coordinator"),
        ("accepted", "responded", "service manager"),
        ("progress", "in_progress", "service manager"),
        ("action_done", "done_by_service", "service manager"),
        ("verified", "verified", "citizen inspector"),
    ]
    assert final["actions"][0]["done_at"] is not None

    # For the committee: made, answered on time, overdue, verified.
    r = await client.get("/v1/findings/summary", params={"from": "2025-01-01"}, headers=f.scrutiny)
    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    assert row["recommendations"] == 2 and row["answered"] == 2
    assert row["answered_on_time"] == 0 and row["overdue"] == 0
    assert row["declined"] == 1 and row["verified"] == 1
    # The same beside the committee's scorecard page.
    r = await client.get(
        f"/services/{f.s.service['id']}/scorecard",
        params={"from": "2025-01-01"},
        headers=f.scrutiny,
    )
    assert r.status_code == 200, r.text
    assert "Recommendations to this service" in r.text
    assert '<th scope="row">Verified by citizen inspectors</th><td>1</td>' in r.text
    assert '<th scope="row">Answered late</th><td>2</td>' in r.text

    # Notifications waited in the outbox, each once.
    events = [r["event"] for r in await api.conn.fetch("select event from outbox order by id")]
    assert events.count("safeguarding.raised") == 1
    assert events.count("report.published") == 1  # the one manager
    assert events.count("verification.requested") == 2  # the visit's two citizens


async def test_a_disputed_fix_goes_back_to_the_service(api: Api) -> None:
    f = await Findings(api).build()
    bells = (await f.raise_(f.ann, **CALL_BELLS)).json()
    report = await f.draft_report()
    await f.publish(report)
    plan = [
        {"action": "Audit", "owner": "Deputy", "target_date": "2026-03-01"},
        {"action": "Train", "owner": "Trainer", "target_date": "2026-04-01"},
    ]
    await f.update(f.manager, bells["id"], type="accept", actions=plan)
    assert_problem(await f.update(f.manager, bells["id"], type="done"), 409)
    await f.update(f.manager, bells["id"], type="action_done", action=1)
    assert_problem(await f.update(f.manager, bells["id"], type="action_done", action=1), 409)
    assert_problem(await f.update(f.manager, bells["id"], type="action_done", action=3), 422)
    r = await f.update(f.manager, bells["id"], type="action_done", action=2)
    assert r.json()["status"] == "done_by_service"
    r = await f.update(
        f.ann, bells["id"], type="verify", outcome="disputed", note="Still waited nine minutes."
    )
    assert r.json()["status"] == "in_progress"
    assert r.json()["history"][-1]["kind"] == "not_verified"
    r = await f.update(f.manager, bells["id"], type="done", note="Extra staff on lates.")
    assert r.json()["status"] == "done_by_service"
    r = await f.update(f.bob, bells["id"], type="verify", outcome="confirmed")
    assert r.json()["status"] == "verified"


async def test_publishing_today_counts_working_days_and_is_on_time(api: Api) -> None:
    f = await Findings(api).build()
    bells = (await f.raise_(f.ann, **CALL_BELLS)).json()
    report = await f.draft_report()
    r = await f.publish(report)
    assert r.status_code == 200, r.text
    tz_today = (
        dt.datetime.now(dt.UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/London")).date()
    )
    due = workdays.add_working_days(tz_today, 20, "england-and-wales")
    [finding] = r.json()["findings"]
    assert finding["due_on"] == due.isoformat() and finding["overdue"] is False
    # Publishing again changes nothing.
    again = await api.client.post(f"/v1/reports/{report['id']}/publish", headers=f.coord)
    assert again.json()["published_at"] == r.json()["published_at"]
    r = await f.update(f.manager, bells["id"], type="decline", reason="We disagree.")
    assert r.json()["responded_on_time"] is True
    # The future is not a publication date.
    other = await f.s.visit(
        starts_at=VISIT_DAY.isoformat(),
        ends_at=(VISIT_DAY + dt.timedelta(hours=3)).isoformat(),
    )
    rep = (
        await api.client.put(f"/v1/visits/{other.json()['id']}/report", headers=f.coord, json={})
    ).json()
    future = (tz_today + dt.timedelta(days=3)).isoformat()
    r = await api.client.post(
        f"/v1/reports/{rep['id']}/publish", headers=f.coord, json={"published_on": future}
    )
    assert_problem(r, 422)


async def test_safeguarding_is_seen_only_by_raiser_coordinators_and_leads(api: Api) -> None:
    from tests.scenes import GPS_PHOTO, Photos

    f = await Findings(api).build()
    photo = (await Photos(api, f.s, f.visit).upload(f.ann, GPS_PHOTO.read_bytes())).json()
    concern = (await f.raise_(f.ann, **{**CONCERN, "evidence_ids": [photo["id"]]})).json()
    cid = concern["id"]
    # Its photo is as private as the concern.
    for who in (f.ann, f.coord, f.lead):
        assert (await api.client.get(f"/v1/evidence/{photo['id']}", headers=who)).status_code == 200
    for who in (f.bob, f.scrutiny, f.manager):
        r = await api.client.get(f"/v1/evidence/{photo['id']}", headers=who)
        assert r.status_code in (403, 404), r.text
    r = await api.client.get(f"/v1/visits/{f.visit['id']}/evidence", headers=f.bob)
    assert r.status_code == 200 and r.json() == []
    for who in (f.ann, f.coord, f.lead):
        assert (await f.get(who, cid)).status_code == 200
    for who in (f.manager, f.bob, f.pro, f.scrutiny):
        assert_problem(await f.get(who, cid), 404)
        listed = (await api.client.get("/v1/findings", headers=who)).json()["items"]
        assert cid not in {x["id"] for x in listed}
    # Never in the report, even for the coordinator, and never published.
    report = await f.draft_report()
    assert report["findings"] == []
    await f.publish(report)
    assert (await f.get(f.lead, cid)).json()["status"] == "raised"
    # Not through the report, for the manager, the rest of the team or scrutiny either.
    for who in (f.manager, f.bob, f.scrutiny):
        r = await api.client.get(f"/v1/reports/{report['id']}", headers=who)
        assert r.status_code == 200 and cid not in r.text and "Bruising" not in r.text
        r = await api.client.get("/v1/findings", params={"visit": f.visit["id"]}, headers=who)
        assert cid not in r.text
    summary = (await api.client.get("/v1/findings/summary", headers=f.coord)).json()
    assert summary["items"] == []
    # The lead was told at once; the email holds no details.
    row = await api.conn.fetchrow(
        "select recipient, subject, body from outbox where event = 'safeguarding.raised'"
    )
    assert row["recipient"] == "lead@example.org"
    assert "Bruising" not in row["body"] and "Mrs A" not in row["body"]

    # Its handling is recorded and audited; only leads and coordinators handle it.
    assert_problem(await f.update(f.ann, cid, type="acknowledge"), 403)
    assert_problem(
        await f.update(
            f.lead,
            cid,
            type="accept",
            actions=[{"action": "x", "owner": "y", "target_date": "2026-01-01"}],
        ),
        409,
    )
    assert (await f.update(f.lead, cid, type="acknowledge")).json()["status"] == "acknowledged"
    assert_problem(await f.update(f.lead, cid, type="refer"), 422)  # the reference is needed
    r = await f.update(f.lead, cid, type="refer", reference="LA-2025-0042")
    assert r.json()["status"] == "referred"
    assert r.json()["safeguarding_reference"] == "LA-2025-0042"
    r = await f.update(f.coord, cid, type="close", note="Police and LA satisfied.")
    assert r.json()["status"] == "closed"
    actions = [
        a["action"]
        for a in await api.conn.fetch(
            "select action from audit_log where object_id = $1 order by id", cid
        )
    ]
    assert actions == [
        "finding.raise",
        "finding.acknowledged",
        "finding.referred",
        "finding.closed",
    ]
    # A safeguarding concern cannot be turned into an ordinary finding.
    r = await api.client.put(
        f"/v1/visits/{f.visit['id']}/findings/{cid}",
        headers={**f.ann, "If-Match": concern["etag"]},
        json={**CONCERN, "severity": "minor"},
    )
    assert_problem(r, 409)


async def test_bad_findings_get_clear_reasons_and_change_nothing(api: Api) -> None:
    f = await Findings(api).build()
    r = await f.raise_(f.ann, **{**CALL_BELLS, "question_keys": ["nope"]})
    body = assert_problem(r, 422)
    assert "nope" in body["detail"]
    assert_problem(await f.raise_(f.ann, **{**CALL_BELLS, "severity": "urgent"}), 422)
    assert_problem(await f.raise_(f.ann, **{**CALL_BELLS, "colour": "red"}), 422)
    # Someone not on the team, and a manager, cannot raise findings at this visit.
    outsider = await api.login(await api.cleared_citizen(f.s.org))
    assert_problem(await f.raise_(outsider, **CALL_BELLS), 403)
    assert_problem(await f.raise_(f.manager, **CALL_BELLS), 403)
    # Another organisation's coordinator does not find the visit.
    other = await api.login(await api.user(await api.org("B"), "coordinator"))
    assert_problem(await f.raise_(other, **CALL_BELLS), 404)
    assert await api.conn.fetchval("select count(*) from findings") == 0
    # Changing a finding needs its ETag.
    fid = str(uuid.uuid4())
    first = (await f.raise_(f.ann, id=fid, **CALL_BELLS)).json()
    assert_problem(await f.raise_(f.ann, id=fid, **{**CALL_BELLS, "title": "New"}), 428)
    r = await api.client.put(
        f"/v1/visits/{f.visit['id']}/findings/{fid}",
        headers={**f.ann, "If-Match": '"stale"'},
        json={**CALL_BELLS, "title": "New"},
    )
    assert_problem(r, 412)
    r = await api.client.put(
        f"/v1/visits/{f.visit['id']}/findings/{fid}",
        headers={**f.ann, "If-Match": first["etag"]},
        json={**CALL_BELLS, "title": "New"},
    )
    assert r.status_code == 200 and r.json()["title"] == "New"
    # Someone else's id is not theirs to overwrite.
    assert_problem(await f.raise_(f.bob, id=fid, **CALL_BELLS), 409)


async def test_publication_waits_for_linked_photos(api: Api) -> None:
    f = await Findings(api).build()
    photo = str(uuid.uuid4())  # taken offline, not uploaded yet
    await f.raise_(f.ann, **{**CALL_BELLS, "evidence_ids": [photo]})
    report = await f.draft_report()
    r = await f.publish(report)
    body = assert_problem(r, 409, "evidence-not-ready")
    assert photo in body["detail"]
    assert await api.conn.fetchval("select status from visit_reports") == "draft"
    assert await api.conn.fetchval("select count(*) from outbox") == 0


async def test_reminders_are_enqueued_once_when_due_soon_and_when_overdue(api: Api) -> None:
    from inspections.findings.reminders import scan

    f = await Findings(api).build()
    bells = (await f.raise_(f.ann, **CALL_BELLS)).json()
    names = (await f.raise_(f.bob, **NAMES)).json()
    report = await f.draft_report()
    r = await f.publish(report, PUBLISHED_ON)
    assert r.status_code == 200, r.text
    settings = api.client.app.state.settings
    await f.update(f.manager, names["id"], type="decline", reason="No.")  # answered: no reminder
    # Due 2026-01-15. Thursday 8 Jan is 5 working days before: "due soon", once.
    assert await scan(api.conn, settings, dt.date(2026, 1, 7)) == 0  # 6 working days left
    assert await scan(api.conn, settings, dt.date(2026, 1, 8)) == 1  # the one manager
    assert await scan(api.conn, settings, dt.date(2026, 1, 9)) == 0  # already told
    # The day after the due date: overdue, to the manager and the coordinator, once.
    assert await scan(api.conn, settings, dt.date(2026, 1, 15)) == 0
    assert await scan(api.conn, settings, dt.date(2026, 1, 16)) == 2
    assert await scan(api.conn, settings, dt.date(2026, 2, 1)) == 0
    rows = await api.conn.fetch(
        """select event, payload -> 'data' ->> 'finding_id' finding from outbox
            where event like 'response.%' order by id"""
    )
    assert [(r["event"], r["finding"]) for r in rows] == [
        ("response.posted", names["id"]),
        ("response.posted", names["id"]),
        ("response.posted", names["id"]),
        ("response.posted", names["id"]),
        ("response.due_soon", bells["id"]),
        ("response.overdue", bells["id"]),
        ("response.overdue", bells["id"]),
    ]


async def test_deadlines_follow_the_organisations_jurisdiction(api: Api) -> None:
    f = await Findings(api).build()
    url = "/v1/organisation/findings-settings"
    assert (await api.client.get(url, headers=f.scrutiny)).json() == {
        "jurisdiction": "england-and-wales",
        "response_working_days": 20,
        "reminder_working_days": 5,
    }
    assert_problem(await api.client.patch(url, headers=f.manager, json={}), 403)
    assert_problem(await api.client.patch(url, headers=f.coord, json={"jurisdiction": "x"}), 422)
    assert_problem(
        await api.client.patch(url, headers=f.coord, json={"response_working_days": 0}), 422
    )
    r = await api.client.patch(url, headers=f.coord, json={"jurisdiction": "scotland"})
    assert r.status_code == 200 and r.json()["jurisdiction"] == "scotland"
    assert r.json()["response_working_days"] == 20
    assert (
        await api.conn.fetchval(
            "select count(*) from audit_log where action = 'organisation.findings_settings'"
        )
        == 1
    )
    await f.raise_(f.ann, **CALL_BELLS)
    report = await f.draft_report()
    r = await f.publish(report, PUBLISHED_ON)
    # Scotland also keeps 2 January: one working day later than England and Wales.
    assert r.json()["findings"][0]["due_on"] == "2026-01-16"
