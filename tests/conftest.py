"""One real PostgreSQL and one real SeaweedFS per test session, started here.

Migrations run once into a template database; every test gets its own clone of it,
and the app is built with ``create_app(settings)`` inside Litestar's AsyncTestClient.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from litestar.testing import AsyncTestClient

from inspections.notifications.deliver import DeliveryReport, deliver_once, http_client
from inspections.wiring import MIGRATIONS
from service import db
from service.app import create_app
from service.devstack import Postgres, SeaweedFS, free_port, granian_command
from service.generation import counter_path
from service.settings import Settings
from tests.helpers import Api

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"  # shipped with the project (licence in photos/README.md)
PHOTOS = FIXTURES / "photos"
TEMPLATE = "coassess_template"
_counter = itertools.count()


def _stop_like_ctrl_c(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A CI job cancelled (SIGTERM) stops like Ctrl-C: the session's fixtures are torn
    # down, so its PostgreSQL and SeaweedFS (own process groups) do not outlive it.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_like_ctrl_c)


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


@asynccontextmanager
async def scratch_database(postgres: Postgres, template: str | None = None) -> AsyncIterator[str]:
    """A database of its own in the suite's PostgreSQL, a copy of ``template`` (else empty),
    dropped afterwards: its DSN."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(postgres.dsn())
    try:
        copy = f' template "{template}"' if template else ""
        await admin.execute(f'create database "{name}"{copy}')
    finally:
        await admin.close()
    yield postgres.dsn(name)
    admin = await asyncpg.connect(postgres.dsn())
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()
    # The apps' shared write generation for that database (service/generation.py).
    counter_path(postgres.dsn(name)).unlink(missing_ok=True)


@pytest.fixture
async def database_url(postgres: Postgres, template_dsn: str) -> AsyncIterator[str]:
    async with scratch_database(postgres, TEMPLATE) as dsn:  # template_dsn: migrated first
        yield dsn


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
        signin_per_account_per_hour=100_000,
        db_pool_min=1,
        db_pool_max=5,
        log_level="WARNING",
        # Tests run reminder scans themselves, on the dates they choose.
        reminder_interval_s=0,
        retention_interval_s=0,  # tests run retention with the clock they choose
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


@asynccontextmanager
async def app_api(settings: Settings, **client: Any) -> AsyncIterator[Api]:
    """An Api on an app of its own made with ``settings`` (``client``: AsyncTestClient's
    options), for tests that need settings the ``api`` fixture's app does not have."""
    async with AsyncTestClient(app=create_app(settings), **client) as c:
        conn = await asyncpg.connect(settings.database_url)
        try:
            yield Api(c, conn)
        finally:
            await conn.close()


@pytest.fixture
async def api(client: AsyncTestClient, settings: Settings) -> AsyncIterator[Api]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        yield Api(client, conn)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- a real server


def start_live_server(
    settings: Settings,
    tmp_path: Path,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """granian serving create_app on ``port`` (default: a free one), ready when /ready is 200."""
    port = port or free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path), "WORKERS": str(workers), **(extra_env or {})}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        if value is not None:
            env[name.upper()] = str(value)
    proc = subprocess.Popen(
        granian_command("127.0.0.1", port, workers=workers),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    # A condition, not a duration: wait until it answers (or has died); the deadline only
    # turns a hung start into a failure with the server's log instead of a hung suite.
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(base + "/ready", timeout=5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server did not start: {err[-2000:]}")
        time.sleep(0.1)


def stop_live_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    proc, base = start_live_server(settings, tmp_path)
    try:
        yield base, tmp_path
    finally:
        stop_live_server(proc)


@pytest.fixture
def base_url(live_server: tuple[str, Path]) -> str:
    """The live server's address, for the tests that need nothing else of it."""
    return live_server[0]


# --------------------------------------------------------------------------- a real browser

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (as CI does). Fails, never skips."""
    path = shutil.which("chromium")
    if path:
        return path
    log = []
    # Another apt process (unattended upgrades, a second suite) may hold the dpkg lock:
    # apt waits for it (DPkg::Lock::Timeout) rather than failing at once.
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    for command in (
        ["apt-get", *wait, "install", "-y", "--no-install-recommends", "chromium"],
        ["apt-get", *wait, "update"],
        ["apt-get", *wait, "install", "-y", "--no-install-recommends", "chromium"],
    ):
        print(
            f"\n[tests] Chromium is missing; running {' '.join(command)} "
            "(waits for any other apt process) ...",
            file=sys.stderr,
            flush=True,
        )
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        log.append(f"$ {' '.join(command)} -> {done.returncode}\n{done.stderr[-1500:]}")
        if "install" in command and done.returncode == 0:
            break
    path = shutil.which("chromium")
    if not path:
        pytest.fail("Could not install Debian's chromium:\n" + "\n".join(log))
    return path


# A mailbox, a webhook receiver and a delivery worker, for the tests of notifications
# (a module asks for mail with a `settings` fixture returning `mail_settings`).


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def parsed(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(content, policy=email.policy.default)  # type: ignore[misc]
            for _, content in self.messages
        ]


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


class Receiver:
    """A webhook receiver: records each request; answers 500 to the first ``fail`` ones."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                status = 200
                if receiver.fail > 0:
                    receiver.fail -= 1
                    status = 500
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/coassess"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def app_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The app's log lines from INFO up, as an operator's log holds them (the app of the
    ``api`` fixture configured logging): to show what never reaches one."""
    caplog.set_level(logging.INFO)
    return caplog


# The app of the `api` fixture sends mail to the local SMTP server; its own worker is off,
# so each test decides when deliver_once runs.
@pytest.fixture
def mail_settings(database_url: str, seaweed: SeaweedFS, smtp: Mailbox) -> Settings:
    return make_settings(
        database_url,
        seaweed,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        mail_from="Co-assessment <no-reply@coassess.test>",
        deliver_interval_s=0,
        deliver_max_attempts=3,
        webhook_timeout_s=5,
        # The receiver listens on 127.0.0.1; production refuses such addresses.
        webhook_allow_private=True,
    )


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    """A delivery worker of its own, as another process would be: its pool, its client.

    (The app under AsyncTestClient runs on another thread's event loop, so its pool and
    client are not usable from the test's loop.)
    """
    pool = await db.create_pool(settings.database_url, 1, 4)
    http = http_client(settings)
    try:
        yield Worker(pool, http, settings)
    finally:
        await http.aclose()
        await pool.close()


class Worker:
    def __init__(self, pool: asyncpg.Pool, http: httpx.AsyncClient, settings: Settings) -> None:
        self.pool, self.http, self.settings = pool, http, settings

    def deliver(self, settings: Settings | None = None) -> Awaitable[DeliveryReport]:
        return deliver_once(self.pool, settings or self.settings, self.http)
