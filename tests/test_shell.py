"""The app shell: problem+json everywhere, health/ready, migrations, OpenAPI, CLI, logs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from inspections.wiring import MIGRATIONS
from service import db
from service.app import create_app
from service.devstack import SeaweedFS
from service.errors import handle_exception
from service.logs import request_id_middleware
from tests.conftest import ROOT, make_settings
from tests.helpers import PASSWORD, Api, assert_problem


async def test_health_and_ready(client: AsyncTestClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    r = await client.get("/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


async def test_ready_is_503_naming_the_store_when_it_stops(database_url, stack_dir) -> None:  # type: ignore[no-untyped-def]
    s3 = SeaweedFS(stack_dir / "seaweedfs-ready")
    s3.start()
    s3.ensure_bucket("coassess-test")
    try:
        async with AsyncTestClient(app=create_app(make_settings(database_url, s3))) as c:
            assert (await c.get("/ready")).status_code == 200
            s3.stop()
            body = assert_problem(await c.get("/ready"), 503)
            assert body["detail"] == "Unreachable: object_store."
            assert (await c.get("/health")).status_code == 200
    finally:
        s3.stop()


async def test_problem_json_for_bad_bodies(api: Api) -> None:
    c = api.client
    r = await c.post(
        "/v1/auth/token", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(r, 400, "malformed-json")
    r = await c.post(
        "/v1/auth/token", json={"email": "a@example.org", "password": 5, "device": "x"}
    )
    body = assert_problem(r, 422, "validation")
    assert body["errors"] == [{"field": "$.password", "reason": body["errors"][0]["reason"]}]
    assert "str" in body["errors"][0]["reason"]
    r = await c.post("/v1/auth/token", json={"email": "a@example.org", "device": "x"})
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "$.password"
    assert "missing required field" in body["errors"][0]["reason"]
    r = await c.post(
        "/v1/auth/token",
        json={"email": "a@example.org", "password": "x", "device": "x", "remember_me": True},
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "$.remember_me"
    r = await c.post(
        "/v1/auth/token", json={"email": "not-an-email", "password": "x", "device": "x"}
    )
    assert assert_problem(r, 422)["errors"][0]["field"] == "$.email"


async def test_oversized_body_is_413_and_changes_nothing(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    huge = {"email": "big@example.org", "roles": ["citizen_inspector"], "pad": "x" * 2_000_000}
    r = await api.client.post("/v1/invites", json=huge, headers=coord)
    assert_problem(r, 413, "body-too-large")
    assert await api.conn.fetchval("select count(*) from invites") == 0


async def test_unknown_route_and_method(client: AsyncTestClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404)
    assert_problem(await client.delete("/health"), 405)


async def test_request_id_is_echoed_and_500s_carry_it() -> None:
    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    app = Litestar(
        [boom], exception_handlers={Exception: handle_exception}, middleware=[request_id_middleware]
    )
    async with AsyncTestClient(app=app) as c:
        r = await c.get("/boom", headers={"x-request-id": "req-123"})
        body = assert_problem(r, 500, "internal")
        assert body["request_id"] == "req-123" == r.headers["x-request-id"]
        assert "secret" not in r.text and "Traceback" not in r.text


async def test_openapi_describes_every_route(client: AsyncTestClient) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    paths = spec["paths"]
    for p in [
        "/v1/auth/token",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/invites",
        "/v1/invites/{code}/accept",
        "/v1/me",
        "/v1/users",
        "/v1/users/{user_id}",
        "/v1/users/{user_id}/training",
        "/v1/users/{user_id}/devices",
        "/v1/users/{user_id}/devices/{device_id}",
        "/v1/audit",
        "/health",
        "/ready",
        "/v1/services",
        "/v1/checklists/{checklist_id}/publish",
        "/v1/visits/{visit_id}/bundle",
        "/v1/visits/{visit_id}/submissions/{submission_id}",
        "/v1/evidence",
        "/v1/evidence/uploads",
        "/v1/evidence/{evidence_id}/complete",
        "/v1/visits/{visit_id}/evidence",
    ]:
        assert p in paths, p
    # Routes that read their own headers or stream their bodies still say so.
    bundle = paths["/v1/visits/{visit_id}/bundle"]["get"]
    assert "If-None-Match" in [x["name"] for x in bundle["parameters"]]
    assert {"200", "304"} <= set(bundle["responses"])
    upload = paths["/v1/evidence"]["post"]["requestBody"]["content"]
    assert set(upload["multipart/form-data"]["schema"]["properties"]) == {"metadata", "file"}
    token = paths["/v1/auth/token"]["post"]
    assert "401" in token["responses"] and "422" in token["responses"]
    assert "application/problem+json" in token["responses"]["401"]["content"]
    assert (await client.get("/schema")).status_code == 200


async def test_migrations_are_idempotent_and_safe_under_concurrent_starts(postgres) -> None:  # type: ignore[no-untyped-def]
    dsn = postgres.ensure_database("migrate_race")
    results = await asyncio.gather(*(db.migrate(dsn, MIGRATIONS) for _ in range(4)))
    applied = [r for r in results if r]
    assert len(applied) == 1 and applied[0][0] == "0001_accounts.sql"
    assert await db.migrate(dsn, MIGRATIONS) == []
    conn = await asyncpg.connect(dsn)
    try:
        n = await conn.fetchval("select count(*) from schema_migrations")
        assert n == len(list(MIGRATIONS.glob("*.sql")))
    finally:
        await conn.close()


async def test_cli_bootstraps_a_coordinator_who_can_sign_in(settings, client) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "DATABASE_URL": settings.database_url}

    def cli(*args: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "service", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout)

    org = await asyncio.to_thread(cli, "create-org", "--name", "Healthwatch Northshire")
    user = await asyncio.to_thread(
        cli,
        "create-user",
        "--org",
        org["id"],
        "--email",
        "coord@example.org",
        "--password",
        PASSWORD,
        "--role",
        "coordinator",
        "--role",
        "scrutiny_member",
    )
    assert user["roles"] == ["coordinator", "scrutiny_member"]
    r = await client.post(
        "/v1/auth/token",
        json={"email": "coord@example.org", "password": PASSWORD, "device": "laptop"},
    )
    assert r.status_code == 200
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["organisation_id"] == org["id"]
    bad = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "service",
            "create-user",
            "--org",
            "nope",
            "--email",
            "x@example.org",
            "--password",
            PASSWORD,
            "--role",
            "coordinator",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "UUID" in bad.stderr
