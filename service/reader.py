"""A few connections held out of the pool for one-statement reads on the hottest path.

asyncpg's ``Pool.release`` shields the release in a new task and takes three turns of the
event loop: measured (scripts/bench_bundle's profile) at about a third of the server CPU
of a bundle 304, whose only database work is one indexed query. A held connection costs
none of that. When all held connections are busy the read goes through the pool as usual,
so nothing waits for them; a connection that fails or whose query is cancelled goes back to
the pool (which resets or replaces it) and the next read takes a fresh one.
"""

from __future__ import annotations

from typing import Any

import asyncpg


class Reader:
    def __init__(self, pool: asyncpg.Pool, size: int) -> None:
        self._pool = pool
        self._size = max(1, size)
        self._free: list[Any] = []
        self._held = 0
        self._closed = False

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """One statement, outside any transaction (each is its own snapshot)."""
        if not self._free:
            if self._closed or self._held >= self._size:
                return await self._pool.fetchrow(sql, *args)
            self._held += 1
            try:
                self._free.append(await self._pool.acquire())
            except BaseException:
                self._held -= 1
                raise
        conn = self._free.pop()
        try:
            row = await conn.fetchrow(sql, *args)
        except asyncpg.InterfaceError:
            # PostgreSQL dropped the held connection (a restart): asyncpg has taken it back
            # into the pool ("released back to the pool"). The read goes through the pool,
            # which reconnects, or answers 503 while the database is down; never a 500.
            self._held -= 1
            await self._pool.release(conn)
            return await self._pool.fetchrow(sql, *args)
        except BaseException:
            self._held -= 1
            await self._pool.release(conn)
            raise
        if self._closed:
            self._held -= 1
            await self._pool.release(conn)
        else:
            self._free.append(conn)
        return row

    async def close(self) -> None:
        """Give every held connection back (before the pool closes: it waits for them)."""
        self._closed = True
        while self._free:
            self._held -= 1
            await self._pool.release(self._free.pop())
