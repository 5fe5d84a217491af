"""The host's write generation: a counter that changes whenever a write may have committed.

A process may answer from memory what it read from the database only while this counter
has not moved since *before* that read. It lives in shared memory (``/dev/shm``, one small
file per database), so every process of this host that uses the same database sees the
same counter, and it moves:

- in the process that wrote, before the write's response is sent: every request whose
  method is not GET, HEAD or OPTIONS bumps it when its response starts (its transaction
  has committed by then), so no request answered after a 2xx can read from before it;
  except routes that declare they touch no watched table (WATCHED_TABLES_UNTOUCHED);
- on a NOTIFY on ``WRITES_CHANNEL``, which the domain's triggers send when a transaction
  that changed what callers may read commits, whatever made it (another host, ``psql``,
  a background job). That path has a window: one notification's delivery.

While the listening connection is down nobody may answer from memory (``listening`` is
False), and it moves again when listening resumes, for what it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
from litestar.types import ASGIApp, Message, Receive, Scope, Send

WRITES_CHANNEL = "coassess_writes"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Route opt: this route writes no table whose writes send WRITES_CHANNEL (the domain's
# triggers), so its response need not move the generation. A photo upload, say: moving
# the generation on each of them would send every phone's next bundle request back to
# the database while photos arrive. tests/test_bundle_memo.py checks each route that says so.
WATCHED_TABLES_UNTOUCHED = "watched_tables_untouched"
_COUNTER = struct.Struct("<Q")
log = logging.getLogger("service.generation")


def counter_path(dsn: str) -> Path:
    """One file per database on this host: processes of one deployment share it."""
    shm = Path("/dev/shm")
    folder = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return folder / f"coassess-writes-{hashlib.sha256(dsn.encode()).hexdigest()[:24]}"


class WriteGeneration:
    """The shared counter (see the module's docstring) and this process's listener."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # /dev/shm is shared by every user of the host: never follow a planted link, never
        # use another user's file.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            st = os.fstat(fd)
            if st.st_uid != os.getuid():
                raise RuntimeError(f"{path} belongs to another user")
            if st.st_size < _COUNTER.size:
                os.ftruncate(fd, _COUNTER.size)
            self._map = mmap.mmap(fd, _COUNTER.size)
        except BaseException:
            os.close(fd)
            raise
        self._lock = fd  # kept open: bump() locks it
        self.listening = False
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def current(self) -> int:
        return _COUNTER.unpack_from(self._map)[0]

    def bump(self) -> None:
        # Read-modify-write under an exclusive lock: no process's bump is ever lost.
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            _COUNTER.pack_into(self._map, 0, _COUNTER.unpack_from(self._map)[0] + 1)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def unchanged_since(self, seen: int | None) -> bool:
        """Whether what was read after seeing ``seen`` may still be answered from memory."""
        return self.listening and seen is not None and seen == self.current()

    # The listener: writes made elsewhere.

    async def listen(self, dsn: str) -> None:
        try:
            await self._connect(dsn)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            log.warning("write listener unavailable; answering from memory is off meanwhile")
            self._task = asyncio.create_task(self._reconnect(dsn))

    async def _connect(self, dsn: str) -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        await conn.add_listener(WRITES_CHANNEL, self._on_notify)
        conn.add_termination_listener(lambda _c: self._on_lost(dsn))
        self._conn = conn
        self.bump()  # whatever was read before now may have missed a notification
        self.listening = True

    def _on_notify(self, *_args: Any) -> None:
        self.bump()

    def _on_lost(self, dsn: str) -> None:
        self.listening = False
        if not self._closing and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._reconnect(dsn))

    async def _reconnect(self, dsn: str) -> None:
        delay = 0.2
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self._connect(dsn)
                return
            except (TimeoutError, OSError, asyncpg.PostgresError):
                delay = min(delay * 2, 10)

    async def close(self) -> None:
        self._closing = True
        self.listening = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._map.close()
        os.close(self._lock)


def bump_after_writes(app: ASGIApp, generation: Any) -> ASGIApp:
    """Bump ``generation().`` when the response of a request that may have written starts.

    Litestar ends a request's transaction (its dependency cleanup) before the response is
    sent, so the bump follows the commit and precedes the answer. ``generation`` returns
    the WriteGeneration, or None before start-up.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await app(scope, receive, send)
            return
        bumped = False

        async def send_after_bump(message: Message) -> None:
            nonlocal bumped
            if not bumped and message["type"] == "http.response.start":
                bumped = True
                # The router has put the route's handler in the scope by now.
                handler = scope.get("route_handler")
                untouched = handler is not None and handler.opt.get(WATCHED_TABLES_UNTOUCHED)
                if not untouched and (gen := generation()) is not None:
                    gen.bump()
            await send(message)

        try:
            await app(scope, receive, send_after_bump)
        finally:
            # A request cut off before answering may still have committed.
            if not bumped and (gen := generation()) is not None:
                gen.bump()

    return middleware
