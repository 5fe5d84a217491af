"""HEIC as iPhones write it (a grid of HEVC tiles, rotation in the container) through the
derivatives, and how many libheif threads an image worker gives a photo (issue 12)."""

from __future__ import annotations

import io
from pathlib import Path

import pillow_heif
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from media.derive import make_derivatives
from media.pipeline import decode_threads, process_photo
from tests.conftest import PHOTOS

MAX_PIXELS = 50_000_000
ORIENTATION = PHOTOS / "orientation"


def _signature(data: bytes | Image.Image) -> list[int]:
    """32x32 grayscale pixels: enough to tell a rotation or flip, blind to codec noise."""
    img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    return list(img.convert("L").resize((32, 32), Image.Resampling.BOX).tobytes())


def _mad(a: list[int], b: list[int]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


@pytest.fixture(scope="module")
def rotated_grid_heic() -> bytes:
    """landscape_6.jpg's stored (sideways) pixels at twice the size, as a 256 px tile grid
    whose Orientation 6 pillow-heif writes as the container's rotation (irot), like an
    iPhone's portrait-held photo: only libheif's decode makes it upright."""
    src = Image.open(ORIENTATION / "landscape_6.jpg")
    stored = src.resize((src.width * 2, src.height * 2), Image.Resampling.LANCZOS)
    # Only the colour profile (gamma 1.8 in these fixtures): with the EXIF in info too,
    # pillow-heif would make the pixels upright itself and the irot would turn them twice.
    stored.info = {"icc_profile": src.info["icc_profile"]}
    buf = io.BytesIO()
    pillow_heif.from_pillow(stored).save(buf, quality=90, exif=src.info["exif"], tile_size=256)
    return buf.getvalue()


def test_grid_heic_derivatives_are_upright_and_the_right_size(rotated_grid_heic: bytes) -> None:
    with Image.open(io.BytesIO(rotated_grid_heic)) as im:
        # The file is what the test claims: a grid, rotated by the container.
        assert im.info.get("tiling") and im.info.get("original_orientation") == 6
        stored_w, stored_h = Image.open(ORIENTATION / "landscape_6.jpg").size
        assert im.size == (2 * stored_h, 2 * stored_w)  # landscape once decoded
    upright = make_derivatives(ORIENTATION / "landscape_1.jpg", MAX_PIXELS)
    ref_img = Image.open(io.BytesIO(upright.display))

    # A display edge below the picture's, so the box reduction and the resize both run.
    d = make_derivatives(rotated_grid_heic, MAX_PIXELS, display_edge=500, thumb_edge=100)
    w, h = d.source_size
    assert (w, h) == (2 * ref_img.width, 2 * ref_img.height)
    assert d.display_size == (500, round(500 * h / w))
    assert d.thumb_size == (100, round(100 * h / w))
    for jpeg, size in ((d.display, d.display_size), (d.thumb, d.thumb_size)):
        with Image.open(io.BytesIO(jpeg)) as out:
            assert out.size == size and out.format == "JPEG"
            assert len(out.getexif()) == 0 and "icc_profile" not in out.info

    ref = _signature(ref_img)
    got = _signature(d.display)
    good = _mad(got, ref)
    assert good < 6, good
    for op in Image.Transpose:  # every wrong rotation or flip is far further away
        bad = _mad(got, _signature(ref_img.transpose(op)))
        assert bad > 3 * good and bad > 15, (op, good, bad)
    assert _mad(_signature(d.thumb), ref) < 8


def test_decode_threads_never_change_a_pixel(rotated_grid_heic: bytes, tmp_path: Path) -> None:
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(rotated_grid_heic)
    before = pillow_heif.options.DECODE_THREADS
    try:
        one, four = (process_photo(str(path), MAX_PIXELS, t) for t in (1, 4))
    finally:
        pillow_heif.options.DECODE_THREADS = before
    assert one.derivatives == four.derivatives
    assert one.meta == four.meta and one.content_type == "image/heic"


def test_decode_threads_examples() -> None:
    assert decode_threads(1, 2) == 2  # a photo alone on this 2-core machine: both cores
    assert decode_threads(2, 2) == 1  # both image workers busy: one each
    assert decode_threads(3, 2) == 1  # never fewer than one
    assert decode_threads(2, 16) == 8
    assert decode_threads(0, 0) == 1  # nonsense in, still a usable count


@settings(database=None)
@given(busy=st.integers(min_value=-2, max_value=256), cpus=st.integers(min_value=-2, max_value=512))
def test_decode_threads_share_the_cpus_without_oversubscribing(busy: int, cpus: int) -> None:
    threads = decode_threads(busy, cpus)
    b, c = max(1, busy), max(1, cpus)
    assert threads >= 1
    # All busy photos together use no more threads than CPUs, unless there are more photos
    # than CPUs, when each gets exactly one.
    assert b * threads <= max(c, b)
    # And no CPU is left idle for want of a thread by more than the rounding down.
    assert b * (threads + 1) > c or threads == c
    # One more busy photo never gives this one more threads.
    assert decode_threads(b + 1, c) <= threads
