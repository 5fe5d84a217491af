"""The CPU-heavy part of ingesting a photo, run in worker processes (never the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import msgspec

from media.derive import Derivatives, make_derivatives
from media.detect import ACCEPTED_TYPES_TEXT, HEAD_BYTES, MIME_TYPES, ImageRejected, detect_format
from media.exif import PhotoMeta, read_metadata


class Processed(msgspec.Struct, frozen=True, kw_only=True):
    content_type: str
    meta: PhotoMeta
    derivatives: Derivatives


def process_photo(path: str, max_pixels: int) -> Processed:
    """Recognise, read EXIF (no pixel decode), then decode once at reduced scale.

    Decoding is also the integrity check: a truncated or corrupt file raises ImageRejected.
    """
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    fmt = detect_format(head)
    if fmt is None:
        raise ImageRejected(
            "unsupported-type",
            f"This file is not a photo we can accept; send a {ACCEPTED_TYPES_TEXT} image.",
        )
    meta = read_metadata(path)
    derivatives = make_derivatives(path, max_pixels)
    return Processed(content_type=MIME_TYPES[fmt], meta=meta, derivatives=derivatives)


def _lower_priority() -> None:
    # Photo decoding can wait a few ms; a phone downloading its checklist should not.
    # SCHED_IDLE runs the workers only on CPU time nothing else wants (Linux); elsewhere,
    # or if refused, a lower nice value.
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)


class ImageWorkers:
    """A small process pool with bounded concurrency, started on first use.

    forkserver: workers fork from a clean server process, not from the app with its
    event loop, threads and open sockets.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._executor: ProcessPoolExecutor | None = None
        self._slots = asyncio.Semaphore(self.workers)

    async def process(self, path: str, max_pixels: int) -> Processed:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_lower_priority,
            )
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, process_photo, path, max_pixels)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
