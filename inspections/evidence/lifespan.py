"""The evidence slice's share of the app's lifetime: image workers, the photo processing
queue's worker and the orphan sweeper."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from litestar import Litestar

from inspections.evidence.jobs import PhotoJobs
from inspections.evidence.sweep import sweep_forever
from inspections.evidence.upload import prepare_upload_dir, upload_dir
from media.pipeline import HostSlots, ImageWorkers, available_cpus, host_decodes


@asynccontextmanager
async def evidence_lifespan(app: Litestar) -> AsyncGenerator[None, None]:
    settings = app.state.settings
    # What a crashed process left half-received (originals with GPS) goes at once.
    await asyncio.to_thread(prepare_upload_dir, upload_dir(settings))
    # The app's processes on this host share its upload folder, and so its decode slots.
    slots = host_decodes(settings.photo_decodes_per_host, available_cpus())
    app.state.images = ImageWorkers(
        settings.image_workers, host=HostSlots(upload_dir(settings) / "slots", slots)
    )
    app.state.photo_jobs = jobs = PhotoJobs(app)
    if settings.photo_job_interval_s > 0:
        jobs.start()
    sweeper = asyncio.create_task(sweep_forever(app)) if settings.sweep_interval_s > 0 else None
    try:
        yield
    finally:
        await jobs.stop()
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await asyncio.to_thread(app.state.images.close)
