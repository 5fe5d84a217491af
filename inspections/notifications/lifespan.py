"""The notifications slice's share of the app's lifetime: the in-app delivery worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from litestar import Litestar

from inspections.notifications.deliver import deliver_forever, http_client
from service.state import app_state

log = logging.getLogger("inspections.notifications")


@asynccontextmanager
async def notifications_lifespan(app: Litestar) -> AsyncGenerator[None, None]:
    state = app_state(app)
    settings = state.settings
    # One client for every webhook POST: connections to a receiver are reused.
    state.http = http_client(settings)
    stop = asyncio.Event()
    worker = (
        asyncio.create_task(deliver_forever(app, stop)) if settings.deliver_interval_s > 0 else None
    )
    try:
        yield
    finally:
        if worker is not None:
            # Let a batch in flight finish and record what it sent (else it is sent again
            # later); cut it off if a receiver keeps it too long.
            stop.set()
            try:
                await asyncio.wait_for(worker, settings.webhook_timeout_s + 5)
            except TimeoutError:
                log.warning("notification worker stopped mid-batch; it will be resent")
            except Exception:
                log.exception("notification worker failed")
        await state.http.aclose()
