"""The host's photo decode slots: every app process on a host together decodes at most
PHOTO_DECODES_PER_HOST photos at once (by default one fewer than the CPUs), so phones'
requests keep a CPU; a process that dies frees its slot."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from media.pipeline import HostSlots, ImageWorkers, host_decodes
from tests.conftest import PHOTOS

# Bounds for a busy machine, never asserted durations: each wait ends on its condition.
BOUND_S = 120


def test_host_decodes_leaves_a_cpu_for_requests() -> None:
    assert host_decodes(0, 2) == 1  # this 2-core machine: one photo at a time
    assert host_decodes(0, 8) == 7
    assert host_decodes(0, 1) == 1  # one CPU: photos still get processed
    assert host_decodes(3, 2) == 3  # PHOTO_DECODES_PER_HOST wins when set


@given(st.integers(-5, 64), st.integers(1, 256))
def test_host_decodes_is_always_a_usable_count(configured: int, cpus: int) -> None:
    n = host_decodes(configured, cpus)
    assert n >= 1
    assert n == configured or n < cpus or cpus == 1


async def _never_done(task: asyncio.Future[Any], polls: int = 10) -> bool:
    # Whatever the machine's speed, a held slot cannot be taken: this can only fail if
    # the slot is broken, never because the machine is slow.
    for _ in range(polls):
        await asyncio.sleep(HostSlots.POLL_S)
        if task.done():
            return False
    return True


async def _hold_until(slots: HostSlots, got: asyncio.Event, release: asyncio.Event) -> None:
    async with slots.hold():
        got.set()
        await release.wait()


async def test_a_second_process_waits_for_the_only_slot_and_gets_it_when_freed(
    tmp_path: Path,
) -> None:
    # Two HostSlots on one folder behave as two app processes do (flock is per open file).
    a, b = HostSlots(tmp_path, 1), HostSlots(tmp_path, 1)
    a_got, a_release, b_got, b_release = (asyncio.Event() for _ in range(4))
    holder = asyncio.create_task(_hold_until(a, a_got, a_release))
    await asyncio.wait_for(a_got.wait(), BOUND_S)
    waiter = asyncio.create_task(_hold_until(b, b_got, b_release))
    assert await _never_done(asyncio.create_task(b_got.wait()))
    a_release.set()
    await asyncio.wait_for(b_got.wait(), BOUND_S)
    b_release.set()
    await asyncio.gather(holder, waiter)


async def test_two_slots_let_two_photos_decode_at_once(tmp_path: Path) -> None:
    a, b = HostSlots(tmp_path, 2), HostSlots(tmp_path, 2)
    got_a, got_b, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(_hold_until(a, got_a, release)),
        asyncio.create_task(_hold_until(b, got_b, release)),
    ]
    await asyncio.wait_for(asyncio.gather(got_a.wait(), got_b.wait()), BOUND_S)
    release.set()
    await asyncio.gather(*tasks)


async def test_a_killed_process_frees_its_slot(tmp_path: Path) -> None:
    # A process holding the slot is killed (kill -9, the OOM killer): the kernel drops
    # its lock, so photos do not wait for ever behind a dead process.
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import fcntl, os, sys\n"
        f"fd = os.open({str(tmp_path / 'decode-slot-0.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), BOUND_S) == b"held\n"
        got, release = asyncio.Event(), asyncio.Event()
        waiter = asyncio.create_task(_hold_until(HostSlots(tmp_path, 1), got, release))
        assert await _never_done(asyncio.create_task(got.wait()))
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(got.wait(), BOUND_S)
        release.set()
        await waiter
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()


async def test_a_photo_waits_for_the_hosts_slot_then_is_processed(tmp_path: Path) -> None:
    slots = tmp_path / "slots"
    other_process = HostSlots(slots, 1)
    workers = ImageWorkers(1, host=HostSlots(slots, 1))
    got, release = asyncio.Event(), asyncio.Event()
    busy = asyncio.create_task(_hold_until(other_process, got, release))
    try:
        await asyncio.wait_for(got.wait(), BOUND_S)
        photo = sorted((PHOTOS / "gps").glob("*.jpg"))[0]
        processing = asyncio.create_task(workers.process(str(photo), 50_000_000))
        assert await _never_done(processing)  # the other process's decode goes first
        release.set()
        processed = await asyncio.wait_for(processing, BOUND_S)
        assert processed.derivatives.display and processed.derivatives.thumb
        await busy
    finally:
        release.set()
        await asyncio.to_thread(workers.close)
