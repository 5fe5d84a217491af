"""Work the app repeats while it runs (reminders, retention, the orphan sweep), in one loop.

A run that fails is logged and the next one retries, so one bad run never ends a job for
good; an interval of 0 turns the job off (another process runs it, or nobody); stopping
the app cancels it. The jobs themselves (what a run does) live in their slices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar

from service.settings import Settings


async def repeat(
    interval_s: float,
    run: Callable[[], Awaitable[None]],
    log: logging.Logger,
    failed: str,
    *,
    wait_first: bool = False,
) -> None:
    """``run()`` every ``interval_s`` seconds until cancelled; a failure is logged as
    ``failed``. ``wait_first``: the first run after one interval, not at once."""
    if wait_first:
        await asyncio.sleep(interval_s)
    while True:
        try:
            await run()
        except Exception:  # a bad run must not end the job for good; the next one retries
            log.exception(failed)
        await asyncio.sleep(interval_s)


def periodic(
    interval_of: Callable[[Settings], float],
    run: Callable[[Litestar], Awaitable[None]],
    log: logging.Logger,
    failed: str,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan that runs ``run(app)`` every ``interval_of(settings)`` seconds (0: never)
    while the app runs."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        interval = interval_of(app.state.settings)
        task = (
            asyncio.create_task(repeat(interval, lambda: run(app), log, failed))
            if interval > 0
            else None
        )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return lifespan
