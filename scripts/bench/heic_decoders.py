"""HEIC: our pipeline with each HEVC decoder, against the naive pipeline, same file.

libheif's decode (libde265, what pillow-heif bundles) is ~90% of a HEIC photo's CPU, and
the naive pipeline pays the same decode, so no work after it could make ours 2x faster.
media/hevc.py decodes the HEIC shapes phones write with FFmpeg's HEVC decoder (PyAV)
instead. This prints both decoders alone on the same tiles, and make_derivatives with
FFmpeg (the app) and with libheif (forced, as before media/hevc.py).

Same 12 MP HEIC as bench_photos (its pixels, EXIF, quality and 512 px grid). Everything on
one thread (libheif DECODE_THREADS=1, FFmpeg thread_count=1), CPU time, taking turns.

    scripts/bench_heic_decoders            # 5 rounds
    scripts/bench_heic_decoders --rounds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pillow_heif
from PIL import Image

from media import hevc
from media.derive import make_derivatives
from media.detect import _boxes, _iloc, _item_types
from scripts.bench.naive import naive_pipeline
from scripts.bench.photos import HEIC_QUALITY, HEIC_TILE, SPEEDUP_GOAL, phone_exif, phone_pixels

pillow_heif.register_heif_opener()


def grid_tiles(data: bytes) -> tuple[bytes, list[bytes]]:
    """(hvcC payload, each tile's length-prefixed NAL units) of a grid HEIC's primary image."""
    mv = memoryview(data)
    meta = next((s, e) for k, s, e in _boxes(mv, 0, len(mv)) if k == b"meta")
    boxes = {k: (s, e) for k, s, e in _boxes(mv, meta[0] + 4, meta[1])}
    types = _item_types(mv, boxes[b"iinf"])
    locs = {item: extents for item, _method, extents in _iloc(mv, *boxes[b"iloc"])}
    s, e = boxes[b"iref"]
    wide = data[s] != 0  # iref version 1: 32-bit item ids
    n = 4 if wide else 2
    tiles: list[int] = []
    for kind, start, _end in _boxes(mv, s + 4, e):
        if kind == b"dimg" and types.get(int.from_bytes(data[start : start + n])) == b"grid":
            count = int.from_bytes(data[start + n : start + n + 2])
            at = start + n + 2
            tiles = [int.from_bytes(data[at + i * n : at + (i + 1) * n]) for i in range(count)]
    if not tiles:
        raise SystemExit("this HEIC has no grid; run bench_photos' --heic-tile default")
    ipco = next((a, b) for k, a, b in _boxes(mv, *boxes[b"iprp"]) if k == b"ipco")
    hvcc = next(bytes(mv[a:b]) for k, a, b in _boxes(mv, *ipco) if k == b"hvcC")
    return hvcc, [b"".join(data[o : o + ln] for o, ln in locs[t]) for t in tiles]


def ffmpeg_decode(hvcc: bytes, tiles: list[bytes]) -> int:
    """Decode every tile with FFmpeg's HEVC decoder, one thread; returns the frame count."""
    cc = av.CodecContext.create("hevc", "r")
    cc.extradata = hvcc
    cc.thread_count = 1
    cc.thread_type = "NONE"
    frames = 0
    for tile in tiles:
        frames += len(cc.decode(av.Packet(tile)))
    return frames + len(cc.decode(None))


MP = 100_000_000


def libheif_only(fn: Callable[..., Any], path: Path) -> Any:
    """``fn`` as before media/hevc.py: every HEIC decoded by libheif."""
    real = hevc.decode

    def refuse(*_: Any, **__: Any) -> Any:
        raise hevc.Unsupported("benchmark: libheif only")

    hevc.decode = refuse
    try:
        return fn(path, MP)
    finally:
        hevc.decode = real


def libheif_decode(path: str) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return im.size


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="scripts/bench_heic_decoders", description=(__doc__ or "").split("\n\n")[0]
    )
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    pillow_heif.options.DECODE_THREADS = 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "IMG_bench.HEIC"
        print(f"encoding the bench's 12 MP HEIC (quality {HEIC_QUALITY}, {HEIC_TILE} px tiles) ...")
        out = io.BytesIO()
        pillow_heif.from_pillow(phone_pixels()).save(
            out, quality=HEIC_QUALITY, exif=phone_exif(_now()), tile_size=HEIC_TILE
        )
        path.write_bytes(out.getvalue())
        hvcc, tiles = grid_tiles(out.getvalue())
        print(
            f"  {len(out.getvalue()):,} B, {len(tiles)} tiles; libheif {_libheif()}, "
            f"FFmpeg {av.library_versions['libavcodec']} (PyAV {av.__version__})"
        )
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("naive_pipeline (libheif)", lambda: naive_pipeline(path)),
            ("ours: make_derivatives (FFmpeg, the app)", lambda: make_derivatives(path, MP)),
            ("ours: make_derivatives (libheif)", lambda: libheif_only(make_derivatives, path)),
            ("libheif decode only", lambda: libheif_decode(str(path))),
            ("FFmpeg decode of the same tiles", lambda: ffmpeg_decode(hvcc, tiles)),
        ]
        cpu = dict.fromkeys((name for name, _ in steps), 0.0)
        for r in range(args.rounds + 1):  # round 0 warms up and is not counted
            for name, step in steps:
                t0 = time.process_time()
                step()
                if r:
                    cpu[name] += time.process_time() - t0
    ms = {name: v / args.rounds * 1000 for name, v in cpu.items()}
    print(f"\nCPU ms per photo, one thread, mean of {args.rounds} rounds taking turns:")
    for name, v in ms.items():
        print(f"  {name:<42} {v:7.0f}")
    naive, ours, before, dec, ff = ms.values()
    print(f"\nFFmpeg / libheif, decode alone: {dec / ff:.2f}x faster")
    print(f"naive / ours with libheif (before):  {naive / before:.2f}x")
    ok = naive / ours >= SPEEDUP_GOAL
    print(
        f"GOAL naive_pipeline / make_derivatives, 12 MP HEIC, CPU: {naive / ours:.2f}x   "
        f"goal >= {SPEEDUP_GOAL:g}x   {'PASS' if ok else 'FAIL'}"
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _libheif() -> str:
    return str(pillow_heif.libheif_info().get("libheif"))


if __name__ == "__main__":
    main()
