"""The coordinator's home page: what needs doing now, each a count with a link to the screen
that deals with it; safeguarding concerns a count only unless the person handles them."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

from tests.helpers import PASSWORD, Api, form_post
from tests.scenes import CALL_BELLS, CONCERN, GARDEN, NAMES, PUBLISHED_ON, Findings


async def home_todo(api: Api, email: str) -> dict[str, tuple[int, str | None]]:
    """Sign in as ``email``; the panel's lines: words -> (count, link or None)."""
    api.client.cookies.clear()
    r = await form_post(api.client, "/signin", {"email": email, "password": PASSWORD, "next": "/"})
    assert r.status_code == 200, r.text
    if "What needs doing now" not in r.text:
        return {}
    panel = r.text.split('id="todo-h"', 1)[1].split("</section>", 1)[0]
    out = {}
    for n, rest in re.findall(r'<span class="n">(\d+)</span> (.*?)</li>', panel):
        link = re.match(r'<a href="([^"]+)">(.*)</a>', rest)
        words = unescape(re.sub(r"<[^>]+>", "", rest))
        out[words] = (int(n), unescape(link.group(1)) if link else None)
    return out


async def test_the_coordinators_home_says_what_needs_doing_now(api: Api) -> None:
    f = await Findings(api).build()
    org, client = f.s.org, api.client
    coord_email = await api.conn.fetchval(
        "select email from users where organisation_id = $1 and 'coordinator' = any(roles)", org
    )
    for who, body in ((f.ann, CALL_BELLS), (f.bob, NAMES), (f.pro, GARDEN), (f.ann, CONCERN)):
        assert (await f.raise_(who, **body)).status_code == 201

    todo = await home_todo(api, coord_email)
    assert todo["report to review"] == (1, "/reports")
    # A count only: this coordinator does not handle concerns.
    assert todo["safeguarding concern open"] == (1, None)
    assert "recommendations overdue" not in todo

    # Sent for its factual check: no longer to review, waiting on the service.
    visit = f.visit["id"]
    report = (
        await client.put(f"/v1/visits/{visit}/report", headers=f.coord, json={"summary": "Warm."})
    ).json()
    await client.post(f"/v1/reports/{report['id']}/send", headers=f.coord)
    todo = await home_todo(api, coord_email)
    assert "report to review" not in todo
    assert todo["report with a service for its factual check"] == (1, "/reports")

    # Published in December 2025: both recommendations are long overdue, as the API says.
    r = await client.post(
        f"/v1/reports/{report['id']}/publish", headers=f.coord, json={"published_on": PUBLISHED_ON}
    )
    assert r.status_code == 200, r.text
    overdue = (await client.get("/v1/findings?overdue=true", headers=f.coord)).json()["items"]
    assert len(overdue) == 2

    # Invites: one waiting, one that ran out; a citizen whose check runs out in 10 days.
    for email in ("rose@example.org", "sam@example.org"):
        await api.invite(f.coord, email, "citizen_inspector")
    await api.conn.execute(
        "update invites set expires_at = now() - interval '1 hour' where email = 'sam@example.org'"
    )
    cy = await api.user(org, "citizen_inspector", name="Cy")
    today = dt.date.today()
    for kind, days in (("course", 300), ("safeguarding_check", 10)):
        r = await client.post(
            f"/v1/users/{cy['id']}/training",
            headers=f.coord,
            json={
                "kind": kind,
                "course": "Lay assessor",
                "completed_on": (today - dt.timedelta(days=30)).isoformat(),
                "expires_on": (today + dt.timedelta(days=days)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
    # The delivery worker gave up on one email (as deliver.py records it).
    await api.conn.execute(
        """update outbox set failed_at = now(), attempts = 8, last_error = 'mailbox unavailable'
            where id = (select min(id) from outbox where organisation_id = $1)""",
        org,
    )

    todo = await home_todo(api, coord_email)
    assert todo == {
        "recommendations overdue": (2, "/reports"),
        "safeguarding concern open": (1, None),
        "notification that failed": (1, "/notifications"),
        "invite not accepted yet": (1, "/people/invites"),
        "invite expired without being accepted": (1, "/people/invites?status=expired"),
        "citizen inspector whose training or check runs out within 30 days": (
            1,
            "/people?clearance=expiring",
        ),
    }
    # Each link shows what it counted.
    r = await client.get("/people?clearance=expiring")
    assert ">Cy<" in r.text and ">Ann<" not in r.text
    r = await client.get("/notifications")
    assert r.status_code == 200 and "mailbox unavailable" in r.text
    r = await client.get("/people/invites?status=expired")
    assert "sam@example.org" in r.text and "rose@example.org" not in r.text

    # A coordinator who is also a safeguarding lead gets the link to the concerns.
    both = await api.user(org, "coordinator", "safeguarding_lead")
    assert (await home_todo(api, both["email"]))["safeguarding concern open"] == (1, "/concerns")
    # Nobody else sees the panel; another organisation's coordinator sees none of this.
    assert await home_todo(api, f.lead_user["email"]) == {}
    assert await home_todo(api, f.s.manager["email"]) == {}
    elsewhere = await api.user(await api.org("Southshire"), "coordinator")
    api.client.cookies.clear()
    r = await form_post(
        client, "/signin", {"email": elsewhere["email"], "password": PASSWORD, "next": "/"}
    )
    assert "Nothing is waiting for you." in r.text
    # The failed-notifications screen is the API's: coordinators only, their own outbox.
    assert "mailbox unavailable" not in (await client.get("/notifications")).text
    await form_post(
        client, "/signin", {"email": f.lead_user["email"], "password": PASSWORD, "next": "/"}
    )
    assert (await client.get("/notifications")).status_code == 403
    assert (await client.get("/v1/notifications", headers=f.lead)).status_code == 403
