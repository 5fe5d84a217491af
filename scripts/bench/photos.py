"""Photo ingest benchmark (see bench_photos): HTTP ingest vs a raw S3 PUT vs a naive pipeline.

Makes phone-sized photos in a temp dir (a 12 MP JPEG with EXIF GPS, DateTimeOriginal and
Orientation 6, and a 12 MP HEIC of the same pixels), starts a throwaway PostgreSQL +
SeaweedFS and the real app under granian with ONE worker (scripts/bench/harness.py's Stack),
seeds a visit, then measures in one run:

  (a) the ingest: POST /v1/evidence (multipart) until 202 "processing" (acknowledged once
      the original is stored; derivatives follow from the queue), sequentially and with 4
      uploads at once;
  (b) the floor: boto3 put_object of the same bytes to the same SeaweedFS, sequentially;
  (c) the naive Pillow pipeline (media.derive.naive_pipeline: full decode, exif_transpose,
      thumbnail, both sizes saved) on the same file, in this process, against our
      make_derivatives / process_photo;
  (d) the offline bundle (200 and 304) without upload load and while 4 uploaders loop;
  (e) 16 phones at once sending ~1.6 MB 12 MP JPEGs: uploads acknowledged per second
      against raw S3 PUTs per second of the same bytes to the same store, 16 at once, in
      rounds taking turns (3 by default; the median round's ratio is the goal figure, each
      round is printed), each run with the processing queue drained first (the time the
      queue takes to drain is printed too);
  (f) HEIC: our derivatives against the naive pipeline on the same 12 MP HEIC (in (c)),
      made as an iPhone makes it (a grid of 512 px HEVC tiles, the rotation in the
      container; --heic-tile 0 for one HEVC image), with libheif's decode alone (what the
      naive pipeline cannot avoid; ours decodes with FFmpeg) and each pipeline in 2 image
      worker processes kept busy (photos/s and CPU per photo: what decode threads do to
      throughput, not only to one photo's wait).

Every upload and PUT has its own bytes (the same bytes in the same visit are answered as a
duplicate, early, which must not be measured): JPEG variants carry a unique COM segment
after the EXIF segment, HEIC variants a unique trailing 'free' box. All request bodies of
the measured runs are built before timing starts.

    scripts/bench_photos                      # defaults, ~1.5-2 min
    scripts/bench_photos --n 40 --heic-n 10   # more photos per measurement
    scripts/bench_photos --bundle-rate 0      # bundle clients closed-loop (as fast as they can)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import gc
import io
import json
import math
import os
import platform
import signal
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pillow_heif
from PIL import Image, ImageChops

from inspections.demo import ELM_HOUSE
from media.derive import make_derivatives
from media.pipeline import available_cpus, decode_threads, process_photo
from scripts.bench import harness as bl
from scripts.bench.naive import naive_pipeline
from service.settings import Settings
from service.storage import ObjectStore

ROOT = Path(__file__).resolve().parents[2]

SOURCE_PHOTO = ROOT / "tests" / "fixtures" / "photos" / "gps" / "DSCN0010.jpg"
SIZE = (4000, 3000)  # 12 MP, stored landscape; Orientation 6 says "rotate for portrait"
HEIC_QUALITY = 50  # ~3 MB for these pixels, what a phone's 12 MP HEIC weighs
HEIC_TILE = 512  # an iPhone's HEIC is a grid of 512 x 512 HEVC tiles (48 for 12 MP)
# Where the photo says it was taken: at the bench's service, the demo's care home.
GPS_LAT, GPS_LON = float(ELM_HOUSE["lat"]), float(ELM_HOUSE["lon"])
SPEEDUP_GOAL = 2.0  # naive / ours, image processing of a 12 MP JPEG, and of a HEIC
ACK_RATIO_GOAL = 0.7  # acknowledged uploads/s over raw S3 PUTs/s, 16 at once
ACK_CONCURRENCY = 16
ACK_TARGET_BYTES = 1_600_000  # the JPEG of (e): what a phone's 12 MP JPEG weighs
PUT_RATIO_GOAL = 3.0  # HTTP ingest / raw PUT, wall time per photo
BUNDLE_P99_GOAL_MS = 50.0
OTHER_CPU_WARN = 20.0  # % of one core
log = bl.log


# --------------------------------------------------------------------------- photos


@dataclass
class Photo:
    fmt: str  # "jpeg" | "heic"
    data: bytes
    path: Path
    content_type: str
    filename: str

    def variant(self, tag: str) -> bytes:
        """The same photo with a few unique bytes, so the server sees a new file."""
        payload = f"bench_photos {tag} {uuid.uuid4().hex}".encode()
        if self.fmt == "jpeg":
            pos = _after_app_segments(self.data)
            seg = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
            return self.data[:pos] + seg + self.data[pos:]
        # ISO BMFF: a top-level 'free' box at the end is ignored by readers.
        return self.data + (len(payload) + 8).to_bytes(4, "big") + b"free" + payload


def _after_app_segments(data: bytes) -> int:
    """Offset just after SOI and the APPn segments that follow it (EXIF stays first)."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    pos = 2
    while data[pos] == 0xFF and 0xE0 <= data[pos + 1] <= 0xEF:
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return pos


def phone_exif(taken: dt.datetime) -> bytes:
    """EXIF as a phone writes it: make/model, Orientation 6, capture time with offset, GPS."""
    exif = Image.Exif()
    exif[0x010F] = "Google"  # Make
    exif[0x0110] = "Pixel 7"  # Model
    exif[0x0112] = 6  # Orientation: rotate 90 CW to view (portrait)
    exif[0x0131] = "bench_photos"  # Software
    sub = exif.get_ifd(0x8769)
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
    sub[0x9003] = stamp  # DateTimeOriginal
    sub[0x9004] = stamp  # DateTimeDigitized
    sub[0x9011] = "+00:00"  # OffsetTimeOriginal
    sub[0x9291] = "123"  # SubSecTimeOriginal
    gps = exif.get_ifd(0x8825)

    def dms(deg: float) -> tuple[float, float, float]:
        d = abs(deg)
        m = (d - int(d)) * 60
        return (float(int(d)), float(int(m)), round((m - int(m)) * 60, 4))

    gps[1] = "N" if GPS_LAT >= 0 else "S"
    gps[2] = dms(GPS_LAT)
    gps[3] = "E" if GPS_LON >= 0 else "W"
    gps[4] = dms(GPS_LON)
    gps[5] = b"\x00"
    gps[6] = 87.0  # altitude, m
    gps[7] = (float(taken.hour), float(taken.minute), float(taken.second))
    gps[29] = taken.strftime("%Y:%m:%d")
    gps[31] = 4.0  # GPSHPositioningError, m
    return exif.tobytes()


def phone_pixels() -> Image.Image:
    """12 MP of real-looking content: a real photo upscaled, with sensor-like noise.

    A flat or smooth image would compress to a fraction of a phone JPEG's 3-5 MB and decode
    faster than a real one (entropy decoding is a large share of a JPEG decode).
    """
    with Image.open(SOURCE_PHOTO) as src:
        big = src.convert("RGB").resize(SIZE, Image.Resampling.LANCZOS)
    luma = Image.effect_noise(SIZE, 6)  # mean 128
    channels = [
        ImageChops.add(luma, Image.effect_noise(SIZE, 2.5), scale=1.0, offset=-128)
        for _ in range(3)
    ]
    return ImageChops.add(big, Image.merge("RGB", channels), scale=1.0, offset=-128)


def jpeg_near(pixels: Image.Image, exif: bytes, target: int) -> tuple[bytes, int]:
    """The JPEG of these pixels whose size is nearest ``target`` bytes (quality 40-95)."""
    best: tuple[int, bytes, int] | None = None
    lo, hi = 40, 95
    while lo <= hi:
        q = (lo + hi) // 2
        buf = io.BytesIO()
        pixels.save(buf, "JPEG", quality=q, exif=exif)
        data = buf.getvalue()
        if best is None or abs(len(data) - target) < best[0]:
            best = (abs(len(data) - target), data, q)
        lo, hi = (q + 1, hi) if len(data) < target else (lo, q - 1)
    assert best is not None
    return best[1], best[2]


def make_photos(
    tmp: Path, quality: int, taken: dt.datetime, heic_tile: int = HEIC_TILE
) -> tuple[Photo, Photo, Callable[[], Photo]]:
    """The JPEG and a ~1.6 MB JPEG of the same pixels now; the HEIC (x265 takes ~10 s) in a
    thread, collected by the callable."""
    log(f"making a 12 MP JPEG from {SOURCE_PHOTO.name} (upscaled, with noise) ...")
    pixels = phone_pixels()
    exif = phone_exif(taken)
    buf = io.BytesIO()
    pixels.save(buf, "JPEG", quality=quality, exif=exif)
    jpeg = Photo("jpeg", buf.getvalue(), tmp / "PXL_bench.jpg", "image/jpeg", "PXL_bench.jpg")
    jpeg.path.write_bytes(jpeg.data)
    data, q = jpeg_near(pixels, exif, ACK_TARGET_BYTES)
    log(f"  and at quality {q}: {len(data):,} B, for the 16-phone run")
    phone = Photo("jpeg", data, tmp / "PXL_phone.jpg", "image/jpeg", "PXL_phone.jpg")
    phone.path.write_bytes(phone.data)
    box: dict[str, Any] = {}

    def encode() -> None:
        try:
            out = io.BytesIO()
            pillow_heif.from_pillow(pixels).save(
                out, quality=HEIC_QUALITY, exif=exif, tile_size=heic_tile
            )
            box["data"] = out.getvalue()
        except BaseException as e:  # reported by the collector
            box["error"] = e

    grid = f"{heic_tile} px tiles" if heic_tile else "one image, no grid"
    log(f"encoding the same pixels as HEIC (quality {HEIC_QUALITY}, {grid}) in the background ...")
    thread = threading.Thread(target=encode, name="heic-encode", daemon=True)
    thread.start()

    def collect() -> Photo:
        thread.join()
        if "error" in box:
            raise RuntimeError(f"HEIC encoding failed: {box['error']!r}")
        heic = Photo("heic", box["data"], tmp / "IMG_bench.HEIC", "image/heic", "IMG_bench.HEIC")
        heic.path.write_bytes(heic.data)
        return heic

    return jpeg, phone, collect


def describe(photo: Photo) -> str:
    with Image.open(io.BytesIO(photo.data)) as im:
        exif = im.getexif()
        gps = exif.get_ifd(0x8825)
        taken = exif.get_ifd(0x8769).get(0x9003)
        orient = im.info.get("original_orientation", exif.get(0x0112))
        tiling = im.info.get("tiling")
        grid = (
            f"; grid of {tiling['num_columns']}x{tiling['num_rows']} tiles of "
            f"{tiling['tile_width']}x{tiling['tile_height']}"
            if tiling
            else "; one HEVC image (no grid)"
            if photo.fmt == "heic"
            else ""
        )
        return (
            f"{photo.fmt.upper():<4} {im.size[0]}x{im.size[1]} {len(photo.data) / 1e6:.2f} MB "
            f"({len(photo.data):,} B); EXIF Orientation {orient}, GPS "
            f"{'yes' if gps else 'NO'}, DateTimeOriginal {taken}{grid}"
        )


# --------------------------------------------------------------------------- CPU windows


@dataclass
class Pids:
    server: int | None
    postgres: int | None
    s3: int | None
    loop: int | None = None  # the granian worker, whose main thread runs the event loop


def granian_worker(server_pid: int | None) -> int | None:
    """The one worker process granian started (--workers 1)."""
    if server_pid is None:
        return None
    kids = [pid for pid, (ppid, _) in bl._proc_table().items() if ppid == server_pid]
    return kids[0] if len(kids) == 1 else None


def loop_schedstat(pid: int | None) -> tuple[float | None, float | None]:
    """Seconds the event loop thread ran on a CPU, and waited runnable for one (Linux)."""
    if pid is None:
        return None, None
    try:
        run_ns, wait_ns, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return None, None
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


@dataclass
class Cpu:
    t: float
    parts: dict[str, float | None]


def _under(table: dict[int, tuple[int, int]], pid: int, ancestor: int) -> bool:
    while pid in table and pid > 1:
        if pid == ancestor:
            return True
        pid = table[pid][0]
    return False


def own_cpu(table: dict[int, tuple[int, int]], pids: Pids) -> float | None:
    """CPU seconds of this process and the processes it runs for (c) (image pools, the HEIC
    encoder), not of the stack it started (server, PostgreSQL, SeaweedFS): else (c)'s
    worker processes count as "other" and the run calls itself disturbed."""
    me = os.getpid()
    total = bl.tree_cpu(table, me)
    if total is None:
        return None
    for root in (pids.server, pids.postgres, pids.s3):
        if root is not None and root != me and _under(table, root, me):
            total -= bl.tree_cpu(table, root) or 0.0
    return total


def cpu_now(pids: Pids) -> Cpu:
    table = bl._proc_table()
    loop_run, loop_wait = loop_schedstat(pids.loop)
    return Cpu(
        time.perf_counter(),
        {
            "loop_run": loop_run,
            "loop_wait": loop_wait,
            "server": bl.tree_cpu(table, pids.server),
            "postgres": bl.tree_cpu(table, pids.postgres),
            "s3": bl.tree_cpu(table, pids.s3),
            "client": own_cpu(table, pids),
            "machine": bl.machine_busy(),
        },
    )


def cpu_pct(a: Cpu, b: Cpu) -> dict[str, float | None]:
    """% of one core per part over the window, and "other": the rest of the machine."""
    secs = max(b.t - a.t, 1e-9)
    out: dict[str, float | None] = {}
    for k in a.parts:
        x, y = a.parts[k], b.parts[k]
        out[k] = None if x is None or y is None else (y - x) / secs * 100
    known = [out[k] for k in ("server", "postgres", "s3", "client")]
    machine = out["machine"]
    out["other"] = (
        None if machine is None or any(v is None for v in known) else machine - sum(known)  # type: ignore[misc]
    )
    return out


# --------------------------------------------------------------------------- results


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of seconds, in ms."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)] * 1000


@dataclass
class Row:
    key: str  # naive | derive | process | put | http1 | http4
    label: str
    fmt: str
    concurrency: int
    latencies: list[float]  # seconds per photo (per request)
    wall: float  # seconds for the whole run
    cpu: dict[str, float | None]
    errors: list[str] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # this process's CPU seconds per photo

    @property
    def cpu_ms(self) -> float:
        """Mean CPU ms per photo (all threads): unlike wall time, barely moved by neighbours."""
        return statistics.fmean(self.cpu_s) * 1000 if self.cpu_s else math.nan

    @property
    def n(self) -> int:
        return len(self.latencies)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000 if self.latencies else math.nan

    @property
    def per_s(self) -> float:
        return self.n / self.wall if self.wall else math.nan


def cpu_ms_per_request(row: Row, *parts: str) -> float:
    """CPU ms per request of ``parts`` (cpu_pct's keys) over the row's run."""
    pcts = [row.cpu.get(k) for k in parts]
    if not row.n or any(v is None for v in pcts):
        return math.nan
    return sum(v or 0.0 for v in pcts) / 100 * row.wall / row.n * 1000


def ack_bound(put16: Row, recv16: Row, ack16: Row) -> str:
    """What no ingest can beat on this machine: an acknowledged upload costs at least what
    the raw PUT costs (the server stores the same bytes with the same client) plus what
    receiving it costs (the 415 run: client send, HTTP, auth, parsing, sniffing); while the
    raw run costs only the former. Both runs fill the same CPUs. Then PostgreSQL's share of
    an acknowledged upload (its rows, its job, its audit line), from the ingest run."""
    raw = cpu_ms_per_request(put16, "s3", "client")
    recv = cpu_ms_per_request(recv16, "server", "postgres", "client", "s3")
    db = cpu_ms_per_request(ack16, "postgres") - cpu_ms_per_request(recv16, "postgres")
    return (
        f"     bound: a raw PUT costs {raw:.1f} ms of CPU (SeaweedFS + boto3); receiving "
        f"the same body (the 415 run) costs {recv:.1f} ms more; so even an ingest that "
        f"did nothing else (no queue row, no processing) reaches at most "
        f"{raw:.1f} / ({raw:.1f} + {recv:.1f}) = {raw / (raw + recv):.2f} of the raw rate; "
        f"with PostgreSQL's further {db:.1f} ms per acknowledged upload (the ingest run), "
        f"{raw / (raw + recv + db):.2f}"
    )


def timed(fn: Callable[[int], Any], n: int, warmup: int = 1) -> tuple[list[float], float]:
    """Run fn(i) warmup times unmeasured, then n times; per-call seconds and total wall."""
    for i in range(warmup):
        fn(-1 - i)
    out = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out, time.perf_counter() - start


DEFAULT_HEIF_THREADS = pillow_heif.options.DECODE_THREADS  # pillow-heif's own default, 4
IMAGE_WORKERS_BENCH = 2  # the image worker processes of the throughput run (the default)


def with_heif_threads(threads: int, fn: Callable[[str], Any], path: str) -> Any:
    """fn(path) with pillow-heif's decode threads set (read when a file is opened); 0 keeps
    pillow-heif's default."""
    before = pillow_heif.options.DECODE_THREADS
    pillow_heif.options.DECODE_THREADS = threads or DEFAULT_HEIF_THREADS
    try:
        return fn(path)
    finally:
        pillow_heif.options.DECODE_THREADS = before


def decode_only(path: str) -> tuple[int, int]:
    """What every pipeline pays first: open and decode the full picture, nothing else."""
    with Image.open(path) as im:
        im.load()
        return im.size


def _pool_task(fn: Callable[..., Any], path: str, mp: int, threads: int | None, _i: int) -> float:
    """One photo in a worker process; returns the CPU seconds it took (all its threads)."""
    t0 = time.process_time()
    if fn is process_photo:
        fn(path, mp, threads)
    else:
        fn(path)
    return time.process_time() - t0


def pool_throughput(
    configs: list[tuple[Callable[..., Any], int | None]], path: str, mp: int, per_worker: int
) -> list[tuple[list[float], float]]:
    """Photos/s of each (pipeline, libheif threads) in IMAGE_WORKERS_BENCH processes that are
    never idle (a long queue): one pool per config, the pools taking turns a round at a time.

    Returns (CPU seconds per photo, wall seconds in all) per config: CPU per photo shows a
    thread setting that burns CPU on switching even when the wall time hides it.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    w = IMAGE_WORKERS_BENCH
    ctx = multiprocessing.get_context("forkserver")
    pools = [ProcessPoolExecutor(w, mp_context=ctx) for _ in configs]
    tasks = [functools.partial(_pool_task, fn, path, mp, t) for fn, t in configs]
    out: list[tuple[list[float], float]] = [([], 0.0) for _ in configs]
    try:
        for pool, task in zip(pools, tasks, strict=True):
            list(pool.map(task, range(w)))  # warm: processes started, everything imported
        for _ in range(per_worker):
            for i, (pool, task) in enumerate(zip(pools, tasks, strict=True)):
                start = time.perf_counter()
                cpu = list(pool.map(task, range(w)))  # one photo per worker, all at once
                out[i] = (out[i][0] + cpu, out[i][1] + time.perf_counter() - start)
        return out
    finally:
        for pool in pools:
            pool.shutdown(cancel_futures=True)


def add_interleaved(
    rows: list[Row],
    pids: Pids,
    fmt: str,
    steps: list[tuple[str, str, Callable[[str], Any]]],
    path: str,
    n: int,
) -> None:
    """Each step once per round, n rounds after one unmeasured: per-step rows whose ratios a
    neighbour's passing load cannot skew (the CPU columns cover the whole run)."""
    for _, label, _ in steps:
        log(f"  {label} [{fmt}] ...")
    for _, _, step in steps:
        step(path)  # warm
    lat: list[list[float]] = [[] for _ in steps]
    cpu: list[list[float]] = [[] for _ in steps]
    a = cpu_now(pids)
    for _ in range(n):
        for i, (_, _, step) in enumerate(steps):
            c0, t0 = time.process_time(), time.perf_counter()
            step(path)
            lat[i].append(time.perf_counter() - t0)
            cpu[i].append(time.process_time() - c0)
    window = cpu_pct(a, cpu_now(pids))
    for (key, label, _), xs, cs in zip(steps, lat, cpu, strict=True):
        rows.append(Row(key, label, fmt, 1, xs, sum(xs), window, cpu_s=cs))


# --------------------------------------------------------------------------- HTTP


@dataclass
class Upload:
    evidence_id: str
    body: bytes
    headers: dict[str, str]
    expect: int = 202  # 415: the same body with its magic bytes spoiled (receive only)


def build_upload(
    photo: Photo, visit_id: str, auth: dict[str, str], tag: str, not_photo: bool = False
) -> Upload:
    """One multipart POST /v1/evidence body, as the phone sends it: metadata, then file.

    ``not_photo``: the same size, but the first bytes are no image signature, so the server
    receives and hashes it all, then refuses it (415) right after format detection.
    """
    evidence_id = str(uuid.uuid4())
    meta = {
        "evidence_id": evidence_id,
        "visit_id": visit_id,
        "caption": "Fire door propped open (bench)",
        "lat": GPS_LAT + 0.0001,
        "lon": GPS_LON,
        "accuracy_m": 8.0,
    }
    content = photo.variant(tag)
    if not_photo:
        content = b"NOT" + content[3:]
    boundary = "benchphotos" + uuid.uuid4().hex
    while boundary.encode() in content:  # practically never
        boundary = "benchphotos" + uuid.uuid4().hex
    b = boundary.encode()
    body = b"".join(
        [
            b"--" + b + b"\r\n",
            b'Content-Disposition: form-data; name="metadata"\r\n',
            b"Content-Type: application/json\r\n\r\n",
            json.dumps(meta).encode(),
            b"\r\n--" + b + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="',
            photo.filename.encode() + b'"\r\n',
            f"Content-Type: {photo.content_type}\r\n\r\n".encode(),
            content,
            b"\r\n--" + b + b"--\r\n",
        ]
    )
    headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    return Upload(evidence_id, body, headers, 415 if not_photo else 202)


def check_upload(status: int | str, content: bytes, up: Upload) -> str | None:
    """None when the upload was acknowledged as new evidence (202 processing), or refused
    as expected."""
    if up.expect != 202 and status == up.expect:
        return None
    if status != 202 or up.expect != 202:
        return f"POST /v1/evidence -> {status}: {content[:300].decode(errors='replace')}"
    try:
        ev = json.loads(content)
    except ValueError:
        return f"202 with a body that is not JSON: {content[:200]!r}"
    if ev.get("status") != "processing" or ev.get("duplicate_of") or ev.get("id") != up.evidence_id:
        return f"202 but status={ev.get('status')} duplicate_of={ev.get('duplicate_of')}"
    return None


async def post_upload(conn: bl.RawConnection, up: Upload) -> tuple[float, str | None, bytes]:
    t0 = time.perf_counter()
    try:
        status, content = await conn.request("POST", "/v1/evidence", up.headers, up.body)
    except (OSError, EOFError, ValueError, IndexError, asyncio.LimitOverrunError) as e:
        status, content = type(e).__name__, str(e).encode()
    dt_ = time.perf_counter() - t0
    return dt_, check_upload(status, content, up), content


def host_port(url: str) -> tuple[str, int]:
    u = httpx.URL(url)
    return u.host, u.port or 80


async def http_sequential(url: str, uploads: list[Upload]) -> tuple[list[float], float, list[str]]:
    conn = bl.RawConnection(*host_port(url))
    lat, errors = [], []
    try:
        start = time.perf_counter()
        for up in uploads:
            d, err, _ = await post_upload(conn, up)
            lat.append(d)
            if err:
                errors.append(err)
        return lat, time.perf_counter() - start, errors
    finally:
        conn.close()


async def http_concurrent(
    url: str, uploads: list[Upload], concurrency: int
) -> tuple[list[float], float, list[str]]:
    queue = iter(uploads)
    lat: list[float] = []
    errors: list[str] = []
    conns = [bl.RawConnection(*host_port(url)) for _ in range(concurrency)]

    async def worker(conn: bl.RawConnection) -> None:
        for up in queue:
            d, err, _ = await post_upload(conn, up)
            lat.append(d)
            if err:
                errors.append(err)

    try:
        start = time.perf_counter()
        async with asyncio.timeout(600):
            await asyncio.gather(*(worker(c) for c in conns))
        return lat, time.perf_counter() - start, errors
    finally:
        for c in conns:
            c.close()


# --------------------------------------------------------------------------- bundle


@dataclass
class BundleRun:
    label: str
    seconds: float
    lat200: list[float] = field(default_factory=list)
    lat304: list[float] = field(default_factory=list)
    # The same requests timed from their actual send (the same as above in closed loop).
    sent200: list[float] = field(default_factory=list)
    sent304: list[float] = field(default_factory=list)
    statuses: Counter[Any] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    cpu: dict[str, float | None] = field(default_factory=dict)
    uploads_done: int = 0
    upload_errors: list[str] = field(default_factory=list)
    late: int = 0  # paced sends that went out over 5 ms behind schedule

    @property
    def errors(self) -> int:
        return sum(v for k, v in self.statuses.items() if k not in ("ok200", "ok304"))


async def bundle_clients(
    url: str,
    scene: bl.Scene,
    clients: int,
    rate: float,
    warmup: float,
    seconds: float,
    run: BundleRun,
    pids: Pids,
) -> None:
    """``clients`` connections alternating 200 and 304 requests of the visit's bundle.

    With ``rate`` > 0 each client sends on a fixed schedule (rate / clients per second) and
    latency counts from the scheduled send time, so a stalled server shows in every request
    it delayed (no coordinated omission); with rate 0 they go as fast as they can.
    """
    path = f"/v1/visits/{scene.visit_id}/bundle"
    h200 = dict(scene.citizen_auth)
    h304 = {**scene.citizen_auth, "If-None-Match": scene.bundle_etag}
    start = time.perf_counter()
    ws, we = start + warmup, start + warmup + seconds
    cpu: list[Cpu] = []
    interval = clients / rate if rate > 0 else 0.0

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, ws - time.perf_counter()))
        cpu.append(cpu_now(pids))
        await asyncio.sleep(max(0.0, we - time.perf_counter()))
        cpu.append(cpu_now(pids))

    async def client(k: int) -> None:
        conn = bl.RawConnection(*host_port(url))
        perf = time.perf_counter
        due = start + (interval * k / clients if interval else 0.0)
        i = k
        try:
            while perf() < we:
                if interval:
                    wait = due - perf()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    elif -wait > 0.005 and due >= ws:
                        run.late += 1
                    t0 = due
                    due += interval
                else:
                    t0 = perf()
                sent = perf()
                want = 200 if i % 2 == 0 else 304
                i += 1
                try:
                    status, content = await conn.request(
                        "GET", path, h200 if want == 200 else h304, None
                    )
                except (OSError, EOFError, ValueError, IndexError, asyncio.LimitOverrunError) as e:
                    status, content = type(e).__name__, str(e).encode()
                t1 = perf()
                if t0 < ws or t0 >= we:
                    continue
                if status == want:
                    run.statuses[f"ok{want}"] += 1
                    (run.lat200 if want == 200 else run.lat304).append(t1 - t0)
                    (run.sent200 if want == 200 else run.sent304).append(t1 - sent)
                else:
                    run.statuses[status] += 1
                    if len(run.samples) < 3:
                        text = content[:200].decode(errors="replace")
                        run.samples.append(f"GET {path} (want {want}) -> {status}: {text}")
        finally:
            conn.close()

    async with asyncio.timeout(warmup + seconds + 120):
        await asyncio.gather(sampler(), *(client(k) for k in range(clients)))
    if len(cpu) == 2:
        run.cpu = cpu_pct(cpu[0], cpu[1])


async def bundle_under_load(
    url: str,
    scene: bl.Scene,
    args: argparse.Namespace,
    pids: Pids,
    bodies: Iterator[Upload],
    label: str,
    uploaders: int,
) -> BundleRun:
    """The bundle measured while ``uploaders`` connections each loop over new uploads."""
    run = BundleRun(label, args.load_seconds if uploaders else args.baseline_seconds)
    stop = asyncio.Event()
    done: list[float] = []
    warmup = args.load_warmup if uploaders else 1.0
    window: list[float] = []

    async def uploader() -> None:
        conn = bl.RawConnection(*host_port(url))
        try:
            while not stop.is_set():
                up = next(bodies)
                _, err, _ = await post_upload(conn, up)
                if err:
                    if len(run.upload_errors) < 3:
                        run.upload_errors.append(err)
                    await asyncio.sleep(0.1)
                else:
                    done.append(time.perf_counter())
        finally:
            conn.close()

    tasks = [asyncio.create_task(uploader()) for _ in range(uploaders)]
    try:
        t = time.perf_counter()
        window[:] = [t + warmup, t + warmup + run.seconds]
        await bundle_clients(
            url, scene, args.bundle_clients, args.bundle_rate, warmup, run.seconds, run, pids
        )
    finally:
        stop.set()
        if tasks:
            log(f"    waiting for {len(tasks)} in-flight uploads to finish ...")
            async with asyncio.timeout(120):
                await asyncio.gather(*tasks, return_exceptions=True)
    run.uploads_done = sum(window[0] <= x < window[1] for x in done)
    return run


# --------------------------------------------------------------------------- stack & seed


def s3_pid(stack: bl.Stack) -> int | None:
    proc = getattr(stack.s3, "_proc", None)
    if proc is not None:
        return proc.pid
    with contextlib.suppress(OSError, ValueError, KeyError):
        return int(json.loads(stack.s3.state_file.read_text())["pid"])
    return None


async def seed_scene(target: bl.Target) -> tuple[bl.Scene, str]:
    conn = await asyncpg.connect(target.dsn)
    try:
        async with httpx.AsyncClient(base_url=target.url, trust_env=False, timeout=30) as c:
            scene = await bl.seed(conn, c)
            # The geofence of the bench's service (GPS_LAT, GPS_LON) takes the photo as on site.
        return scene, await conn.fetchval("show server_version")
    finally:
        await conn.close()


async def first_upload(url: str, up: Upload) -> dict[str, Any]:
    """One unmeasured upload: starts the image worker pool, checks the response, and
    returns the evidence once processed (polling its link)."""
    conn = bl.RawConnection(*host_port(url))
    try:
        _, err, content = await post_upload(conn, up)
    finally:
        conn.close()
    if err:
        raise RuntimeError(f"warm-up upload failed: {err}")
    ev = json.loads(content)
    auth = {k: v for k, v in up.headers.items() if k.lower() == "authorization"}
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as c:
        deadline = time.monotonic() + 120
        while ev["status"] == "processing" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            ev = (await c.get(f"/v1/evidence/{ev['id']}", headers=auth)).json()
    return ev


async def drain(dsn: str, deadline_s: float = 600.0) -> tuple[float, int, int]:
    """Wait until no photo is processing: (seconds waited, ready, rejected)."""
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        while await conn.fetchval("select count(*) from evidence where status = 'processing'"):
            if time.perf_counter() - start > deadline_s:
                break
            await asyncio.sleep(0.1)
        waited = time.perf_counter() - start
        counts = dict(await conn.fetch("select status, count(*) from evidence group by status"))
        return waited, counts.get("ready", 0), counts.get("rejected", 0)
    finally:
        await conn.close()


def put_concurrent(
    store: ObjectStore, bodies: list[bytes], concurrency: int, content_type: str
) -> tuple[list[float], float, list[str]]:
    """boto3 put_object of each body, ``concurrency`` threads at once (one shared client,
    as the app has)."""
    from concurrent.futures import ThreadPoolExecutor

    def put(body: bytes) -> float:
        t0 = time.perf_counter()
        store.client.put_object(
            Bucket=store.bucket,
            Key=f"bench-raw/conc/{uuid.uuid4()}",
            Body=body,
            ContentType=content_type,
        )
        return time.perf_counter() - t0

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(put, bodies[:concurrency]))  # warm: connections open
        start = time.perf_counter()
        lat = list(pool.map(put, bodies[concurrency:]))
        return lat, time.perf_counter() - start, []


# --------------------------------------------------------------------------- report


def heic_shape(photos: list[Photo]) -> str:
    heic = next((p for p in photos if p.fmt == "heic"), None)
    if heic is None:
        return "HEIC"
    with Image.open(io.BytesIO(heic.data)) as im:
        mp = im.size[0] * im.size[1] / 1e6
        tiling = im.info.get("tiling")
    return (
        f"{mp:.0f} MP grid ({tiling['num_columns'] * tiling['num_rows']} tiles)"
        if tiling
        else f"{mp:.0f} MP single-image HEIC"
    )


def f_ms(v: float, width: int = 8) -> str:
    return ("-" if v is None or math.isnan(v) else f"{v:.1f}").rjust(width)


def f_pct(v: float | None, width: int = 6) -> str:
    return ("-" if v is None else f"{v:.0f}%").rjust(width)


# The CPU columns of both tables (photos, bundle): their titles, and a row's cells.
CPU_HEAD = f"{'srv':>5} {'pg':>4} {'s3':>5} {'cli':>5} {'other':>5} {'loop run':>8} {'wait':>5}"


def cpu_cells(c: dict[str, float | None]) -> str:
    """A run's CPU (% of one core, from cpu_pct) under CPU_HEAD."""
    return (
        f"{f_pct(c.get('server'), 5)} {f_pct(c.get('postgres'), 4)} {f_pct(c.get('s3'), 5)} "
        f"{f_pct(c.get('client'), 5)} {f_pct(c.get('other'), 5)} "
        f"{f_pct(c.get('loop_run'), 8)} {f_pct(c.get('loop_wait'), 5)}"
    )


def report(
    args: argparse.Namespace,
    target: bl.Target,
    photos: list[Photo],
    sample_ev: dict[str, dict[str, Any]],
    rows: list[Row],
    bundles: list[BundleRun],
    pg_version: str,
    scene: bl.Scene,
) -> int:
    out = print
    st: Settings | None = target.settings
    out("== bench_photos ==")
    la = args.loadavg
    out(
        f"date:      {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC  (load average before "
        f"start: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f})"
    )
    out(
        f"machine:   nproc={os.cpu_count()}  {platform.system()} {platform.machine()}  "
        f"Python {platform.python_version()}"
    )
    out(
        f"software:  granian {pkg_version('granian')}  litestar {pkg_version('litestar')}  "
        f"Pillow {pkg_version('pillow')}  pillow-heif {pkg_version('pillow-heif')} "
        f"(libheif {pillow_heif.libheif_version()})  boto3 {pkg_version('boto3')}  "
        f"PostgreSQL {pg_version}  SeaweedFS (devstack)"
    )
    if st is not None:
        out(
            f"server:    granian --interface asgi --workers 1 (own process)  "
            f"LOG_LEVEL={st.log_level}  IMAGE_WORKERS={st.image_workers}  "
            f"MAX_PHOTO_BYTES={st.max_photo_bytes:,}  MAX_PHOTO_PIXELS={st.max_photo_pixels:,}  "
            f"DB_POOL_MAX={st.db_pool_max}  PostgreSQL {target.durability}"
        )
    for p in photos:
        out(f"photo:     {describe(p)}")
    out(
        "variants:  every upload / PUT has unique bytes (JPEG: a COM segment after EXIF; "
        "HEIC: a trailing 'free' box), bodies built before timing; fresh evidence_id each"
    )
    ev = sample_ev.get("jpeg", {})
    loc = ev.get("location") or {}
    out(
        f"check:     first JPEG upload -> status {ev.get('status')}, {ev.get('width')}x"
        f"{ev.get('height')}, location {loc.get('source')}/{loc.get('check')}, time "
        f"{ev.get('time_check')}; HEIC -> {sample_ev.get('heic', {}).get('status')} "
        f"{sample_ev.get('heic', {}).get('content_type')}"
    )
    out("")
    bl.print_table_head(
        out,
        f"{'measurement':<50} {'fmt':<4} {'n':>3} {'conc':>4} {'p50 ms':>8} {'mean ms':>8} "
        f"{'max ms':>8} {'photo/s':>8} {CPU_HEAD}",
    )
    for r in rows:
        out(
            f"{r.label:<50} {r.fmt:<4} {r.n:>3} {r.concurrency:>4} {f_ms(pct(r.latencies, 50))} "
            f"{f_ms(r.mean_ms)} {f_ms(pct(r.latencies, 100))} {r.per_s:>8.2f} {cpu_cells(r.cpu)}"
        )
    out(
        "(ms per photo; photo/s = n / wall time of the run; cpu columns: % of one core over "
        "the run; srv = granian tree incl. image workers, s3 = SeaweedFS, cli = this process "
        "and its (c) worker processes: it runs (b) and (c) itself)"
    )
    out("")
    by = {(r.key, r.fmt): r for r in rows}
    verdicts = []

    def ratio(a: Row | None, b: Row | None) -> float:
        return a.mean_ms / b.mean_ms if a and b and b.mean_ms else math.nan

    naive, ours = by.get(("naive", "jpeg")), by.get(("derive", "jpeg"))
    proc = by.get(("process", "jpeg"))
    speedup = ratio(naive, ours)
    ok = speedup >= SPEEDUP_GOAL
    verdicts.append(ok)
    out(
        f"GOAL image processing, 12 MP JPEG: naive_pipeline / make_derivatives = "
        f"{speedup:.2f}x   goal >= {SPEEDUP_GOAL:g}x   {'PASS' if ok else 'FAIL'}"
    )
    out(
        f"     (in-process, taking turns, mean; naive / process_photo incl. detect + EXIF: "
        f"{ratio(naive, proc):.2f}x; HEIC naive / make_derivatives: "
        f"{ratio(by.get(('naive', 'heic')), by.get(('derive', 'heic'))):.2f}x)"
    )
    heic_speedup = ratio(by.get(("naive", "heic")), by.get(("derive", "heic")))
    ok = heic_speedup >= SPEEDUP_GOAL
    verdicts.append(ok)
    out(
        f"GOAL image processing, 12 MP HEIC: naive_pipeline / make_derivatives = "
        f"{heic_speedup:.2f}x   goal >= {SPEEDUP_GOAL:g}x   {'PASS' if ok else 'FAIL'}"
    )
    naive_h, ours_h, dec_h = (by.get((k, "heic")) for k in ("naive", "derive", "decode"))
    if naive_h and ours_h and dec_h:
        dec_ms, ours_ms = dec_h.cpu_ms, ours_h.cpu_ms
        out(
            f"     by CPU time (all threads; what a neighbour's load barely moves): naive "
            f"{naive_h.cpu_ms:.0f} ms, ours {ours_ms:.0f} ms = "
            f"{naive_h.cpu_ms / ours_ms:.2f}x"
        )
        out(
            f"     where it goes: libheif's decode of the {heic_shape(photos)} alone is "
            f"{dec_ms:.0f} ms CPU ({dec_ms / naive_h.cpu_ms:.0%} of naive's); naive pays it "
            f"and ours does not: ours decodes the same tiles with FFmpeg's HEVC decoder "
            f"(media/hevc.py) straight to half size, {ours_ms:.0f} ms CPU in all. HEVC has no "
            "reduced-scale decode, so the decode itself stays full size: "
            "scripts/bench_heic_decoders compares the two decoders alone."
        )
    pool = {k: by.get((k, "heic")) for k in ("pool-naive", "pool-default", "pool-ours")}
    if all(pool.values()):
        pn, pd, po = pool["pool-naive"], pool["pool-default"], pool["pool-ours"]
        assert pn and pd and po
        out(
            f"     throughput, {IMAGE_WORKERS_BENCH} image workers always busy: ours "
            f"{po.per_s:.2f} photo/s ({po.mean_ms:.0f} ms CPU each) with the workers' "
            f"threads, {pd.per_s:.2f} photo/s ({pd.mean_ms:.0f} ms CPU) with pillow-heif's "
            f"default {DEFAULT_HEIF_THREADS}; naive {pn.per_s:.2f} photo/s "
            f"({pn.mean_ms:.0f} ms CPU): ours / naive = {po.per_s / pn.per_s:.2f}x "
            f"(by CPU {pn.cpu_ms / po.cpu_ms:.2f}x; a photo alone gets every CPU, when the "
            "workers fill them one thread each)"
        )
    one = by.get(("derive1", "heic"))
    if one and ours_h:
        out(
            f"     a photo alone: ours {ours_h.mean_ms:.0f} ms with {args.heif_alone} "
            f"threads, {one.mean_ms:.0f} ms with 1 (naive / ours at 1 thread: "
            f"{ratio(naive_h, one):.2f}x)"
        )
    # Each round's pair (raw, acknowledged); the median round's ratio is the figure.
    pairs = list(
        zip(
            (r for r in rows if r.key == "put16"),
            (r for r in rows if r.key == "ack16"),
            strict=True,
        )
    )
    pairs.sort(key=lambda pa: pa[1].per_s / pa[0].per_s if pa[0].per_s else math.nan)
    put16, ack = pairs[len(pairs) // 2] if pairs else (None, None)
    ack_ratio = ack.per_s / put16.per_s if ack and put16 and put16.per_s else math.nan
    ok = ack_ratio >= ACK_RATIO_GOAL and not any(a.errors for _, a in pairs)
    verdicts.append(ok)
    out(
        f"GOAL {ACK_CONCURRENCY} phones at once, {sample_ev.get('phone', {}).get('bytes', 0):,} B "
        f"12 MP JPEGs: acknowledged uploads/s / raw S3 PUTs/s = "
        f"{ack.per_s if ack else math.nan:.1f} / {put16.per_s if put16 else math.nan:.1f} = "
        f"{ack_ratio:.2f} (median of {len(pairs)} rounds)   goal >= {ACK_RATIO_GOAL:g}   "
        f"{'PASS' if ok else 'FAIL'}"
    )
    if pairs:
        each = ", ".join(
            f"{a.per_s:.1f} / {p.per_s:.1f} = {a.per_s / p.per_s:.2f}" for p, a in pairs
        )
        pooled = sum(a.n for _, a in pairs) / sum(a.wall for _, a in pairs)
        pooled /= sum(p.n for p, _ in pairs) / sum(p.wall for p, _ in pairs)
        out(f"     rounds, lowest ratio first: {each}; all rounds pooled {pooled:.2f}")
    recv16 = by.get(("recv16", "jpeg"))
    if ack and put16 and recv16:
        out(ack_bound(put16, recv16, ack))
    for when, (waited, ready, rejected) in (sample_ev.get("drains") or {}).items():
        out(
            f"     queue drained {when}: {waited:.1f} s of waiting; evidence ready "
            f"{ready}, rejected {rejected}"
        )
    http1, put = by.get(("http1", "jpeg")), by.get(("put", "jpeg"))
    put_ratio = ratio(http1, put)
    ok = put_ratio <= PUT_RATIO_GOAL and not (http1 and http1.errors)
    verdicts.append(ok)
    a_ms, b_ms = (r.mean_ms if r else math.nan for r in (http1, put))
    out(
        f"GOAL full HTTP ingest vs raw S3 PUT, 12 MP JPEG: {a_ms:.1f} / {b_ms:.1f} ms = "
        f"{put_ratio:.2f}x   goal <= "
        f"{PUT_RATIO_GOAL:g}x   {'PASS' if ok else 'FAIL'}"
    )
    out(
        f"     (sequential wall time per photo, mean; HEIC: "
        f"{ratio(by.get(('http1', 'heic')), by.get(('put', 'heic'))):.2f}x; HTTP ingest / "
        f"naive in-process, JPEG: {ratio(http1, naive):.2f}x)"
    )
    out("")
    mode = (
        f"paced, {args.bundle_rate:g} req/s in all, latency from the scheduled send time"
        if args.bundle_rate > 0
        else "closed loop (as fast as each client can)"
    )
    out(
        f"bundle: GET /v1/visits/{{id}}/bundle, {args.bundle_clients} clients alternating "
        f"200 and 304 (If-None-Match), {mode}; body {scene.bundle_bytes:,} B"
    )
    bl.print_table_head(
        out,
        f"{'scenario':<34} {'kind':>4} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'p99 sent':>8} {'max sent':>8} {'errors':>6} {'uploads':>8} {CPU_HEAD}",
    )
    for b in bundles:
        for kind, lat, sent in (("200", b.lat200, b.sent200), ("304", b.lat304, b.sent304)):
            up = f"{b.uploads_done / b.seconds:.1f}/s" if b.label.startswith("while") else "-"
            out(
                f"{b.label:<34} {kind:>4} {len(lat):>6} {f_ms(pct(lat, 50))} "
                f"{f_ms(pct(lat, 99))} {f_ms(pct(lat, 100))} {f_ms(pct(sent, 99))} "
                f"{f_ms(pct(sent, 100))} {b.errors:>6} {up:>8} {cpu_cells(b.cpu)}"
            )
    out(
        "(loop run / wait: % of the time the server's event-loop thread was on a CPU / was "
        "runnable but waiting for one, from /proc/<pid>/task/<pid>/schedstat)"
    )
    loaded = [b for b in bundles if b.label.startswith("while")]
    for b in loaded:
        p99 = max(pct(b.lat200, 99), pct(b.lat304, 99))
        ok = p99 < BUNDLE_P99_GOAL_MS and not b.errors and bool(b.lat200 and b.lat304)
        verdicts.append(ok)
        out(
            f"GOAL bundle p99 (worse of 200/304) {b.label}: {p99:.1f} ms   goal < "
            f"{BUNDLE_P99_GOAL_MS:g} ms   {'PASS' if ok else 'FAIL'}"
        )
    out("")
    problems = False
    for r in rows:
        if r.errors:
            problems = True
            out(f"errors in {r.label} ({r.fmt}): {len(r.errors)}, e.g. {r.errors[0]}")
    for b in bundles:
        if b.errors:
            problems = True
            out(f"errors in bundle {b.label}: {dict(b.statuses)}; e.g. {b.samples[:2]}")
        if b.upload_errors:
            problems = True
            out(f"upload errors during bundle {b.label}: {b.upload_errors}")
        if b.late and args.bundle_rate > 0:
            out(
                f"note: bundle {b.label}: {b.late} of "
                f"{len(b.lat200) + len(b.lat304)} requests went out > 5 ms behind schedule "
                "(the connection's previous response was late, or this process was not "
                "scheduled); p50/p99/max count from the schedule, '... sent' from the actual send"
            )
    noisy = [r.label + f" ({r.fmt})" for r in rows if (r.cpu.get("other") or 0) > OTHER_CPU_WARN]
    noisy += [b.label for b in bundles if (b.cpu.get("other") or 0) > OTHER_CPU_WARN]
    bl.print_noise_and_log(out, noisy, target)
    return 1 if problems else 0


# --------------------------------------------------------------------------- main


def bench(args: argparse.Namespace, tmp: Path, stack: bl.Stack) -> int:
    now = dt.datetime.now(dt.UTC)
    # Taken two hours from now: inside the bench visit's window (now + 1 h .. now + 4 h).
    jpeg, phone, collect_heic = make_photos(
        tmp, args.quality, now + dt.timedelta(hours=2), args.heic_tile
    )
    target = stack.start()
    pids = Pids(
        target.server_pid, target.postgres_pid, s3_pid(stack), granian_worker(target.server_pid)
    )
    log("seeding: organisation, people, service, 100-question checklist, visit ...")
    scene, pg_version = asyncio.run(seed_scene(target))
    log("waiting for the HEIC encoder ...")
    heic = collect_heic()
    photos = [jpeg, heic]
    counts = {"jpeg": args.n, "heic": args.heic_n}
    st = target.settings
    assert st is not None
    rows: list[Row] = []

    def add(key: str, label: str, fmt: str, conc: int, run: Callable[[], Any]) -> Row:
        log(f"  {label} [{fmt}] ...")
        a = cpu_now(pids)
        lat, wall, errors = run()
        row = Row(key, label, fmt, conc, lat, wall, cpu_pct(a, cpu_now(pids)), errors)
        rows.append(row)
        return row

    # Build every measured upload body now (a few ms each), not while timing.
    url, visit, auth = target.url, scene.visit_id, scene.citizen_auth
    plan: dict[str, dict[str, list[Upload]]] = {}
    for p in photos:
        n = counts[p.fmt]
        plan[p.fmt] = {
            "warm": [build_upload(p, visit, auth, f"{p.fmt}-warm-{i}") for i in range(2)],
            "seq": [build_upload(p, visit, auth, f"{p.fmt}-seq-{i}") for i in range(n)],
            "refused": [
                build_upload(p, visit, auth, f"{p.fmt}-415-{i}", not_photo=True)
                for i in range(n if p.fmt == "jpeg" else 0)
            ],
            "conc": [
                build_upload(p, visit, auth, f"{p.fmt}-conc-{i}")
                for i in range(max(2 * n, 2 * args.concurrency))
            ],
        }
    put_bodies = {p.fmt: [p.variant(f"put-{i}") for i in range(counts[p.fmt] + 1)] for p in photos}
    n16 = args.ack_n
    # The same bodies with their magic bytes spoiled: read to the end, then refused (415).
    recv_plan = [
        build_upload(phone, visit, auth, f"recv16-{i}", not_photo=True)
        for i in range(n16 + ACK_CONCURRENCY)
    ]

    # This process holds many long-lived objects (boto3, asyncpg, Pillow...): a full garbage
    # collection pass over them stalls the load client for tens of ms, so park them.
    gc.collect()
    gc.freeze()

    # (c) image processing in this process, while the server is idle.
    log("(c) image processing in-process, the pipelines taking turns photo by photo:")
    mp = st.max_photo_pixels
    cpus = available_cpus()
    alone = decode_threads(1, cpus)  # libheif threads the worker gives a photo alone
    args.heif_alone = alone
    # (key, label, step, libheif threads): naive keeps pillow-heif's default, ours gets the
    # worker's. Taking turns, so a neighbour's load lands on every pipeline alike.
    steps: list[tuple[str, str, Callable[[str], Any], int]] = [
        ("naive", "(c) naive_pipeline (Pillow, full decode)", naive_pipeline, 0),
        ("derive", "(c) ours: make_derivatives", lambda path: make_derivatives(path, mp), alone),
        (
            "process",
            "(c) ours: process_photo (detect+EXIF+derive)",
            lambda path: process_photo(path, mp),
            alone,
        ),
    ]
    heic_steps = [
        steps[0],
        ("decode", f"(c) libheif decode only, {alone} thread(s)", decode_only, alone),
        ("derive", f"(c) ours: make_derivatives, {alone} thread(s)", steps[1][2], alone),
    ]
    if alone > 1:  # what the threads buy a photo alone
        heic_steps.append(("derive1", "(c) ours: make_derivatives, 1 thread", steps[1][2], 1))
    for p in photos:
        add_interleaved(
            rows,
            pids,
            p.fmt,
            [
                (k, label, lambda path, f=f, t=t: with_heif_threads(t, f, path))
                for k, label, f, t in (heic_steps if p.fmt == "heic" else steps)
            ],
            str(p.path),
            counts[p.fmt],
        )
    heic = next(p for p in photos if p.fmt == "heic")
    w = IMAGE_WORKERS_BENCH
    busy = decode_threads(w, cpus)  # what each worker gets when all are busy
    log(f"(c) HEIC in {w} image worker processes kept busy, the three pools taking turns:")
    pools = [
        (
            "pool-naive",
            f"(c) {w} workers: naive, {DEFAULT_HEIF_THREADS} threads",
            naive_pipeline,
            None,
        ),
        (
            "pool-default",
            f"(c) {w} workers: ours, {DEFAULT_HEIF_THREADS} threads",
            process_photo,
            DEFAULT_HEIF_THREADS,
        ),
        ("pool-ours", f"(c) {w} workers: ours, {busy} thread(s) (the app)", process_photo, busy),
    ]
    a = cpu_now(pids)
    measured = pool_throughput(
        [(fn, t) for _, _, fn, t in pools], str(heic.path), mp, counts["heic"]
    )
    window = cpu_pct(a, cpu_now(pids))
    for (key, label, _, _), (cpu_s, wall) in zip(pools, measured, strict=True):
        rows.append(Row(key, label, "heic", w, cpu_s, wall, window, cpu_s=cpu_s))

    # (b) the floor: the same bytes straight into the same store.
    log("(b) raw S3 PUT, sequential:")
    store = ObjectStore(
        st.s3_endpoint_url, st.s3_bucket, st.s3_region, st.s3_access_key, st.s3_secret_key
    )
    try:
        for p in photos:
            bodies = put_bodies[p.fmt]

            def put(i: int, p: Photo = p, bodies: list[bytes] = bodies) -> None:
                store.client.put_object(
                    Bucket=store.bucket,
                    Key=f"bench-raw/{p.fmt}/{uuid.uuid4()}",
                    Body=bodies[i],  # i = -1 for the warm-up: the spare last body
                    ContentType=p.content_type,
                )

            add(
                "put",
                "(b) raw S3 put_object (boto3, same store)",
                p.fmt,
                1,
                lambda put=put, p=p: (*timed(put, counts[p.fmt]), []),
            )
    finally:
        store.close()

    # (a) the full ingest over HTTP.
    log("(a) HTTP ingest, POST /v1/evidence until 202 acknowledged:")
    sample_ev: dict[str, dict[str, Any]] = {}
    for p in photos:
        sample_ev[p.fmt] = asyncio.run(first_upload(url, plan[p.fmt]["warm"][0]))
        asyncio.run(first_upload(url, plan[p.fmt]["warm"][1]))
        add(
            "http1",
            "(a) HTTP ingest POST /v1/evidence -> 202 stored",
            p.fmt,
            1,
            lambda p=p: asyncio.run(http_sequential(url, plan[p.fmt]["seq"])),
        )
        if plan[p.fmt]["refused"]:
            add(
                "recv",
                "(a) same size, not a photo -> 415 (receive only)",
                p.fmt,
                1,
                lambda p=p: asyncio.run(http_sequential(url, plan[p.fmt]["refused"])),
            )
        add(
            "http4",
            "(a) HTTP ingest POST /v1/evidence -> 202 stored",
            p.fmt,
            args.concurrency,
            lambda p=p: asyncio.run(http_concurrent(url, plan[p.fmt]["conc"], args.concurrency)),
        )
    plan.clear()

    # (e) 16 phones at once, ~1.6 MB JPEGs: acknowledged uploads/s against raw PUTs/s, in
    # rounds taking turns (raw, then acknowledged), each after the queue has drained: one
    # pair of 1-2 s runs moves with whatever else the machine does; the median round less.
    drains: dict[str, tuple[float, int, int]] = {}
    log(
        f"(e) {ACK_CONCURRENCY} at once, {len(phone.data):,} B JPEGs, {n16} each, "
        f"{args.ack_rounds} rounds:"
    )
    store = ObjectStore(
        st.s3_endpoint_url, st.s3_bucket, st.s3_region, st.s3_access_key, st.s3_secret_key
    )
    try:
        for r in range(1, args.ack_rounds + 1):
            # Built before each round (not all at once: ~1.6 MB each), never while timing.
            puts = [phone.variant(f"put16-{r}-{i}") for i in range(n16 + ACK_CONCURRENCY)]
            acks = [build_upload(phone, visit, auth, f"ack-{r}-{i}") for i in range(n16 + 1)]
            drains[f"before round {r} of (e)"] = asyncio.run(drain(target.dsn))
            add(
                "put16",
                f"(e) raw S3 put_object, {ACK_CONCURRENCY} threads, round {r}",
                "jpeg",
                ACK_CONCURRENCY,
                lambda puts=puts: put_concurrent(store, puts, ACK_CONCURRENCY, phone.content_type),
            )
            asyncio.run(first_upload(url, acks[0]))  # warm: connections, pool
            add(
                "ack16",
                f"(e) POST /v1/evidence -> 202 stored, round {r}",
                "jpeg",
                ACK_CONCURRENCY,
                lambda acks=acks: asyncio.run(http_concurrent(url, acks[1:], ACK_CONCURRENCY)),
            )
            del puts, acks
    finally:
        store.close()
    log("    waiting for the processing queue to drain ...")
    drains["after (e)"] = asyncio.run(drain(target.dsn))
    # What receiving alone costs at the same concurrency (no store, no queue): with the
    # raw PUT's own CPU it bounds the acknowledged rate (ack_bound below).
    add(
        "recv16",
        "(e) same bodies, not a photo -> 415 (receive only)",
        "jpeg",
        ACK_CONCURRENCY,
        lambda: asyncio.run(http_concurrent(url, recv_plan[1 : n16 + 1], ACK_CONCURRENCY)),
    )
    sample_ev["phone"] = {"bytes": len(phone.data)}

    # (d) the bundle, idle and while uploads run.
    conc_rate = next((r.per_s for r in rows if r.key == "http4" and r.fmt == "jpeg"), 5.0)
    need = int(max(conc_rate, 2.0) * (args.load_seconds + args.load_warmup + 3) * 1.5) + 8
    log(f"building {need} unique JPEG upload bodies for the load phase ...")
    pool = [build_upload(jpeg, visit, auth, f"load-{i}") for i in range(need)]
    extra = 0

    def load_bodies() -> Iterator[Upload]:
        nonlocal extra
        yield from pool
        while True:  # ran out of prepared bodies: build on the fly (noted in the log)
            extra += 1
            yield build_upload(jpeg, visit, auth, f"load-extra-{extra}")

    source = load_bodies()
    gc.collect()
    gc.freeze()
    bundles = []
    log(f"(d) bundle without upload load: {args.baseline_seconds:g} s ...")
    bundles.append(
        asyncio.run(bundle_under_load(url, scene, args, pids, source, "no upload load", 0))
    )
    log(
        f"(d) bundle while {args.concurrency} uploaders loop over 12 MP JPEGs: "
        f"{args.load_warmup:g} s warm-up + {args.load_seconds:g} s ..."
    )
    label = f"while {args.concurrency} JPEG uploads run"
    bundles.append(
        asyncio.run(bundle_under_load(url, scene, args, pids, source, label, args.concurrency))
    )
    if extra:
        log(f"note: {extra} load-phase bodies were built during the run (estimate too low)")
    drains["after (d)"] = asyncio.run(drain(target.dsn))
    sample_ev["drains"] = drains  # type: ignore[assignment]
    return report(args, target, photos, sample_ev, rows, bundles, pg_version, scene)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench_photos",
        description="Photo ingest over HTTP vs a raw S3 PUT vs a naive Pillow pipeline, and "
        "the bundle's latency while uploads run, against granian with one worker.",
    )
    bl.add_numbers(
        p,
        n=(20, "JPEG photos per sequential measurement (20)"),
        heic_n=(5, "HEIC photos per sequential measurement (5; a 12 MP HEIC decode takes ~1 s)"),
        concurrency=(4, "uploads at once: the concurrent ingest run and the bundle load phase (4)"),
        quality=(92, "JPEG quality of the photo (92)"),
        heic_tile=(
            HEIC_TILE,
            f"HEIC grid tile size ({HEIC_TILE}, as an iPhone); 0: one HEVC image, no grid",
        ),
        bundle_clients=(4, "bundle connections (default 4)"),
        bundle_rate=(
            200.0,
            "bundle requests/s over all clients, paced (default 200); 0: closed loop",
        ),
        baseline_seconds=(5.0, "bundle without uploads (5)"),
        load_seconds=(10.0, "bundle while uploads run (10)"),
        load_warmup=(2.0, "uploads running before measuring (2)"),
        ack_n=(96, "uploads (and PUTs) in each 16-at-once run (96)"),
        ack_rounds=(3, "rounds of (e), raw then acknowledged; the median round is the goal (3)"),
    )
    p.add_argument(
        "--image-workers",
        type=int,
        help="the server's IMAGE_WORKERS (default: the settings' default, 2)",
    )
    bl.add_stack_options(p)
    args = p.parse_args(argv)
    if min(args.n, args.heic_n, args.concurrency, args.bundle_clients, args.ack_rounds) < 1:
        p.error("--n, --heic-n, --concurrency, --bundle-clients and --ack-rounds must be >= 1")
    if args.bundle_rate < 0 or args.load_seconds <= 0 or args.baseline_seconds <= 0:
        p.error("--bundle-rate >= 0, --load-seconds and --baseline-seconds > 0")
    if not 1 <= args.quality <= 100:
        p.error("--quality is 1..100")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.loadavg = os.getloadavg()
    if not SOURCE_PHOTO.is_file():
        log(f"missing source photo {SOURCE_PHOTO}")
        return 2
    if args.image_workers is not None:
        os.environ["IMAGE_WORKERS"] = str(args.image_workers)

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-photos-") as d:
        os.chmod(d, 0o755)  # PostgreSQL runs as 'postgres' when we are root
        stack = bl.Stack(Path(d), args.log_level, args.pg_fast)
        try:
            return bench(args, Path(d), stack)
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        finally:
            stack.stop()
            log(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
