"""The notifications slice's share of the app's lifetime: webhook secrets sealed at start-up,
and the in-app delivery worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from litestar import Litestar

from inspections.notifications.deliver import deliver_forever, http_client
from inspections.notifications.webhook_secrets import check_key, cipher, encrypt_plaintext
from service.state import app_state

log = logging.getLogger("inspections.notifications")


@asynccontextmanager
async def notifications_lifespan(app: Litestar) -> AsyncGenerator[None, None]:
    state = app_state(app)
    settings = state.settings
    cipher(settings)  # a malformed WEBHOOK_SECRET_KEY stops the start, with its reason
    # Secrets stored in plain text before migration 0017 are sealed now (once: idempotent).
    if sealed := await encrypt_plaintext(state.pool, settings):
        log.info("webhook secrets encrypted at rest", extra={"count": sealed})
    if not await check_key(state.pool, settings):
        log.error(
            "WEBHOOK_SECRET_KEY (or the JWT_SECRET it is derived from) is not the key the "
            "webhook secrets were stored with: webhook deliveries fail until it is restored"
        )
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
