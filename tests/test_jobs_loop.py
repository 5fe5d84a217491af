"""The loop that runs reminders, retention and the orphan sweep (service/jobs.py): a failed
run is logged and retried, never ending the job; 0 turns a job off; stopping cancels it.
Waits are for conditions (events), never for a duration."""

from __future__ import annotations

import asyncio
import logging

import pytest
from litestar import Litestar

from service.jobs import periodic, repeat
from service.settings import Settings


async def test_a_failed_run_is_logged_and_the_next_run_still_happens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    third = asyncio.Event()

    async def run() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("the store is down")
        if len(runs) == 3:
            third.set()

    log = logging.getLogger("test.jobs")
    with caplog.at_level(logging.ERROR, logger="test.jobs"):
        task = asyncio.create_task(repeat(0, run, log, "job failed"))
        await asyncio.wait_for(third.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(runs) >= 3  # the failure did not end the job
    failures = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert len(failures) == 1 and failures[0].exc_info is not None


async def test_stopping_cancels_a_job_that_is_waiting_for_its_next_run() -> None:
    ran = asyncio.Event()

    async def run() -> None:
        ran.set()

    task = asyncio.create_task(repeat(3600, run, logging.getLogger("test.jobs"), "failed"))
    await asyncio.wait_for(ran.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_wait_first_does_not_run_before_the_first_interval() -> None:
    runs: list[int] = []

    async def run() -> None:
        runs.append(1)

    task = asyncio.create_task(
        repeat(3600, run, logging.getLogger("test.jobs"), "failed", wait_first=True)
    )
    # Let the task start and reach its first wait: several turns of the loop.
    for _ in range(20):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runs == []


async def test_an_interval_of_0_in_the_settings_turns_the_job_off(settings: Settings) -> None:
    runs: list[int] = []

    async def run(app: Litestar) -> None:
        runs.append(1)

    lifespan = periodic(lambda s: 0, run, logging.getLogger("test.jobs"), "failed")
    app = Litestar(route_handlers=[])
    app.state.settings = settings
    async with lifespan(app):
        for _ in range(20):
            await asyncio.sleep(0)
    assert runs == []
