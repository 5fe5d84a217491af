"""Command line: serve, migrate, and bootstrap an organisation and its first people.

Run from the project's venv with no settings and it uses the same embedded PostgreSQL
(in DATA_DIR) that ``scripts/serve`` uses; with DATABASE_URL it uses that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast
from uuid import UUID

import asyncpg
import msgspec
from argon2 import PasswordHasher

from service import db
from service.auth import ROLES
from service.devstack import ServeRecord, redact_dsn
from service.processes import descendants
from service.settings import Settings

if TYPE_CHECKING:
    from service.storage import ObjectStore

DB_NAME = "coassess"
SERVER_STOP_S = 30  # granian's graceful stop (in-flight requests, workers' shutdown), then SIGKILL


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _default_data_dir() -> Path:
    return Path(Settings.from_env({}).data_dir)


def find_data_dir(settings: Settings, env: Mapping[str, str]) -> Settings:
    """Without DATA_DIR, a running serve's data folder (its embedded database) wins."""
    if env.get("DATA_DIR") or settings.database_url:
        return settings
    serving = ServeRecord.running(_default_data_dir())
    if serving is None:
        return settings
    if serving.database != "embedded":
        raise SystemExit(
            f"error: scripts/serve (pid {serving.pid}) uses DATABASE_URL {serving.database}; "
            "set DATABASE_URL for this command too."
        )
    return msgspec.structs.replace(settings, data_dir=serving.data_dir)


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The DSN to use, said on stderr; starts the embedded cluster if DATABASE_URL is unset."""
    if settings.database_url:
        _say(f"using DATABASE_URL {redact_dsn(settings.database_url)}")
        yield settings.database_url
        return
    from service.devstack import Postgres

    pg = Postgres(Path(settings.data_dir) / "pg")
    pg.start()
    serving = ServeRecord.running(_default_data_dir())
    ours = serving is not None and Path(serving.data_dir).absolute() == pg.data_dir.parent
    if serving is not None and ours:
        how = f"the one scripts/serve (pid {serving.pid}) uses"
    elif pg.owns_server:
        how = "started for this command and stopped after it"
    else:
        how = "already running"
    _say(
        f"using embedded PostgreSQL in {pg.data_dir} ({how}); "
        "set DATA_DIR or DATABASE_URL to use another"
    )
    if serving is not None and not ours:
        _say(f"note: scripts/serve (pid {serving.pid}) uses {serving.data_dir}, not this one")
    try:
        yield pg.ensure_database(DB_NAME)
    finally:
        pg.stop()


def _migrations() -> Path:
    from inspections.wiring import MIGRATIONS

    return MIGRATIONS


def _out(obj: object) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")


async def _create_org(dsn: str, name: str) -> dict:
    from inspections.checklists.starter import install_starters

    await db.migrate(dsn, _migrations())
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            org_id = await conn.fetchval(
                "insert into organisations (name) values ($1) returning id", name
            )
            await conn.execute(
                """insert into audit_log (organisation_id, action, object_type, object_id, summary)
                   values ($1, 'organisation.create', 'organisation', $2, $3)""",
                org_id,
                str(org_id),
                msgspec.json.encode({"name": name, "via": "cli"}).decode(),
            )
            starters = await install_starters(conn, org_id)
        return {
            "id": str(org_id),
            "name": name,
            "starter_checklists": [str(c) for c in starters],
        }
    finally:
        await conn.close()


async def _create_user(dsn: str, args: argparse.Namespace, settings: Settings) -> dict:
    await db.migrate(dsn, _migrations())
    try:
        org_id = UUID(args.org)
    except ValueError:
        raise SystemExit(
            f"error: --org must be an organisation id (a UUID), not {args.org!r}"
        ) from None
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib
    )
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if not await conn.fetchval("select 1 from organisations where id = $1", org_id):
                raise SystemExit(f"error: no organisation with id {args.org}")
            if await conn.fetchval(
                "select 1 from users where lower(email) = lower($1)", args.email
            ):
                raise SystemExit(f"error: a user with email {args.email} already exists")
            roles = list(dict.fromkeys(args.role))
            user_id = await conn.fetchval(
                """insert into users (organisation_id, email, display_name, password_hash, roles)
                   values ($1, $2, $3, $4, $5) returning id""",
                org_id,
                args.email,
                args.name or args.email.split("@")[0],
                hasher.hash(args.password),
                roles,
            )
            await conn.execute(
                """insert into audit_log (organisation_id, action, object_type, object_id, summary)
                   values ($1, 'user.create', 'user', $2, $3)""",
                org_id,
                str(user_id),
                msgspec.json.encode({"roles": roles, "via": "cli"}).decode(),  # by id, no email
            )
        return {
            "id": str(user_id),
            "email": args.email,
            "roles": roles,
            "organisation_id": args.org,
        }
    finally:
        await conn.close()


async def _seed_demo(dsn: str, settings: Settings) -> dict:
    from inspections.demo import PASSWORD, seed_demo

    org = await _create_org(dsn, "Northshire Healthwatch (demo)")
    email = f"demo.coordinator.{org['id'][:8]}@example.org"
    args = argparse.Namespace(
        org=org["id"], email=email, password=PASSWORD, name="Demo Coordinator", role=["coordinator"]
    )
    coordinator = await _create_user(dsn, args, settings)
    return await seed_demo(dsn, org["id"], coordinator)


async def _sweep(dsn: str, settings: Settings) -> dict:
    """Needs the store too: S3_* settings, or the embedded SeaweedFS of scripts/serve."""
    import datetime as dt

    from inspections.evidence.sweep import sweep

    pool = await db.create_pool(dsn, 1, 2)
    try:
        async with _store(settings) as store:
            report = await sweep(pool, store, dt.timedelta(seconds=settings.sweep_grace_s))
        return msgspec.to_builtins(report)
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[ObjectStore]:
    """The object store: S3_* settings, or the embedded SeaweedFS of scripts/serve."""
    from service.storage import ObjectStore  # noqa: F811 (boto3 loads only when needed)

    endpoint, access, secret = (
        settings.s3_endpoint_url,
        settings.s3_access_key,
        settings.s3_secret_key,
    )
    s3 = None
    if not endpoint:
        from service.devstack import SeaweedFS

        s3 = SeaweedFS(Path(settings.data_dir) / "seaweedfs")
        endpoint = await asyncio.to_thread(s3.start)
        access, secret = s3.access_key, s3.secret_key
    store = ObjectStore(endpoint, settings.s3_bucket, settings.s3_region, access, secret)
    try:
        yield store
    finally:
        store.close()
        if s3 is not None:
            await asyncio.to_thread(s3.stop)


async def _privacy(dsn: str, settings: Settings, args: argparse.Namespace) -> dict:
    """retention (every organisation), erase and export (one person, by id)."""
    from inspections.privacy.erasure import erase_person
    from inspections.privacy.export import export_person
    from inspections.privacy.retention import run_retention
    from inspections.privacy.schemas import Acting

    await db.migrate(dsn, _migrations())
    pool = await db.create_pool(dsn, 1, 2)
    try:
        async with _store(settings) as store:
            if args.cmd == "retention":
                return msgspec.to_builtins(await run_retention(pool, store))
            try:
                user_id = UUID(args.user)
            except ValueError:
                raise SystemExit(
                    f"error: --user must be a user id (a UUID), not {args.user!r}"
                ) from None
            async with pool.acquire() as proxy:
                conn = cast(asyncpg.Connection, proxy)  # the proxy stands for its connection
                org = await conn.fetchval(
                    "select organisation_id from users where id = $1", user_id
                )
                if org is None:
                    raise SystemExit(f"error: no user with id {args.user}")
                by = Acting(organisation_id=org, actor_id=None, via="cli")
                if args.cmd == "erase":
                    report = await erase_person(conn, store, user_id, by)
                    return msgspec.to_builtins(report)
                out = Path(args.out or f"person-{user_id}.zip")
                # Personal data: the owner alone reads it, from the moment it exists.
                os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
                async with conn.transaction():  # the export and its audit row
                    size = await export_person(conn, store, user_id, out, by)
                return {"user_id": str(user_id), "file": str(out), "bytes": size}
    finally:
        await pool.close()


async def _deliver(dsn: str, settings: Settings, once: bool) -> dict:
    """Send the outbox's due notifications: until none is due (--once), or until signalled.

    Safe beside the app's own worker and other `deliver` processes (rows are claimed with
    FOR UPDATE SKIP LOCKED); or the only sender, with the app's worker off
    (DELIVER_INTERVAL_S=0).
    """
    from inspections.notifications.deliver import (
        DeliveryReport,
        deliver_once,
        http_client,
        run_worker,
    )
    from service.logs import configure_logging

    configure_logging(settings.log_level)  # failed deliveries are logged to stderr
    await db.migrate(dsn, _migrations())
    pool = await db.create_pool(dsn, 1, 2)
    http = http_client(settings)
    try:
        total = DeliveryReport()
        if once:
            # A failed row is rescheduled into the future, so this ends.
            while (report := await deliver_once(pool, settings, http)).claimed:
                total.add(report)
        else:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)  # finish the batch in flight, then exit
            interval = settings.deliver_interval_s or 5.0
            total = await run_worker(pool, settings, http, dsn, stop, interval)
        return msgspec.to_builtins(total)
    finally:
        await http.aclose()
        await pool.close()


def _jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / "jwt_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Created 0600 in one step (O_EXCL: never another's file, never readable for a moment).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def serve(settings: Settings) -> int:
    """Embedded PostgreSQL and SeaweedFS when not configured, migrate, then run granian."""
    from service.devstack import Postgres, SeaweedFS, granian_command

    data = Path(settings.data_dir)
    env = dict(os.environ)
    started: list[Postgres | SeaweedFS] = []
    server: subprocess.Popen | None = None

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    record = ServeRecord(
        pid=os.getpid(),
        data_dir=str(data.absolute()),
        database=redact_dsn(settings.database_url) if settings.database_url else "embedded",
    )
    try:
        # The first serve running on this checkout is the one the CLI finds (see README).
        if ServeRecord.running(_default_data_dir()) is None:
            record.write(_default_data_dir())
        if not settings.database_url:
            pg = Postgres(data / "pg")
            pg.start()
            started.append(pg)
            env["DATABASE_URL"] = pg.ensure_database(DB_NAME)
            print(f"PostgreSQL (embedded): {env['DATABASE_URL']}  log: {data / 'pg'}", flush=True)
        if not settings.s3_endpoint_url:
            s3 = SeaweedFS(data / "seaweedfs")
            env["S3_ENDPOINT_URL"] = s3.start()
            started.append(s3)
            env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"] = s3.access_key, s3.secret_key
            s3.ensure_bucket(settings.s3_bucket)
            print(f"SeaweedFS S3 (embedded): {env['S3_ENDPOINT_URL']}  data: {s3.data_dir}")
        env["JWT_SECRET"] = _jwt_secret(settings)
        applied = asyncio.run(db.migrate(env["DATABASE_URL"], _migrations()))
        print(f"Migrations applied: {applied or 'none pending'}", flush=True)
        base = f"http://{settings.host}:{settings.port}"
        print(
            f"API:      {base}/v1\nOpenAPI:  {base}/schema/openapi.json\nDocs:     {base}/schema\n"
            "Logs:     JSON lines on stderr; Ctrl-C stops everything.\n" + _next_commands(settings),
            flush=True,
        )
        server = subprocess.Popen(
            granian_command(settings.host, settings.port, settings.workers),
            env=env,
        )
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None:
            _stop_server(server)
        for svc in reversed(started):
            svc.stop()
        record.remove(_default_data_dir())


def _stop_server(server: subprocess.Popen) -> None:
    """A graceful stop (Ctrl-C reaches granian too; SIGTERM otherwise), then, after
    SERVER_STOP_S, SIGKILL for granian and every process under it: killing only its main
    process would leave its workers (and their image workers) running, orphaned."""
    if server.poll() is None:
        server.terminate()
    try:
        server.wait(timeout=SERVER_STOP_S)
    except subprocess.TimeoutExpired:
        for pid in [*descendants(server.pid), server.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.wait()


def _next_commands(settings: Settings) -> str:
    """The README's first commands, exactly as this serve needs them (its DATA_DIR)."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    prefix = ""
    if settings.database_url:
        prefix = "DATABASE_URL=... "  # the same as serve's; never printed (it may hold a password)
    elif os.environ.get("DATA_DIR"):
        prefix = f"DATA_DIR={shlex.quote(os.environ['DATA_DIR'])} "
    cli = f"{prefix}{shlex.quote(str(python))} -m service"
    return (
        "Next, in another terminal in this folder:\n"
        f"  {cli} create-org --name 'Healthwatch Northshire'\n"
        f"  {cli} create-user --org <ORG_ID> --email coord@example.org "
        "--password 'a long passphrase' --role coordinator\n"
        f"  {cli} seed-demo   # or: a demo organisation with data"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve", help="run the API (embedded PostgreSQL/SeaweedFS when not configured)")
    sub.add_parser("migrate", help="apply pending database migrations")
    sub.add_parser(
        "seed-demo",
        help="create a demo organisation whose care home shows a citizen/professional gap",
    )
    sub.add_parser(
        "sweep-orphans", help="delete stored objects no evidence refers to, and stuck uploads"
    )
    p = sub.add_parser(
        "deliver", help="send waiting notifications (email, webhooks); prints what it did"
    )
    p.add_argument("--once", action="store_true", help="stop when nothing more is due")
    sub.add_parser(
        "retention",
        help="delete or anonymise what is past each organisation's retention schedule",
    )
    p = sub.add_parser("erase", help="erase a person by anonymisation (cannot be undone)")
    p.add_argument("--user", required=True, help="user id")
    p = sub.add_parser("export", help="write everything held about a person to a .zip")
    p.add_argument("--user", required=True, help="user id")
    p.add_argument("--out", help="the .zip to write (default: person-<id>.zip)")
    p = sub.add_parser("create-org", help="create an organisation; prints its JSON")
    p.add_argument("--name", required=True)
    p = sub.add_parser("create-user", help="create a user with a password; prints its JSON")
    p.add_argument("--org", required=True, help="organisation id")
    p.add_argument("--email", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--name", help="display name (default: the email's local part)")
    p.add_argument("--role", action="append", required=True, choices=ROLES)
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    if args.cmd == "serve":
        return serve(settings)
    settings = find_data_dir(settings, os.environ)
    with database(settings) as dsn:
        if args.cmd == "migrate":
            _out({"applied": asyncio.run(db.migrate(dsn, _migrations()))})
        elif args.cmd == "seed-demo":
            _out(asyncio.run(_seed_demo(dsn, settings)))
        elif args.cmd == "sweep-orphans":
            _out(asyncio.run(_sweep(dsn, settings)))
        elif args.cmd == "deliver":
            _out(asyncio.run(_deliver(dsn, settings, args.once)))
        elif args.cmd in ("retention", "erase", "export"):
            _out(asyncio.run(_privacy(dsn, settings, args)))
        elif args.cmd == "create-org":
            _out(asyncio.run(_create_org(dsn, args.name)))
        elif args.cmd == "create-user":
            from inspections.accounts.password_rule import password_errors

            if problems := password_errors(args.password, "--password"):
                raise SystemExit(f"error: {problems[0].reason}")
            _out(asyncio.run(_create_user(dsn, args, settings)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
