"""Migration 0023's one-time clean-up of the audit log: rows written before it that named a
person's email or display name lose them (the log refers to people by id, so erasing a
person needs no log edit), a changed name is still recorded as changed, and the log is
append-only again afterwards."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from inspections.wiring import MIGRATIONS
from service import db
from service.devstack import Postgres
from tests.conftest import scratch_database

CLEANUP = 23  # 0023_privacy.sql


@pytest.fixture
async def fresh_dsn(postgres: Postgres) -> AsyncIterator[str]:
    """An empty database of its own in the suite's PostgreSQL (not the migrated template)."""
    async with scratch_database(postgres) as dsn:
        yield dsn


def migrations_before(version: int, into: Path) -> Path:
    """The project's migrations numbered below ``version``, as a folder migrate() reads."""
    for v, name, _ in db.migration_files(MIGRATIONS):
        if v < version:
            shutil.copy(MIGRATIONS / name, into / name)
    return into


async def test_migration_0023_removes_emails_and_names_from_earlier_audit_rows(
    fresh_dsn: str, tmp_path: Path
) -> None:
    before = await db.migrate(fresh_dsn, migrations_before(CLEANUP, tmp_path))
    assert before and all(int(n[:4]) < CLEANUP for n in before)

    conn = await asyncpg.connect(fresh_dsn)
    try:
        org = await conn.fetchval(
            "insert into organisations (name) values ('Northshire') returning id"
        )
        coord = await conn.fetchval(
            """insert into users (organisation_id, email, display_name, password_hash, roles)
               values ($1, 'cora@example.org', 'Cora', 'x', '{coordinator}') returning id""",
            org,
        )
        rows: list[tuple[str, dict[str, Any]]] = [
            ("invite.create", {"email": "rose@example.org", "roles": ["citizen_inspector"]}),
            ("user.update", {"display_name": "Rose Bloggs", "roles": ["citizen_inspector"]}),
            ("invite.accept", {"email": "rose@example.org", "display_name": "Rose"}),
            ("visit.cancel", {"reason": "Outbreak of flu"}),
        ]
        for action, summary in rows:
            await conn.execute(
                """insert into audit_log (organisation_id, actor_id, action, object_type,
                                          object_id, summary)
                   values ($1, $2, $3, 'user', $4, $5)""",
                org,
                coord,
                action,
                str(uuid.uuid4()),
                json.dumps(summary),
            )
    finally:
        await conn.close()

    applied = await db.migrate(fresh_dsn, MIGRATIONS)
    assert applied[0].startswith("0023_")

    conn = await asyncpg.connect(fresh_dsn)
    try:
        after = {
            r["action"]: json.loads(r["summary"])
            for r in await conn.fetch("select action, summary from audit_log order by id")
        }
        # No email or name is left anywhere in the log; the rest of each row stays.
        text = json.dumps(after)
        assert "rose@example.org" not in text and "Rose" not in text
        assert after == {
            "invite.create": {"roles": ["citizen_inspector"]},
            "user.update": {"roles": ["citizen_inspector"], "display_name_changed": True},
            "invite.accept": {"display_name_changed": True},
            "visit.cancel": {"reason": "Outbreak of flu"},
        }
        # The clean-up was the one exception: the log is append-only again.
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("update audit_log set summary = '{}'")
    finally:
        await conn.close()
