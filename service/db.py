"""asyncpg pool, the per-request transaction, and numbered SQL migrations."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg
import msgspec
from litestar import Request
from litestar.di import NamedDependency

from service.errors import database_down, database_unavailable, not_found
from service.state import AppState

log = logging.getLogger("service.db")
MIGRATION_LOCK = 7_341_202_611  # any constant; shared by every process migrating this database
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_json_enc = msgspec.json.Encoder()

# How a route asks for its transaction-scoped connection: ``db: DB``.
DB = NamedDependency[asyncpg.Connection]

S = TypeVar("S", bound=msgspec.Struct)


def from_row(cls: type[S], row: Any, **fields: Any) -> S:
    """The one way a row becomes a Struct: its columns named like the Struct's fields
    (a field the query did not select keeps its default), and ``fields`` for those that are
    named or computed otherwise. No conversion: the driver's types already are the fields'."""
    columns = {f: row[f] for f in cls.__struct_fields__ if f in row and f not in fields}
    return cls(**columns, **fields)


async def row_or_404(db: asyncpg.Connection, what: str, sql: str, *args: Any) -> asyncpg.Record:
    """The row ``sql`` finds, or 404 naming ``what``. Lookups filter by the caller's
    organisation (or what it may see), so "not there" and "not yours" are one answer."""
    row = await db.fetchrow(sql, *args)
    if row is None:
        raise not_found(what)
    return row


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ,
            schema="pg_catalog",
            encoder=lambda v: _json_enc.encode(v).decode(),
            decoder=msgspec.json.decode,
        )


async def _reset(conn: asyncpg.Connection) -> None:
    # asyncpg's default reset costs a round trip per release (advisory unlock, UNLISTEN,
    # RESET ALL); requests here hold no session state, so only an open transaction matters.
    if conn.is_in_transaction():
        await conn.execute("rollback")


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    # The pool opens connections on demand (also after PostgreSQL restarted: a closed
    # connection is replaced on its next acquire). Refused or timed out means the database
    # is down, not a bug: 503 with Retry-After (service.errors).
    try:
        return await asyncpg.connect(*args, **kwargs)
    except (OSError, TimeoutError) as exc:
        raise database_unavailable() from exc


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        connect=_connect,
        init=_init_connection,
        reset=_reset,
        command_timeout=30,
        timeout=10,  # to connect: an unreachable host answers 503 in seconds, not a minute
    )


async def provide_db(state: AppState, request: Request) -> AsyncGenerator[asyncpg.Connection, None]:
    """One connection per request inside a transaction: an exception rolls everything back.

    Reads (GET/HEAD) skip BEGIN/COMMIT, two round trips on the phone's hottest paths;
    a read that records something (an audit row) does it in one statement. A route (or
    router) with ``opt={"db_transaction": False}`` opens its own transactions: sign-in
    counts a failed attempt, which rolling back the request's transaction would forget.
    A failure to connect or BEGIN is a 503 (service.errors.outage), never a 500.
    """
    # A pool's proxy forwards every Connection method: handlers see it as a Connection.
    conn = cast(asyncpg.Connection, await state.pool.acquire())
    try:
        if request.method in ("GET", "HEAD") or not request.route_handler.opt.get(
            "db_transaction", True
        ):
            yield conn
        else:
            async with conn.transaction():
                yield conn
    except Exception as exc:
        if database_down(exc):
            await expire_after_outage(state.pool)
        raise
    finally:
        try:
            await state.pool.release(conn)
        except asyncpg.InternalClientError:
            # The server dropped it mid-request and asyncpg has already taken it back
            # ("release() called on a free connection holder"): nothing to release.
            log.info("connection already returned to the pool after it was lost")


async def expire_after_outage(pool: asyncpg.Pool) -> None:
    """Replace every pooled connection on its next use, this one before it is released.

    After PostgreSQL went away a connection can look open yet be half-broken (asyncpg
    may hand it out again before it notices, and the next query fails with "another
    operation is in progress": a 500). Cheap: nothing is closed until it is next used.
    """
    await pool.expire_connections()


def migration_files(directory: Path) -> list[tuple[int, str, str]]:
    out = []
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise RuntimeError(f"migration file name must look like 0001_name.sql: {path.name}")
        out.append((int(m.group(1)), path.name, path.read_text()))
    versions = [v for v, _, _ in out]
    if len(set(versions)) != len(versions):
        raise RuntimeError("two migrations share a number")
    return out


async def migrate(dsn: str, directory: Path) -> list[str]:
    """Apply pending migrations in order, under an advisory lock so concurrent starts are safe."""
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                """create table if not exists schema_migrations (
                       version int primary key,
                       name text not null,
                       checksum text not null,
                       applied_at timestamptz not null default now())"""
            )
            done = {
                r["version"]: r["checksum"]
                for r in await conn.fetch("select version, checksum from schema_migrations")
            }
            for version, name, sql in migration_files(directory):
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        log.warning("applied migration %s changed since it was applied", name)
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "insert into schema_migrations (version, name, checksum) values ($1,$2,$3)",
                        version,
                        name,
                        checksum,
                    )
                applied_now.append(name)
                log.info("applied migration %s", name)
        finally:
            await conn.execute("select pg_advisory_unlock($1)", MIGRATION_LOCK)
    finally:
        await conn.close()
    return applied_now
