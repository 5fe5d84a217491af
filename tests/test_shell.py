"""The app shell: problem+json everywhere, health/ready, migrations, OpenAPI, CLI, logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from inspections.wiring import MIGRATIONS
from service import db
from service.app import create_app
from service.devstack import SeaweedFS
from service.errors import handle_exception
from service.logs import request_id_middleware
from service.settings import Settings
from tests.conftest import ROOT, make_settings
from tests.helpers import PASSWORD, Api, assert_problem, post_token


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
    r = await post_token(client, "coord@example.org", device="laptop")
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


def _cli_env(**extra: str) -> dict[str, str]:
    """The environment of a person typing the README's commands (no settings of ours)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATA_DIR")}
    return {**env, "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", **extra}


def test_cli_says_which_database_it_used(stack_dir, postgres, settings) -> None:  # type: ignore[no-untyped-def]
    """DATA_DIR names the data folder whose embedded PostgreSQL the CLI uses, and it says so."""
    run = subprocess.run(
        [sys.executable, "-m", "service", "create-org", "--name", "Via DATA_DIR"],
        env=_cli_env(DATA_DIR=str(stack_dir)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(run.stdout)["name"] == "Via DATA_DIR"
    assert f"using embedded PostgreSQL in {stack_dir / 'pg'} (already running)" in run.stderr
    assert postgres.owns_server  # the test cluster was reused, not stopped by the CLI
    dsn = settings.database_url
    password = postgres.password_file.read_text().strip()  # the cluster's generated one
    run = subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        env=_cli_env(DATABASE_URL=dsn),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"using DATABASE_URL {dsn.replace(password, '***')}" in run.stderr
    assert password not in run.stderr + run.stdout


async def test_serve_is_what_the_cli_finds_and_ctrl_c_stops_it_quietly(  # type: ignore[no-untyped-def]
    seaweed, tmp_path
) -> None:
    """The first hour: serve with its own DATA_DIR, the README's CLI commands without it,
    sign in, a photo through the worker processes, then Ctrl-C: no traceback anywhere."""
    from service.devstack import ServeRecord, free_port
    from tests.scenes import GPS_PHOTO, Photos, Scene

    default_data = Path(Settings.from_env({}).data_dir)
    other = ServeRecord.running(default_data)
    assert other is None, f"stop the scripts/serve running on this checkout (pid {other.pid})"
    data_dir, port = tmp_path / "data", free_port()
    env = _cli_env(
        DATA_DIR=str(data_dir),
        PORT=str(port),
        S3_ENDPOINT_URL=seaweed.endpoint,
        S3_BUCKET="coassess-test",
        S3_ACCESS_KEY=seaweed.access_key,
        S3_SECRET_KEY=seaweed.secret_key,
        IMAGE_WORKERS="2",
        LOG_LEVEL="WARNING",
    )
    serve = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "service", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches it
    )
    try:
        banner = await asyncio.to_thread(_read_until, serve, "seed-demo")
        assert f"DATA_DIR={data_dir} .venv/bin/python -m service create-org" in banner
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(_wait_ready, serve, base)

        # The README's commands, typed without DATA_DIR, reach serve's database.
        def cli(*args: str) -> tuple[dict, str]:
            out = subprocess.run(
                [sys.executable, "-m", "service", *args],
                env=_cli_env(),
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            return json.loads(out.stdout), out.stderr

        org, said = await asyncio.to_thread(cli, "create-org", "--name", "Healthwatch Northshire")
        assert f"using embedded PostgreSQL in {data_dir / 'pg'} (the one scripts/serve" in said
        await asyncio.to_thread(
            cli, "create-user", "--org", org["id"], "--email", "coord@example.org",
            "--password", "a long passphrase", "--role", "coordinator",
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=base) as http:
            r = await post_token(http, "coord@example.org", "a long passphrase", "laptop")
            assert r.status_code == 200, r.text

            # A photo, so that the image worker processes exist when Ctrl-C arrives.
            dsn = banner.split("PostgreSQL (embedded): ")[1].split()[0]
            conn = await asyncpg.connect(dsn)
            try:
                api = Api(http, conn)  # type: ignore[arg-type]
                scene = await Scene(api).build()
                visit = (await scene.visit()).json()
                photos = Photos(api, scene, visit)
                ann = await api.login(scene.ann)
                up = await photos.upload(ann, GPS_PHOTO.read_bytes())
                assert up.status_code in (201, 202), up.text
                # Processed by the workers (at once, or after a 202: until it is).
                deadline = time.monotonic() + 120
                while up.json()["status"] == "processing" and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)  # the poll's pace; the condition ends the wait
                    up = await http.get(f"/v1/evidence/{up.json()['id']}", headers=ann)
                assert up.json()["status"] == "ready", up.text
            finally:
                await conn.close()

        os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        # A deadline only against a hang; it returns as soon as everything has stopped.
        out, err = await asyncio.to_thread(serve.communicate, timeout=120)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert serve.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert ServeRecord.running(default_data) is None  # the CLI no longer points at it
    # Nothing it started outlives it (the photo workers, their fork server): wait for the
    # condition, as the last of them exit just after serve itself.
    assert await asyncio.to_thread(_group_ends, serve.pid), "processes of serve's group still run"


def _read_until(proc: subprocess.Popen[str], text: str) -> str:
    """serve's stdout up to the line containing ``text``, or its stderr if it died."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(
        "serve ended early:\n" + "".join(seen) + (proc.stderr.read() if proc.stderr else "")
    )


def _group_ends(pgid: int) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _wait_ready(proc: subprocess.Popen[str], base: str) -> None:
    # A condition, not a duration: until /ready answers (a deadline turns a hang into a failure).
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve did not become ready (exit code {proc.poll()})")
