"""One real PostgreSQL and one real SeaweedFS per test session, started here.

Migrations run once into a template database; every test gets its own clone of it,
and the app is built with ``create_app(settings)`` inside Litestar's AsyncTestClient.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from inspections.wiring import MIGRATIONS
from service import db
from service.app import create_app
from service.devstack import Postgres, SeaweedFS
from service.settings import Settings
from tests.helpers import Api

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
TEMPLATE = "coassess_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def stack_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="coassess-test-") as d:
        os.chmod(d, 0o755)
        yield Path(d)


@pytest.fixture(scope="session")
def postgres(stack_dir: Path) -> Iterator[Postgres]:
    pg = Postgres(stack_dir / "pg", fast=True)
    pg.start()  # fails loudly (with the server log) if PostgreSQL cannot start
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def seaweed(stack_dir: Path) -> Iterator[SeaweedFS]:
    s3 = SeaweedFS(stack_dir / "seaweedfs")
    s3.start()
    s3.ensure_bucket("coassess-test")
    yield s3
    s3.stop()


@pytest.fixture(scope="session")
async def template_dsn(postgres: Postgres) -> str:
    dsn = postgres.ensure_database(TEMPLATE)
    await db.migrate(dsn, MIGRATIONS)
    return dsn


@pytest.fixture
async def database_url(postgres: Postgres, template_dsn: str) -> AsyncIterator[str]:
    name = f"t_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(postgres.dsn())
    try:
        await admin.execute(f'create database "{name}" template "{TEMPLATE}"')
    finally:
        await admin.close()
    yield template_dsn.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(postgres.dsn())
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


def make_settings(database_url: str, seaweed: SeaweedFS, **overrides: object) -> Settings:
    base: dict[str, object] = dict(
        database_url=database_url,
        s3_endpoint_url=seaweed.endpoint,
        s3_bucket="coassess-test",
        s3_access_key=seaweed.access_key,
        s3_secret_key=seaweed.secret_key,
        jwt_secret="test-secret-" + "x" * 32,
        # Cheap hashing keeps the suite fast; production uses argon2-cffi's defaults.
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        signin_rate_per_minute=1000,
        db_pool_min=1,
        db_pool_max=5,
        log_level="WARNING",
        # Tests run reminder scans themselves, on the dates they choose.
        reminder_interval_s=0,
    )
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, seaweed: SeaweedFS) -> Settings:
    return make_settings(database_url, seaweed)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings)) as c:
        yield c


@pytest.fixture
async def api(client: AsyncTestClient, settings: Settings) -> AsyncIterator[Api]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        yield Api(client, conn)
    finally:
        await conn.close()
