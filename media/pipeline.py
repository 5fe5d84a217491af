"""Ingesting a photo: the cheap checks before an upload is acknowledged (``precheck``) and
the CPU-heavy part after it, run in worker processes (never the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import msgspec
import pillow_heif

from media.derive import Derivatives, make_derivatives
from media.detect import (
    ACCEPTED_TYPES_TEXT,
    HEAD_BYTES,
    MIME_TYPES,
    ImageRejected,
    corrupt_image,
    detect_format,
    heif_problem,
    jpeg_problem,
    open_image,
)
from media.exif import PhotoMeta, read_metadata

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _unsupported() -> ImageRejected:
    return ImageRejected(
        "unsupported-type",
        f"This file is not a photo we can accept; send a {ACCEPTED_TYPES_TEXT} image.",
    )


class Processed(msgspec.Struct, frozen=True, kw_only=True):
    content_type: str
    meta: PhotoMeta
    derivatives: Derivatives


def process_photo(path: str, max_pixels: int, heif_threads: int | None = None) -> Processed:
    """Recognise, read EXIF (no pixel decode), then decode once at reduced scale.

    Decoding is also the integrity check: a truncated or corrupt file raises ImageRejected.
    ``heif_threads`` (see ``decode_threads``) sets the HEVC decoder's threads for this and
    later decodes in this process (FFmpeg's in media/hevc.py, or libheif's): both read
    pillow-heif's module global, which is safe in the single-threaded image workers.
    """
    if heif_threads is not None:
        pillow_heif.options.DECODE_THREADS = max(1, heif_threads)
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    fmt = detect_format(head)
    if fmt is None:
        raise _unsupported()
    meta = read_metadata(path)
    derivatives = make_derivatives(path, max_pixels)
    return Processed(content_type=MIME_TYPES[fmt], meta=meta, derivatives=derivatives)


class Checked(msgspec.Struct, frozen=True, kw_only=True):
    """What the checks before the acknowledgement learnt, without decoding a pixel."""

    content_type: str
    meta: PhotoMeta
    width: int  # upright
    height: int


def precheck(source: str | os.PathLike[str] | bytes, max_pixels: int) -> Checked:
    """The checks worth making before acknowledging an upload (CPU-light; run in a thread),
    of a file or of its bytes.

    Raises ImageRejected: not JPEG/PNG/WebP/HEIC (415), too many pixels by the header
    (413), or a structure that cannot hold the whole picture (422): a JPEG's markers,
    a HEIF container's boxes, item extents and NAL units, a PNG's chunks and CRCs.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    fmt = detect_format(data[:HEAD_BYTES])
    if fmt is None:
        raise _unsupported()
    if fmt == "jpeg":
        problem = jpeg_problem(data)
    elif fmt == "heif":
        problem = heif_problem(data)
    else:
        problem = None
    if problem is not None:
        raise corrupt_image()
    with open_image(io.BytesIO(data), max_pixels, verify=fmt == "png") as img:  # PNG: CRCs
        meta = read_metadata(img)
        w, h = img.size
    if meta.orientation in (5, 6, 7, 8):
        w, h = h, w
    return Checked(content_type=MIME_TYPES[fmt], meta=meta, width=w, height=h)


def decode_threads(busy: int, cpus: int) -> int:
    """HEVC decoder threads for one photo while ``busy`` photos (this one included) decode.

    A grid HEIC's tiles (an iPhone photo has 48) are decoded in parallel with up to this
    many threads (media/hevc.py's runs of tiles, or libheif's); a single image on one. A
    photo alone gets every CPU (half the wait on 2 cores). When the workers already fill the
    CPUs, more threads cannot add photos per second, only switching: one each
    (scripts/bench_photos prints both).
    """
    return max(1, max(1, cpus) // max(1, busy))


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    """Runs first in each worker process."""
    # Ctrl-C reaches the whole process group; only the app decides when its workers stop
    # (closing the pool at shutdown), so a worker never dies with a KeyboardInterrupt trace.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with_parent()
    _lower_priority()


def _end_with_parent() -> None:
    # Ignoring SIGINT must not leave orphans: should the app die without closing the pool
    # (SIGKILL), its end of this pipe closes and the worker exits too.
    _kill_me_with_my_parent()
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def _kill_me_with_my_parent() -> None:
    # Linux: the kernel SIGKILLs this worker when the process that forked it (the
    # forkserver, which itself exits when the app does) dies, even while a decode holds
    # the GIL and the watcher thread cannot run.
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _lower_priority() -> None:
    # Photo decoding can wait a few ms; a phone downloading its checklist should not.
    # SCHED_IDLE runs the workers only on CPU time nothing else wants (Linux); elsewhere,
    # or if refused, a lower nice value.
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)


def host_decodes(configured: int, cpus: int) -> int:
    """How many photos may decode at once on this host: ``configured``, or when 0 one
    fewer than the CPUs (at least 1), so that answering requests always has a CPU."""
    return configured if configured > 0 else max(1, cpus - 1)


class HostSlots:
    """At most ``n`` holders at once among every process on this host sharing ``folder``.

    Why: each app process (granian worker) has its own image workers, so without this the
    host decodes WORKERS x IMAGE_WORKERS photos at once. On 2 cores four decodes at once
    tripled the phones' p99 latency even at SCHED_IDLE; one at a time did not (see the
    README's figures from scripts/bench_load). A slot is an ``flock`` on a file, so the
    kernel releases it when its process dies, however it dies. Waiting polls (cheap, and a
    cancelled wait leaves no thread blocked in the kernel).
    """

    POLL_S = 0.02

    def __init__(self, folder: Path, n: int) -> None:
        self.folder = folder
        self.n = max(1, n)

    def _try(self) -> int | None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for i in range(self.n):
            fd = os.open(self.folder / f"decode-slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        # Another process frees a slot: nothing in this one can signal it, so poll.
        while (fd := self._try()) is None:  # noqa: ASYNC110
            await asyncio.sleep(self.POLL_S)
        try:
            yield
        finally:
            os.close(fd)  # closing the only descriptor releases the lock


class ImageWorkers:
    """A small process pool with bounded concurrency, started on first use.

    forkserver: workers fork from a clean server process, not from the app with its
    event loop, threads and open sockets. With ``host`` slots, a photo also waits for one
    of the host's decode slots (HostSlots), shared with the other app processes.
    """

    def __init__(
        self, workers: int, *, cpus: int | None = None, host: HostSlots | None = None
    ) -> None:
        self.workers = max(1, workers)
        self.cpus = cpus or available_cpus()
        self.host = host
        self._busy = 0  # photos being processed now
        self._executor: ProcessPoolExecutor | None = None
        self._slots = asyncio.Semaphore(self.workers)

    async def process(self, path: str, max_pixels: int) -> Processed:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_init_worker,
            )
        async with self._slots, self._host_slot():
            loop = asyncio.get_running_loop()
            executor = self._executor
            self._busy += 1
            threads = decode_threads(self._busy, self.cpus)
            try:
                return await loop.run_in_executor(
                    executor, process_photo, path, max_pixels, threads
                )
            except BrokenProcessPool:
                # A worker died (OOM killer, kill -9): a broken pool refuses all further
                # work, so the next photo gets a new one; the queue retries this one.
                if self._executor is executor:
                    self._executor = None
                    executor.shutdown(wait=False, cancel_futures=True)
                raise
            finally:
                self._busy -= 1

    def _host_slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.host.hold() if self.host is not None else contextlib.nullcontext()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
