"""In-process caches kept honest by PostgreSQL LISTEN/NOTIFY.

Triggers in the database announce changes (``user:<id>``, ``visit:<id>``, ...) on one
channel when a transaction commits, whichever process or tool made them. Every app process
listens and evicts. While the listening connection is down, caches are bypassed, so a
missed notification can never serve stale data for long: correctness never depends on
the cache, only speed does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import asyncpg

CHANNEL = "coassess_invalidate"
log = logging.getLogger("service.invalidation")
K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A small LRU with a time-to-live, for one process."""

    def __init__(self, maxsize: int, ttl_s: float) -> None:
        self.maxsize, self.ttl = maxsize, ttl_s
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[1]

    def put(self, key: K, value: V) -> None:
        self._data[key] = (time.monotonic() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def evict_where(self, predicate: Callable[[K, V], bool]) -> None:
        for key in [k for k, (_, v) in self._data.items() if predicate(k, v)]:
            del self._data[key]

    def clear(self) -> None:
        self._data.clear()


class Invalidations:
    """Listens on CHANNEL and tells subscribers; reconnects with backoff when cut off."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.healthy = False
        # Bumped on every notification and on reconnects: a reader that saw the database
        # before a bump must not cache what it read (it may already be stale).
        self.generation = 0
        self._subscribers: list[Callable[[str], None]] = []
        self._clearers: list[Callable[[], None]] = []
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def subscribe(self, on_event: Callable[[str], None], on_lost: Callable[[], None]) -> None:
        self._subscribers.append(on_event)
        self._clearers.append(on_lost)

    async def start(self) -> None:
        try:
            await self._connect()
        except (OSError, asyncpg.PostgresError):
            log.warning("cache invalidation listener unavailable; caches bypassed")
            self._task = asyncio.create_task(self._reconnect())

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(self._on_lost)
        self._conn = conn
        self.generation += 1
        self._clear_all()  # anything cached before we listened may be stale
        self.healthy = True

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.generation += 1
        for fn in self._subscribers:
            fn(payload)

    def _on_lost(self, _conn: Any) -> None:
        self.healthy = False
        self.generation += 1
        self._clear_all()
        if not self._closing and (self._task is None or self._task.done()):
            self._task = asyncio.get_event_loop().create_task(self._reconnect())

    def _clear_all(self) -> None:
        for fn in self._clearers:
            fn()

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self._connect()
                return
            except (OSError, asyncpg.PostgresError):
                delay = min(delay * 2, 30)

    async def close(self) -> None:
        self._closing = True
        self.healthy = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
