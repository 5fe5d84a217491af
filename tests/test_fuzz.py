"""Every operation in /schema/openapi.json, fuzzed against a live server: never a 5xx.

Schemathesis generates requests from the OpenAPI document, both valid ones and ones that
break it (wrong types, missing fields, odd characters...), signed in as a coordinator.
Path parameters are sometimes real objects (a service, a checklist, a visit, a submission,
a finding...), so requests get past "not found" into the routes themselves. Bounded and
deterministic: a fixed number of examples per operation, derandomized, no example database.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.helpers import PASSWORD, Api
from tests.scenes import Scene, answers

EXAMPLES = 8  # per operation and generation mode: ~1,600 requests in all, about 90 s


async def _objects(api: Api, base: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A coordinator's bearer header, and real ids to put in paths by parameter name."""
    s = await Scene(api).build()
    visit = (await s.visit()).json()
    ann = await api.login(s.ann)
    submission = str(uuid.uuid4())
    r = await api.client.put(
        f"/v1/visits/{visit['id']}/submissions/{submission}",
        headers=ann,
        json={"state": "draft", "answers": answers()},
    )
    assert r.status_code == 201, r.text
    finding = str(uuid.uuid4())
    r = await api.client.put(
        f"/v1/visits/{visit['id']}/findings/{finding}",
        headers=ann,
        json={"title": "Call bells unanswered", "severity": "major", "domain": "safety"},
    )
    assert r.status_code == 201, r.text
    email = await api.conn.fetchval("select email from users where 'coordinator' = any(roles)")
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post(
            "/v1/auth/token", json={"email": email, "password": PASSWORD, "device": "fuzzer"}
        )
    assert r.status_code == 200, r.text
    real = {
        "service_id": s.service["id"],
        "checklist_id": s.checklist["id"],
        "version": 1,
        "visit_id": visit["id"],
        "submission_id": submission,
        "finding_id": finding,
        "user_id": s.ann["id"],  # not the coordinator's own: the fuzzer must stay signed in
    }
    return {"Authorization": f"Bearer {r.json()['access_token']}"}, real


def _fuzz(
    operation: Any,
    base: str,
    session: requests.Session,
    auth: dict[str, str],
    real: dict[str, Any],
    failures: list[str],
    statuses: dict[int, int],
) -> int:
    """Send one operation's generated requests; returns how many, notes every 5xx."""
    label = f"{operation.method.upper()} {operation.path}"
    ours = {p.name: real[p.name] for p in operation.path_parameters if p.name in real}
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    if ours:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=ours))
    sent = 0

    @settings(
        max_examples=EXAMPLES * len(strategies),
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(*strategies))
    def fuzz(case: Any) -> None:
        nonlocal sent
        response = case.call(base_url=base, session=session, headers=auth, timeout=60)
        sent += 1
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            failures.append(
                f"{label} -> {response.status_code}: {case.as_curl_command()}\n"
                f"{response.text[:300]}"
            )

    fuzz()
    return sent


async def test_no_operation_answers_5xx_to_generated_requests(api: Api, base_url: str) -> None:
    auth, real = await _objects(api, base_url)
    async with httpx.AsyncClient(base_url=base_url) as c:
        document = (await c.get("/schema/openapi.json")).json()
    operations = [
        result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()
    ]
    failures: list[str] = []
    statuses: dict[int, int] = {}

    def run_all() -> list[int]:
        with requests.Session() as session:
            return [
                _fuzz(op, base_url, session, auth, real, failures, statuses) for op in operations
            ]

    sent = await asyncio.to_thread(run_all)
    print(f"\nfuzzed {len(operations)} operations with {sum(sent)} requests")
    print("statuses:", dict(sorted(statuses.items())))
    # Many requests get past "not found" into the routes, and hundreds do real work.
    assert statuses.get(200, 0) + statuses.get(201, 0) > 200 and statuses.get(422, 0) > 100
    assert len(operations) > 50 and all(sent)
    assert not failures, "\n\n".join(failures[:20])
