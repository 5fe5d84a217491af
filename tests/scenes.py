"""Scenes and data that several test modules build on: an organisation with a visit and
its team, photos, findings, a live server's workers. Fixtures are in conftest.py."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
import msgspec

from inspections.notifications.deliver import DeliveryReport, deliver_once, http_client
from scripts.bench import harness
from service import db
from service.settings import Settings
from tests.conftest import PHOTOS
from tests.helpers import Api

# From test_checklists.py
SMALL = {
    "title": "Quick look",
    "service_kinds": ["care_home"],
    "contributors": [{"name": "Residents' relatives group", "role": "co-designers"}],
    "content": {
        "sections": [
            {
                "title": "Dignity",
                "questions": [
                    {
                        "type": "rating",
                        "key": "respect",
                        "prompt": "Are people treated with respect?",
                        "domain": "dignity",
                        "labels": ["Poor", "Fair", "Good", "Great"],
                    },
                    {
                        "type": "yes_no",
                        "key": "smells",
                        "prompt": "Unpleasant smells?",
                        "domain": "environment",
                        "good_answer": False,
                        "allow_na": True,
                    },
                ],
            }
        ]
    },
}


# From test_visits.py
NOW = dt.datetime.now(dt.UTC)


WINDOW = {
    "starts_at": (NOW + dt.timedelta(hours=1)).isoformat(),
    "ends_at": (NOW + dt.timedelta(hours=4)).isoformat(),
}


async def add_service(
    api: Api, coord: dict[str, str], name: str = "Elm House", **fields: Any
) -> dict[str, Any]:
    """A care home (unless ``fields`` say otherwise) added by the coordinator ``coord``."""
    r = await api.client.post(
        "/v1/services", headers=coord, json={"name": name, "kind": "care_home", **fields}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def published_checklist(
    api: Api, coord: dict[str, str], content: dict[str, Any]
) -> dict[str, Any]:
    """A checklist made of ``content`` and published by the coordinator ``coord``."""
    r = await api.client.post("/v1/checklists", headers=coord, json=content)
    assert r.status_code == 201, r.text
    checklist = r.json()
    r = await api.client.post(f"/v1/checklists/{checklist['id']}/publish", headers=coord)
    assert r.status_code == 200, r.text
    return checklist


class Scene:
    """A coordinator, a care home, a published checklist, two cleared citizens and a pro."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def build(self) -> Scene:
        api = self.api
        self.org = await api.org()
        self.coord = await api.login(await api.user(self.org, "coordinator"))
        self.manager = await api.user(self.org, "service_manager", name="Manager Mo")
        self.service = await add_service(
            api, self.coord, lat=43.467, lon=11.885, manager_ids=[self.manager["id"]]
        )
        self.checklist = await published_checklist(api, self.coord, SMALL)
        self.ann = await api.cleared_citizen(self.org, name="Ann")
        self.bob = await api.cleared_citizen(self.org, name="Bob")
        self.pro = await api.user(self.org, "professional_inspector", name="Dr Pat")
        return self

    async def ash_court(self) -> dict[str, Any]:
        """A second care home of the organisation's, with no visits of its own yet."""
        return await add_service(self.api, self.coord, "Ash Court", lat=43.4, lon=11.8)

    def team(self, *members: tuple[dict[str, Any], str]) -> list[dict[str, Any]]:
        return [{"user_id": u["id"], "perspective": p} for u, p in members]

    async def visit(self, team: list[dict[str, Any]] | None = None, **extra: Any) -> Any:
        team = team or self.team(
            (self.ann, "citizen"), (self.bob, "citizen"), (self.pro, "professional")
        )
        return await self.api.client.post(
            "/v1/visits",
            headers=self.coord,
            json={
                "service_id": self.service["id"],
                "checklist_id": self.checklist["id"],
                **WINDOW,
                "team": team,
                **extra,
            },
        )


def answers(respect: int = 3, smells: Any = False) -> list[dict[str, Any]]:
    return [
        {"question_key": "respect", "value": respect, "comment": "kind staff"},
        {"question_key": "smells", "value": smells},
    ]


# From test_evidence.py
GPS_PHOTO = PHOTOS / "gps" / "DSCN0010.jpg"


# DSCN0010.jpg: Nikon COOLPIX P6000, 2008-10-22 16:29:49 (camera time), about 43.4674 N 11.8851 E.
PHOTO_LAT, PHOTO_LON = 43.46744833333333, 11.885126666663888


class Photos:
    def __init__(self, api: Api, scene: Scene, visit: dict[str, Any]) -> None:
        self.api, self.scene, self.visit = api, scene, visit

    async def upload(
        self,
        headers: dict[str, str],
        content: bytes,
        name: str = "photo.jpg",
        evidence_id: str | None = None,
        **meta: Any,
    ) -> httpx.Response:
        metadata = {
            "evidence_id": evidence_id or str(uuid.uuid4()),
            "visit_id": self.visit["id"],
            **meta,
        }
        return await self.api.client.post(
            "/v1/evidence",
            headers=headers,
            files={
                "metadata": (None, msgspec.json.encode(metadata), "application/json"),
                "file": (name, content, "image/jpeg"),
            },
        )

    async def settled(self, headers: dict[str, str], r: httpx.Response) -> dict[str, Any]:
        """The evidence an upload made, once processed: GET its poll link until it is no
        longer 'processing' (a condition; the deadline only turns a hang into a failure)."""
        return await settled(self.api, headers, r)

    async def upload_ready(
        self, headers: dict[str, str], content: bytes, **kw: Any
    ) -> dict[str, Any]:
        """Upload (202, acknowledged once stored) and wait until it is ready."""
        r = await self.upload(headers, content, **kw)
        assert r.status_code in (200, 202), r.text
        ev = await self.settled(headers, r)
        assert ev["status"] == "ready", ev
        return ev


async def settled(api: Api, headers: dict[str, str], r: httpx.Response) -> dict[str, Any]:
    ev = r.json()
    if ev["status"] != "processing":
        return ev
    if r.request.method == "POST":  # an upload's answer: 202 and where to poll
        assert r.status_code == 202 and r.headers["location"] == ev["poll"], r.text
    async with asyncio.timeout(120):
        while True:
            got = await api.client.get(ev["poll"], headers=headers)
            assert got.status_code == 200, got.text
            if got.json()["status"] != "processing":
                return got.json()
            await asyncio.sleep(0.05)  # between polls; the loop ends on the condition


async def scene_with_visit(
    api: Api,
    lat: float = PHOTO_LAT,
    lon: float = PHOTO_LON,
    checklist: dict[str, Any] | None = None,
) -> Photos:
    s = await Scene(api).build()
    await api.client.patch(
        f"/v1/services/{s.service['id']}",
        headers=s.coord,
        json={"lat": lat, "lon": lon, "geofence_m": 150},
    )
    if checklist is not None:
        s.checklist = await published_checklist(api, s.coord, checklist)
    visit = (await s.visit()).json()
    return Photos(api, s, visit)


async def bucket_keys(api: Api, org: str) -> list[str]:
    """This test's objects (the bucket is shared by the session; organisations are not)."""
    store = api.client.app.state.store
    out = await store.call("list_objects_v2", Bucket=store.bucket, Prefix=f"orgs/{org}/")
    return [o["Key"] for o in out.get("Contents", [])]


# From test_findings.py
VISIT_DAY = dt.datetime(2025, 12, 10, 10, tzinfo=dt.UTC)


PUBLISHED_ON = "2025-12-15"  # a Monday: 20 working days skip Christmas, Boxing Day, 1 Jan


class Findings:
    """A visit on 10 December 2025 by Ann and Bob (citizens) and Dr Pat, and the people
    around it: coordinator, the care home's manager, a safeguarding lead, a scrutiny member."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def build(self) -> Findings:
        api = self.api
        s = self.s = await Scene(api).build()
        # Cleared back then: training done long before the visit.
        await api.conn.execute(
            "update training_records set completed_on = '2025-01-01' where organisation_id = $1",
            s.org,
        )
        r = await s.visit(
            starts_at=VISIT_DAY.isoformat(),
            ends_at=(VISIT_DAY + dt.timedelta(hours=3)).isoformat(),
        )
        assert r.status_code == 201, r.text
        self.visit = r.json()
        self.coord = s.coord
        self.ann = await api.login(s.ann)
        self.bob = await api.login(s.bob)
        self.pro = await api.login(s.pro)
        self.manager = await api.login(s.manager)
        self.lead_user = await api.user(s.org, "safeguarding_lead", email="lead@example.org")
        self.lead = await api.login(self.lead_user)
        self.scrutiny = await api.login(await api.user(s.org, "scrutiny_member"))
        return self

    async def raise_(self, who: dict[str, str], **body: Any) -> Any:
        fid = body.pop("id", None) or str(uuid.uuid4())
        return await self.api.client.put(
            f"/v1/visits/{self.visit['id']}/findings/{fid}", headers=who, json=body
        )

    async def update(self, who: dict[str, str], finding_id: str, **body: Any) -> Any:
        return await self.api.client.put(
            f"/v1/findings/{finding_id}/updates/{uuid.uuid4()}", headers=who, json=body
        )

    async def get(self, who: dict[str, str], finding_id: str) -> Any:
        return await self.api.client.get(f"/v1/findings/{finding_id}", headers=who)

    async def draft_report(self, **body: Any) -> dict[str, Any]:
        """The coordinator drafts the visit's report (``summary=...``, or nothing)."""
        r = await self.api.client.put(
            f"/v1/visits/{self.visit['id']}/report", headers=self.coord, json=body
        )
        return r.json()

    async def publish(
        self, report: dict[str, Any], published_on: str | None = None
    ) -> httpx.Response:
        """The coordinator publishes ``report``: today, or dated ``published_on``."""
        return await self.api.client.post(
            f"/v1/reports/{report['id']}/publish",
            headers=self.coord,
            json={"published_on": published_on} if published_on else None,
        )

    async def published_report(self, summary: str = "Warm.") -> dict[str, Any]:
        """The visit's report, drafted and published on PUBLISHED_ON (a Monday)."""
        report = await self.draft_report(summary=summary)
        r = await self.publish(report, PUBLISHED_ON)
        assert r.status_code == 200, r.text
        return report


CALL_BELLS = {
    "title": "Call bells left unanswered",
    "description": "Two call bells rang for over ten minutes in the afternoon.",
    "domain": "safety",
    "question_keys": ["respect"],
    "severity": "major",
    "recommendation": "Answer call bells within three minutes and audit response times.",
}


NAMES = {
    "title": "Doors have no names",
    "severity": "minor",
    "recommendation": "Put residents' chosen names and photos on their doors.",
}


GARDEN = {"title": "A lovely garden, used every day", "severity": "positive"}


CONCERN = {
    "title": "Bruising on a resident's arm",
    "description": "Mrs A. said staff were rough with her last night.",
    "severity": "safeguarding",
}


# From test_caches_live.py
@dataclass
class Live:
    base: str
    port: int
    workers: list[int]
    seen: set[int] = field(default_factory=set)


async def fresh_request(
    live: Live,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    source: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes, int]:
    """One request on a brand-new connection from ``source``: (status, headers, body, the
    worker pid that answered). The benches trace workers the same way (harness)."""
    status, fields, content, worker = await harness.fresh_request(
        live.port, live.workers, method, path, headers, body, source
    )
    assert worker is not None, f"no worker of {live.workers} holds our connection"
    return status, fields, content, worker


# From test_scorecards.py
CHECKLIST = {
    "title": "Dignity and safety",
    "service_kinds": ["care_home"],
    "content": {
        "sections": [
            {
                "title": "Dignity",
                "questions": [
                    {
                        "type": "rating",
                        "key": "privacy",
                        "prompt": "Is privacy respected?",
                        "domain": "dignity",
                        "labels": ["Poor", "Fair", "Good", "Excellent"],
                    },
                    {
                        "type": "rating",
                        "key": "respect",
                        "prompt": "Are people spoken to with respect?",
                        "domain": "dignity",
                        "labels": ["Poor", "Fair", "Good", "Excellent"],
                        "weight": 2,
                    },
                ],
            },
            {
                "title": "Safety",
                "questions": [
                    {
                        "type": "yes_no",
                        "key": "call_bells",
                        "prompt": "Are call bells answered?",
                        "domain": "safety",
                    },
                    {
                        "type": "pass_fail",
                        "key": "clutter",
                        "prompt": "Corridors free of clutter?",
                        "domain": "safety",
                        "allow_na": True,
                    },
                ],
            },
        ]
    },
}


async def seeded(api: Api) -> tuple[Scene, list[str]]:
    """Three recent visits; citizens rate dignity low, professionals high; safety agrees."""
    s = await Scene(api).build()
    s.checklist = await published_checklist(api, s.coord, CHECKLIST)
    now = dt.datetime.now(dt.UTC)
    visits = []
    for days_ago, citizen_dignity in ((20, (1, 2)), (12, (2, 1)), (5, (1, 1))):
        start = now - dt.timedelta(days=days_ago)
        r = await s.visit(
            starts_at=start.isoformat(), ends_at=(start + dt.timedelta(hours=3)).isoformat()
        )
        assert r.status_code == 201, r.text
        visit = r.json()
        visits.append(visit["id"])
        for who, (privacy, respect) in (
            (s.ann, (citizen_dignity[0], citizen_dignity[1])),
            (s.bob, (citizen_dignity[1], citizen_dignity[0])),
            (s.pro, (4, 4)),
        ):
            await submit(api, visit["id"], who, privacy, respect)
    return s, visits


async def submit(api: Api, visit_id: str, who: dict[str, Any], privacy: int, respect: int) -> None:
    """A final submission of SMALL's checklist rating privacy and respect."""
    r = await api.client.put(
        f"/v1/visits/{visit_id}/submissions/{uuid.uuid4()}",
        headers=await api.login(who),
        json={
            "state": "final",
            "answers": [
                {"question_key": "privacy", "value": privacy},
                {"question_key": "respect", "value": respect},
                {"question_key": "call_bells", "value": True},
                {"question_key": "clutter", "na": True},
            ],
        },
    )
    assert r.status_code == 201, r.text


# From test_scorecard_page.py
class _Text(HTMLParser):
    """The words a person reads (no markup, no stylesheet), and the headings."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self._skip = 0
        self._heading: str | None = None
        self._heading_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        if tag in ("h1", "h2", "h3"):
            self._heading, self._heading_text = tag, []
        if tag == "br":
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1
        if tag == self._heading:
            self.headings.append((tag, " ".join("".join(self._heading_text).split())))
            self._heading = None
        if tag in ("p", "li", "tr", "h1", "h2", "h3", "title", "desc", "caption", "div"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)
            if self._heading:
                self._heading_text.append(data)


def read(html: str) -> tuple[str, list[tuple[str, str]]]:
    p = _Text()
    p.feed(html)
    lines = (" ".join(line.split()) for line in "".join(p.parts).split("\n"))
    return "\n".join(line for line in lines if line), p.headings


# From test_notifications.py
def signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """How a receiver checks a delivery (written out here, independently of sign())."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(expected, s) for s in offered)


async def org_with_webhook(
    api: Api, url: str, *events: str
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """An organisation whose coordinator (their Authorization header) registered a webhook
    at ``url`` for ``events`` through the API: (org, coord, the webhook with its secret)."""
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    return org, coord, await api.webhook(coord, url, *events)


async def webhook_event_due(api: Api, url: str) -> None:
    """A webhook at ``url`` (inserted as if registered when its host was public, so the
    API's address check is not met) with one report.published event due."""
    org = await api.org()
    user = await api.user(org, "coordinator")
    hook = await api.conn.fetchval(
        """insert into webhooks (organisation_id, url, secret, events, created_by)
           values ($1, $2, 'whsec_' || repeat('A', 44), '{report.published}', $3)
           returning id""",
        org,
        url,
        user["id"],
    )
    await api.conn.execute(
        """insert into outbox (organisation_id, event, event_key, channel, recipient, payload)
           values ($1, 'report.published', $2, 'webhook', $3, '{}')""",
        org,
        f"report.published:{uuid.uuid4()}",
        str(hook),
    )


async def deliver_with(settings: Settings, http: httpx.AsyncClient | None = None) -> DeliveryReport:
    """One delivery pass as a worker process with ``settings`` runs it: its own pool and its
    own HTTP client, built from these settings (so their address rules apply) unless
    ``http`` is given; the client is closed after the pass either way."""
    assert settings.database_url  # the test settings always name the scratch database
    pool = await db.create_pool(settings.database_url, 1, 2)
    http = http or http_client(settings)
    try:
        return await deliver_once(pool, settings, http)
    finally:
        await http.aclose()
        await pool.close()


# One pass/fail question whose 'fail' needs a photo (the checklist's evidence rule).
PHOTO_RULE_CHECKLIST: dict[str, Any] = {
    "title": "Photo rules",
    "content": {
        "sections": [
            {
                "title": "Environment",
                "questions": [
                    {
                        "type": "pass_fail",
                        "key": "clean",
                        "prompt": "Is it clean?",
                        "domain": "cleanliness",
                        "evidence": {"when": "points_at_or_below", "points": 1},
                    },
                ],
            }
        ]
    },
}


async def reported(api: Api) -> tuple[Findings, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Two recommendations to Elm House, in a report sent for a factual check; a concern."""
    f = await Findings(api).build()
    bells = (await f.raise_(f.ann, **CALL_BELLS)).json()
    names = (await f.raise_(f.bob, **NAMES)).json()
    concern = (await f.raise_(f.ann, **CONCERN)).json()
    report = await f.draft_report(summary="Warm.")
    r = await api.client.post(f"/v1/reports/{report['id']}/send", headers=f.coord)
    assert r.status_code == 200, r.text
    f.report = report  # type: ignore[attr-defined]
    return f, bells, names, concern


async def publish(api: Api, f: Findings) -> None:
    r = await f.publish(f.report, PUBLISHED_ON)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
