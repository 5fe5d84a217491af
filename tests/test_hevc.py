"""HEIC through FFmpeg's HEVC decoder (media/hevc.py) gives libheif's picture: same size,
same orientation, same colours, and damage FFmpeg notices is refused (issue 12)."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
from av.error import FFmpegError
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from media import derive, hevc
from media.detect import ImageRejected, heif_problem
from tests.conftest import PHOTOS

MAX_PIXELS = 50_000_000
SOURCE = Image.open(PHOTOS / "gps" / "DSCN0010.jpg").convert("RGB")


def _heic(size: tuple[int, int], tile: int, orientation: int = 1, mode: str = "RGB") -> bytes:
    """pillow-heif writes the EXIF orientation as the container's irot/imir (plus a clap),
    as an iPhone does; ``tile`` 0 makes one HEVC image, else a grid of tiles."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    img = SOURCE.resize(size)
    if mode != "RGB":
        img = img.convert(mode)
    buf = io.BytesIO()
    pillow_heif.from_pillow(img).save(buf, quality=80, exif=exif.tobytes(), tile_size=tile)
    return buf.getvalue()


def _libheif(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def _diff(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    assert a.size == b.size
    d = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    return float(d.mean()), float(np.percentile(d, 99))


SHAPES = [((640, 480), 0), ((1000, 700), 256), ((641, 479), 0), ((515, 260), 128)]


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(("size", "tile"), SHAPES)
def test_ffmpeg_gives_libheifs_picture(size: tuple[int, int], tile: int, orientation: int) -> None:
    data = _heic(size, tile, orientation)
    pixels, used = hevc.decode(data, 1)
    assert used == 1
    ref = _libheif(data)
    assert pixels.size == ref.size  # rotation and clean aperture as libheif applies them
    mean, p99 = _diff(pixels, ref)
    if orientation == 1 or size[0] % 2 == size[1] % 2 == 0:
        assert mean < 0.5 and p99 <= 2  # rounding in the colour conversion, nothing more
    else:
        # An odd width or height with 4:2:0 chroma: libheif turns the Y'CbCr planes and
        # then converts, we convert and then turn, so along the odd edge each pixel's
        # colour comes from the chroma sample next to libheif's. Luma is identical.
        assert mean < 2.5 and p99 <= 12
        assert _diff(pixels.convert("L"), ref.convert("L"))[1] <= 2


@pytest.mark.parametrize("orientation", [1, 2, 6, 7])
def test_ffmpeg_shrinks_as_the_pipeline_did(orientation: int) -> None:
    """Shrunk by 2 inside the conversion (a box filter): what libheif + Pillow's reduce give."""
    data = _heic((1024, 768), 256, orientation)
    pixels, used = hevc.decode(data, 2)
    assert used == 2
    mean, p99 = _diff(pixels, _libheif(data).reduce(2))
    assert mean < 1.5 and p99 <= 8


@pytest.mark.parametrize("factor", [1, 2])
@pytest.mark.parametrize(("matrix", "full_range"), [(6, 1), (6, 0), (1, 1), (1, 0), (9, 0)])
def test_colour_matrices_and_ranges_as_libheif(matrix: int, full_range: int, factor: int) -> None:
    """BT.601 full range (iPhones, libheif) takes the Pillow path at half size; the others
    swscale's, with the nclx box's matrix and range."""
    buf = io.BytesIO()
    pillow_heif.from_pillow(SOURCE.resize((512, 384))).save(
        buf, quality=80, tile_size=128, matrix_coefficients=matrix, full_range_flag=full_range
    )
    data = buf.getvalue()
    assert hevc.layout(data).full_range is bool(full_range)
    pixels, used = hevc.decode(data, factor)
    ref = _libheif(data)
    mean, p99 = _diff(pixels, ref.reduce(factor) if factor > 1 else ref)
    assert used == factor
    if factor > 1:
        assert mean < 1.5 and p99 <= 9
    elif full_range:
        assert mean < 0.5 and p99 <= 2
    else:  # swscale and libheif round the limited range's expansion differently
        assert mean < 3 and p99 <= 4


def test_tiles_that_do_not_divide_by_the_factor_decode_full_size() -> None:
    data = _heic((600, 300), 0)  # one HEVC image of 600x304 coded, 600x300 shown
    pixels, used = hevc.decode(data, 8)
    assert used in (1, 8) and pixels.size == (-(-600 // used), -(-300 // used))


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real: Callable[..., Any] = hevc.decode

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            out = real(*args, **kwargs)
        except hevc.Unsupported:
            calls.append("libheif")
            raise
        calls.append("ffmpeg")
        return out

    monkeypatch.setattr(hevc, "decode", spy)
    return calls


def test_phone_heic_derivatives_come_from_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _heic((2000, 1500), 512, 6)  # a grid rotated by the container, as an iPhone's
    with_libheif = _derivatives_libheif_only(data, monkeypatch)
    calls = _spy(monkeypatch)
    d = derive.make_derivatives(data, MAX_PIXELS, display_edge=800, thumb_edge=200)
    assert calls == ["ffmpeg"]
    assert (d.display_size, d.thumb_size, d.source_size) == (
        with_libheif.display_size,
        with_libheif.thumb_size,
        with_libheif.source_size,
    )
    assert d.source_size == (1500, 2000)  # upright
    mean, _ = _diff(Image.open(io.BytesIO(d.display)), Image.open(io.BytesIO(with_libheif.display)))
    assert mean < 2.0


def _derivatives_libheif_only(data: bytes, monkeypatch: pytest.MonkeyPatch) -> derive.Derivatives:
    def refuse(*_: Any, **__: Any) -> Any:
        raise hevc.Unsupported("test: libheif only")

    with monkeypatch.context() as m:
        m.setattr(hevc, "decode", refuse)
        return derive.make_derivatives(data, MAX_PIXELS, display_edge=800, thumb_edge=200)


def test_alpha_heic_is_left_to_libheif(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _heic((400, 300), 0, mode="RGBA")
    calls = _spy(monkeypatch)
    d = derive.make_derivatives(data, MAX_PIXELS)
    assert calls == [] and d.display_size == (400, 300)


def test_a_damaged_slice_header_is_refused_not_painted_over() -> None:
    """libheif decodes this tile to grey and reports nothing; FFmpeg (err_detect=explode)
    refuses it, so the upload is answered corrupt-image instead of storing a false photo."""
    data = bytearray(_heic((1024, 768), 256))
    tile = hevc.layout(bytes(data)).tiles[5]
    at = bytes(data).find(tile)
    assert (data[at + 4] >> 1) & 63 in range(16, 22)  # the tile's first NAL: an IRAP slice
    data[at + 6 : at + 9] = b"\x7f\xff\xff"  # its slice header, every field out of range
    assert heif_problem(bytes(data)) is None  # the container still looks whole
    _libheif(bytes(data))  # and libheif decodes it without a word
    with pytest.raises(ImageRejected) as err:
        derive.make_derivatives(bytes(data), MAX_PIXELS)
    assert err.value.kind == "corrupt-image"


def test_layout_of_a_single_image_and_a_grid() -> None:
    single = hevc.layout(_heic((640, 480), 0))
    assert (single.columns, len(single.tiles), single.width >= 640) == (1, 1, True)
    grid = hevc.layout(_heic((1000, 700), 256))
    assert (grid.columns, len(grid.tiles), grid.width, grid.height) == (4, 12, 1000, 700)
    assert grid.matrix is not None  # libheif writes an nclx colour box


def test_not_heif_is_unsupported() -> None:
    with pytest.raises(hevc.Unsupported):
        hevc.layout(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16)


def test_more_pixels_than_allowed_is_left_to_libheifs_limits() -> None:
    data = _heic((1000, 700), 256)
    with pytest.raises(hevc.Unsupported):
        hevc.decode(data, 1, max_pixels=1000 * 700 - 1)
    assert hevc.decode(data, 1, max_pixels=1000 * 700)[0].size == (1000, 700)


def _patched(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


def test_a_tile_bigger_than_its_container_says_is_not_decoded() -> None:
    """A stream whose pictures are larger than the tiles' ispe (a decompression bomb behind
    a small header) is refused before FFmpeg allocates them."""
    data = _heic((1024, 768), 256)  # 4 x 3 tiles of 256
    ispe = b"ispe\x00\x00\x00\x00"
    tile_ispe = ispe + (256).to_bytes(4) + (256).to_bytes(4)
    data = _patched(data, tile_ispe, ispe + (128).to_bytes(4) + (128).to_bytes(4))
    with pytest.raises(hevc.Unsupported):  # the grid is now bigger than its tiles cover
        hevc.layout(data)
    grid = (1024).to_bytes(2) + (768).to_bytes(2)  # the grid's own size, in its idat
    data = _patched(data, grid, (512).to_bytes(2) + (384).to_bytes(2))
    assert hevc.layout(data).tile_width == 128
    with pytest.raises(FFmpegError):
        hevc.decode(data, 1)


def test_a_damaged_tile_with_threads_never_hangs_the_worker() -> None:
    """A damaged tile decoded on several threads, then the decoders freed: FFmpeg's own
    frame threads deadlocked here (avcodec_free_context), so a subprocess must finish."""
    script = (
        "import gc, sys\n"
        "from av.error import FFmpegError\n"
        "from media import hevc\n"
        "data = sys.stdin.buffer.read()\n"
        "for _ in range(5):\n"
        "    try:\n"
        "        hevc.decode(data, 1, 4)\n"
        "    except FFmpegError:\n"
        "        pass\n"
        "    gc.collect()\n"
        "print('done')\n"
    )
    data = bytearray(_heic((1024, 768), 256))
    tile = hevc.layout(bytes(data)).tiles[5]
    at = bytes(data).find(tile)
    data[at + 6 : at + 9] = b"\x7f\xff\xff"
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=bytes(data),
        capture_output=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,  # a deadlock, not a slow machine: five decodes take well under 5 s
    )
    assert done.stdout.strip() == b"done", done.stderr[-2000:]


def test_threads_give_the_same_picture() -> None:
    data = _heic((1024, 768), 256)
    one, _ = hevc.decode(data, 2, 1)
    for threads in (2, 3, 5):
        assert hevc.decode(data, 2, threads)[0].tobytes() == one.tobytes()


_SMALL_GRID = _heic((300, 200), 128, 6)  # 3 x 2 tiles, rotated by the container


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_SMALL_GRID) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    )
)
def test_damaged_heic_gives_derivatives_or_a_clear_refusal(edits: list[tuple[int, int]]) -> None:
    """Any bytes changed anywhere (boxes, properties, tiles): the photo is processed or
    refused as ImageRejected (the phone is told why), never an unexpected exception."""
    data = bytearray(_SMALL_GRID)
    for at, value in edits:
        data[at] = value
    try:
        d = derive.make_derivatives(bytes(data), MAX_PIXELS)
    except ImageRejected:
        return
    assert d.display and d.thumb and min(d.display_size) >= 1
