"""Pure unit tests of media/: format detection, EXIF, geofence maths and derivatives.

No server, database or object store: these run in well under a minute.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from media.derive import (
    DISPLAY_EDGE,
    DISPLAY_MIN_EDGE,
    THUMB_EDGE,
    Derivatives,
    draft_request,
    make_derivatives,
    target_size,
)
from media.detect import (
    MIME_TYPES,
    ImageRejected,
    check_byte_size,
    detect_format,
    heif_problem,
    open_image,
)
from media.exif import PhotoMeta, read_metadata
from media.geo import EARTH_RADIUS_M, haversine_m, location_check, time_check
from scripts.bench.naive import naive_pipeline
from tests.conftest import FIXTURES, PHOTOS

GPS = sorted((PHOTOS / "gps").glob("*.jpg"))
INVALID = sorted((PHOTOS / "invalid").glob("*.jpg"))
ORIENTATION = PHOTOS / "orientation"
MAX_PIXELS = 50_000_000

# No example database: these tests must not write outside media/ and this file.
HYP = settings(database=None, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- helpers


def _jpeg(img: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **save)
    return buf.getvalue()


def _heif(img: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="HEIF", **save)
    return buf.getvalue()


def _signature(data: bytes | Image.Image) -> list[int]:
    """32x32 grayscale pixels: enough to tell a rotation or flip, blind to JPEG noise."""
    img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    return list(img.convert("L").resize((32, 32), Image.Resampling.BOX).tobytes())


def _mad(a: Sequence[int], b: Sequence[int]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims width x height (the pixel data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _exif_segment(data: bytes) -> tuple[int, int]:
    """(start, end) of the TIFF payload of the APP1 Exif segment of a JPEG."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
            return i + 10, i + 2 + length
        if marker == 0xDA:
            break
        i += 2 + length
    raise AssertionError("no Exif segment")


# A minimal little-endian TIFF/EXIF writer, independent of Pillow's, so tests can put
# exactly the (mal)formed values they want into a file.
Entry = tuple[int, int, int, bytes]  # tag, type, count, value bytes


def _ascii(tag: int, text: str | bytes) -> Entry:
    raw = (text.encode() if isinstance(text, str) else text) + b"\x00"
    return tag, 2, len(raw), raw


def _rationals(tag: int, *pairs: tuple[int, int]) -> Entry:
    return tag, 5, len(pairs), b"".join(struct.pack("<II", n, d) for n, d in pairs)


def _short(tag: int, value: int) -> Entry:
    return tag, 3, 1, struct.pack("<H", value)


def _undefined(tag: int, raw: bytes) -> Entry:
    return tag, 7, len(raw), raw


def _exif_bytes(
    ifd0: Sequence[Entry] = (), exif: Sequence[Entry] = (), gps: Sequence[Entry] = ()
) -> bytes:
    def ifd_size(n: int) -> int:
        return 2 + 12 * n + 4

    n0 = len(ifd0) + bool(exif) + bool(gps)
    off_exif = 8 + ifd_size(n0)
    off_gps = off_exif + (ifd_size(len(exif)) if exif else 0)
    data_at = off_gps + (ifd_size(len(gps)) if gps else 0)
    extra = bytearray()

    def encode(entries: Sequence[Entry]) -> bytes:
        out = struct.pack("<H", len(entries))
        for tag, typ, count, value in sorted(entries):
            if len(value) <= 4:
                field = value.ljust(4, b"\x00")
            else:
                field = struct.pack("<I", data_at + len(extra))
                extra.extend(value + b"\x00" * (len(value) % 2))
            out += struct.pack("<HHI", tag, typ, count) + field
        return out + b"\x00\x00\x00\x00"

    pointers: list[Entry] = []
    if exif:
        pointers.append((0x8769, 4, 1, struct.pack("<I", off_exif)))
    if gps:
        pointers.append((0x8825, 4, 1, struct.pack("<I", off_gps)))
    body = encode([*ifd0, *pointers])
    if exif:
        body += encode(exif)
    if gps:
        body += encode(gps)
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + body + bytes(extra)


def _photo_with_exif(exif: bytes) -> bytes:
    return _jpeg(Image.new("RGB", (64, 48), (120, 130, 140)), exif=exif)


def _dms_to_deg(dms: Sequence[object], ref: str) -> float:
    deg, minutes, seconds = (float(v) for v in dms)  # type: ignore[arg-type]
    value = deg + minutes / 60 + seconds / 3600
    return -value if ref in ("S", "W") else value


# ------------------------------------------------------------------------ detection


def test_detect_format_by_magic_bytes() -> None:
    assert set(MIME_TYPES) == {"jpeg", "png", "webp", "heif"}
    assert detect_format(_jpeg(Image.new("RGB", (4, 4)))[:32]) == "jpeg"
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    assert detect_format(png.getvalue()[:32]) == "png"
    webp = io.BytesIO()
    Image.new("RGB", (4, 4)).save(webp, "WEBP")
    assert detect_format(webp.getvalue()[:32]) == "webp"
    assert detect_format(_heif(Image.new("RGB", (16, 16)))[:64]) == "heif"


@pytest.mark.parametrize(
    ("ftyp", "expected"),
    [
        (b"heic\x00\x00\x00\x00mif1heic", "heif"),
        (b"heix\x00\x00\x00\x00mif1heix", "heif"),
        (b"hevc\x00\x00\x00\x00msf1hevc", "heif"),
        (b"mif1\x00\x00\x00\x00mif1heic", "heif"),  # generic major brand, HEVC inside
        (b"msf1\x00\x00\x00\x00msf1hevc", "heif"),
        (b"avif\x00\x00\x00\x00mif1avif", None),  # AVIF refused on purpose
        (b"mif1\x00\x00\x00\x00mif1avifmiaf", None),  # generic brand, but AVIF
        (b"isom\x00\x00\x02\x00isomiso2mp41", None),  # an MP4 video
        (b"qt  \x00\x00\x00\x00qt  ", None),  # a QuickTime / Live Photo video
    ],
)
def test_detect_format_iso_bmff_brands(ftyp: bytes, expected: str | None) -> None:
    head = struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp + b"\x00\x00\x00\x08free"
    assert detect_format(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff\xd8",  # too short to be a JPEG
        b"GIF89a\x01\x00\x01\x00",
        b"%PDF-1.7\n",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"<!DOCTYPE html><html>",
        b"II*\x00\x08\x00\x00\x00",  # TIFF: Pillow could decode it, we do not accept it
        b"BM6\x00\x00\x00",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"\x00\x00\x00\x0cftyp",  # box too small to hold a brand
    ],
)
def test_detect_format_rejects_everything_else(head: bytes) -> None:
    assert detect_format(head) is None


def test_text_file_named_jpg_is_unsupported(tmp_path: Path) -> None:
    fake = tmp_path / "evidence.jpg"
    fake.write_text("this is not a photo, whatever the name says\n")
    assert detect_format(fake.read_bytes()) is None
    with pytest.raises(ImageRejected) as info:
        open_image(fake, MAX_PIXELS)
    assert info.value.kind == "unsupported-type"
    assert info.value.status == 415
    assert "JPEG" in info.value.detail and "HEIC" in info.value.detail
    with pytest.raises(ImageRejected):
        make_derivatives(fake, MAX_PIXELS)
    assert read_metadata(fake) == PhotoMeta()


def test_tiff_is_not_opened_even_though_pillow_could(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(path, format="TIFF")
    with pytest.raises(ImageRejected) as info:
        open_image(path, MAX_PIXELS)
    assert info.value.kind == "unsupported-type"


def test_open_image_accepts_path_bytes_and_file() -> None:
    path = GPS[0]
    for src in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes())):
        with open_image(src, MAX_PIXELS) as img:
            assert img.size == (640, 480)


@pytest.mark.parametrize("cut", [1, 2, 10, 1000, 80_000, 150_000])
def test_truncated_jpeg_is_corrupt(cut: int) -> None:
    data = GPS[0].read_bytes()[:-cut]
    with pytest.raises(ImageRejected) as info:
        open_image(data, MAX_PIXELS)
    assert info.value.kind == "corrupt-image"
    assert info.value.status == 422
    # make_derivatives skips the separate check; its own decode must catch the truncation.
    with pytest.raises(ImageRejected) as info:
        make_derivatives(data, MAX_PIXELS)
    assert info.value.kind == "corrupt-image"


def test_truncated_progressive_jpeg_is_corrupt() -> None:
    data = _jpeg(Image.open(GPS[0]), progressive=True)
    for cut in (2, 500, len(data) // 2):
        with pytest.raises(ImageRejected) as info:
            open_image(data[:-cut], MAX_PIXELS)
        assert info.value.kind == "corrupt-image"


def test_jpeg_with_data_after_eoi_is_accepted() -> None:
    # Motion photos append a video after the JPEG's EOI; that is not corruption.
    data = GPS[0].read_bytes() + b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000
    with open_image(data, MAX_PIXELS) as img:
        assert img.size == (640, 480)
    assert make_derivatives(data, MAX_PIXELS).display_size == (640, 480)


def test_truncated_png_is_corrupt() -> None:
    buf = io.BytesIO()
    Image.open(GPS[0]).save(buf, "PNG")
    data = buf.getvalue()
    for cut in (20, len(data) // 2):
        with pytest.raises(ImageRejected) as info:
            open_image(data[:-cut], MAX_PIXELS)
        assert info.value.kind == "corrupt-image"


def test_garbage_after_jpeg_magic_is_corrupt() -> None:
    with pytest.raises(ImageRejected) as info:
        open_image(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 50, MAX_PIXELS)
    assert info.value.kind == "corrupt-image"


@pytest.mark.parametrize("side", [20_000, 65_000])
def test_png_bomb_header_rejected_without_decoding(side: int) -> None:
    # Beyond Pillow's own limit (2 x MAX_IMAGE_PIXELS): Pillow raises, we translate.
    data = _png_header_only(side, side)
    assert len(data) < 200
    with pytest.raises(ImageRejected) as info:
        open_image(data, MAX_PIXELS)
    assert info.value.kind == "too-many-pixels"
    assert info.value.status == 413
    assert "megapixels" in info.value.detail
    with pytest.raises(ImageRejected) as info:
        make_derivatives(data, MAX_PIXELS)
    assert info.value.kind == "too-many-pixels"


def test_real_small_file_large_png_rejected_by_our_limit() -> None:
    # 81 MP: under Pillow's default guard, over ours; a real, decodable file of ~10 kB.
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, "PNG")
    data = buf.getvalue()
    assert len(data) < 100_000
    with pytest.raises(ImageRejected) as info:
        open_image(data, MAX_PIXELS)
    assert info.value.kind == "too-many-pixels"
    assert "81.0 megapixels" in info.value.detail and "50.0 megapixels" in info.value.detail
    with pytest.raises(ImageRejected) as info:
        make_derivatives(data, MAX_PIXELS)
    assert info.value.kind == "too-many-pixels"


def test_jpeg_bomb_header_rejected() -> None:
    # Patch the SOF0 dimensions of a real JPEG to 60000 x 60000.
    data = bytearray(_jpeg(Image.new("RGB", (16, 16))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    with pytest.raises(ImageRejected) as info:
        open_image(bytes(data), MAX_PIXELS)
    assert info.value.kind == "too-many-pixels"


def test_pixel_limit_is_inclusive() -> None:
    data = _jpeg(Image.new("RGB", (100, 50)))
    with open_image(data, 5000) as img:
        assert img.size == (100, 50)
    with pytest.raises(ImageRejected) as info:
        open_image(data, 4999)
    assert info.value.kind == "too-many-pixels"


def test_image_rejected_survives_pickling() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(ImageRejected("too-large", "The file is 30.0 MB")))
    assert (err.kind, err.detail, err.status) == ("too-large", "The file is 30.0 MB", 413)


def test_loading_truncated_images_is_not_enabled() -> None:
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # truncation checks depend on it


def test_byte_size_limit() -> None:
    check_byte_size(10_000_000, 10_000_000)
    with pytest.raises(ImageRejected) as info:
        check_byte_size(10_000_001, 10_000_000)
    assert info.value.kind == "too-large"
    assert "10.0 MB" in info.value.detail


# ----------------------------------------------------------------------------- EXIF


@pytest.mark.parametrize("path", GPS, ids=lambda p: p.name)
def test_gps_and_time_match_an_independent_reading(path: Path) -> None:
    # Read the same tags by name through PIL.ExifTags, convert by hand, compare.
    raw = Image.open(path).getexif()
    gps = {ExifTags.GPSTAGS.get(k, k): v for k, v in raw.get_ifd(ExifTags.IFD.GPSInfo).items()}
    sub = {ExifTags.TAGS.get(k, k): v for k, v in raw.get_ifd(ExifTags.IFD.Exif).items()}
    lat = _dms_to_deg(gps["GPSLatitude"], gps["GPSLatitudeRef"])
    lon = _dms_to_deg(gps["GPSLongitude"], gps["GPSLongitudeRef"])
    taken = datetime.strptime(sub["DateTimeOriginal"], "%Y:%m:%d %H:%M:%S")

    meta = read_metadata(path)
    assert meta.lat == pytest.approx(lat, abs=1e-9)
    assert meta.lon == pytest.approx(lon, abs=1e-9)
    assert meta.taken_at == taken
    assert meta.taken_at is not None and meta.taken_at.tzinfo is None  # no OffsetTime*
    assert (meta.make, meta.model) == ("NIKON", "COOLPIX P6000")
    assert meta.orientation == 1
    # All nine were taken within a few hundred metres of each other.
    assert location_check(meta.lat, meta.lon, None, 43.467, 11.885, 1000)[0] == "on_site"


def test_dscn0010_exact_values() -> None:
    meta = read_metadata(PHOTOS / "gps" / "DSCN0010.jpg")
    # 43° 28' 2.814" N, 11° 53' 6.456" E (exiftool: 43.467448 N, 11.885127 E).
    assert meta.lat == pytest.approx(43.467448, abs=1e-4)
    assert meta.lon == pytest.approx(11.885127, abs=1e-4)
    assert abs(meta.lat - (43 + 28 / 60 + 2.814 / 3600)) < 1e-6  # type: ignore[operator]
    assert meta.taken_at == datetime(2008, 10, 22, 16, 28, 39)
    assert meta.gps_time == datetime(2008, 10, 23, 14, 27, 7, 240000, tzinfo=UTC)
    assert meta.altitude_m is None and meta.h_error_m is None


def test_read_metadata_accepts_image_path_bytes_and_file() -> None:
    path = PHOTOS / "gps" / "DSCN0010.jpg"
    expected = read_metadata(path)
    assert read_metadata(str(path)) == expected
    assert read_metadata(path.read_bytes()) == expected
    assert read_metadata(io.BytesIO(path.read_bytes())) == expected
    with Image.open(path) as img:
        assert read_metadata(img) == expected


def test_read_metadata_does_not_decode_pixels() -> None:
    with Image.open(PHOTOS / "gps" / "DSCN0010.jpg") as img:
        read_metadata(img)
        assert img._im is None  # type: ignore[attr-defined]


def test_orientation_tag_read_for_fixtures() -> None:
    for kind in ("landscape", "portrait"):
        for n in range(1, 9):
            assert read_metadata(ORIENTATION / f"{kind}_{n}.jpg").orientation == n


def test_sydney_south_and_london_west() -> None:
    exif = _exif_bytes(
        gps=[
            _ascii(1, "S"),
            _rationals(2, (33, 1), (52, 1), (408, 100)),
            _ascii(3, "E"),
            _rationals(4, (151, 1), (12, 1), (2600, 100)),
            _undefined(5, b"\x01"),  # below sea level
            _rationals(6, (125, 10)),
            _rationals(31, (5, 1)),
        ]
    )
    meta = read_metadata(_photo_with_exif(exif))
    assert meta.lat == pytest.approx(-(33 + 52 / 60 + 4.08 / 3600))
    assert meta.lon == pytest.approx(151 + 12 / 60 + 26 / 3600)
    assert meta.altitude_m == pytest.approx(-12.5)
    assert meta.h_error_m == 5.0

    west = _exif_bytes(
        gps=[
            _undefined(1, b"N\x00"),  # ref as bytes rather than ASCII
            _rationals(2, (51, 1), (30, 1), (2664, 100)),
            _undefined(3, b"W\x00"),
            _rationals(4, (0, 1), (7, 1), (4008, 100)),
        ]
    )
    meta = read_metadata(_photo_with_exif(west))
    assert meta.lat == pytest.approx(51.5074, abs=1e-4)
    assert meta.lon == pytest.approx(-0.1278, abs=1e-4)


def test_decimal_degrees_in_one_rational() -> None:
    exif = _exif_bytes(
        gps=[
            _ascii(1, "N"),
            _rationals(2, (43467448, 1000000)),
            _ascii(3, "E"),
            _rationals(4, (11885127, 1000000)),
        ]
    )
    meta = read_metadata(_photo_with_exif(exif))
    assert meta.lat == pytest.approx(43.467448)
    assert meta.lon == pytest.approx(11.885127)


@pytest.mark.parametrize(
    "gps",
    [
        # zero denominator in the seconds
        [_ascii(1, "N"), _rationals(2, (43, 1), (28, 1), (2, 0)), _ascii(3, "E"),
         _rationals(4, (11, 1), (53, 1), (6, 1))],
        # latitude 95 N
        [_ascii(1, "N"), _rationals(2, (95, 1), (0, 1), (0, 1)), _ascii(3, "E"),
         _rationals(4, (11, 1), (53, 1), (6, 1))],
        # longitude 181 E
        [_ascii(1, "N"), _rationals(2, (43, 1), (0, 1), (0, 1)), _ascii(3, "E"),
         _rationals(4, (181, 1), (0, 1), (0, 1))],
        # 75 minutes
        [_ascii(1, "N"), _rationals(2, (43, 1), (75, 1), (0, 1)), _ascii(3, "E"),
         _rationals(4, (11, 1), (0, 1), (0, 1))],
        # no refs: the hemisphere is unknown
        [_rationals(2, (43, 1), (28, 1), (2, 1)), _rationals(4, (11, 1), (53, 1), (6, 1))],
        # nonsense ref
        [_ascii(1, "Q"), _rationals(2, (43, 1), (28, 1), (2, 1)), _ascii(3, "E"),
         _rationals(4, (11, 1), (53, 1), (6, 1))],
        # latitude without longitude
        [_ascii(1, "N"), _rationals(2, (43, 1), (28, 1), (2, 1))],
        # "null island": phones write zeros without a fix
        [_ascii(1, "N"), _rationals(2, (0, 1), (0, 1), (0, 1)), _ascii(3, "E"),
         _rationals(4, (0, 1), (0, 1), (0, 1))],
        # wrong types: a string where rationals belong
        [_ascii(1, "N"), _ascii(2, "43.46"), _ascii(3, "E"), _ascii(4, "11.88")],
        # four components
        [_ascii(1, "N"), _rationals(2, (43, 1), (28, 1), (2, 1), (1, 1)), _ascii(3, "E"),
         _rationals(4, (11, 1), (53, 1), (6, 1))],
    ],
)  # fmt: skip
def test_bad_gps_gives_no_location(gps: list[Entry]) -> None:
    meta = read_metadata(_photo_with_exif(_exif_bytes(gps=gps)))
    assert (meta.lat, meta.lon) == (None, None)


def test_bad_altitude_and_error_values() -> None:
    exif = _exif_bytes(
        gps=[
            _short(5, 7),  # altitude ref neither 0 nor 1
            _rationals(6, (100, 1)),
            _rationals(31, (1, 0)),  # zero denominator
        ]
    )
    meta = read_metadata(_photo_with_exif(exif))
    assert meta.altitude_m is None and meta.h_error_m is None
    absurd = _exif_bytes(gps=[_rationals(6, (900_000, 1))])
    assert read_metadata(_photo_with_exif(absurd)).altitude_m is None


def test_offset_time_gives_aware_datetime() -> None:
    exif = _exif_bytes(
        exif=[
            _ascii(0x9003, "2024:05:06 10:11:12"),
            _ascii(0x9011, "+02:00"),
            _ascii(0x9291, "123"),
        ]
    )
    meta = read_metadata(_photo_with_exif(exif))
    assert meta.taken_at == datetime(2024, 5, 6, 8, 11, 12, 123000, tzinfo=UTC)
    assert meta.taken_at is not None and meta.taken_at.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("original", "offset", "digitized", "expected"),
    [
        ("0000:00:00 00:00:00", None, None, None),  # unset camera clock
        ("    :  :     :  :  ", None, None, None),
        ("2024:13:45 99:00:00", None, None, None),
        ("not a date", None, "2024:01:02 03:04:05", datetime(2024, 1, 2, 3, 4, 5)),
        ("2024:01:02 03:04:05", "+99:00", None, datetime(2024, 1, 2, 3, 4, 5)),  # bad offset
        ("2024:01:02 03:04:05", "-05:30", None,
         datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=5, minutes=30)))),
    ],
)  # fmt: skip
def test_capture_time_edge_cases(
    original: str, offset: str | None, digitized: str | None, expected: datetime | None
) -> None:
    entries = [_ascii(0x9003, original)]
    if offset is not None:
        entries.append(_ascii(0x9011, offset))
    if digitized is not None:
        entries.append(_ascii(0x9004, digitized))
    meta = read_metadata(_photo_with_exif(_exif_bytes(exif=entries)))
    assert meta.taken_at == expected
    if expected is not None:
        assert (meta.taken_at.tzinfo is None) == (expected.tzinfo is None)  # type: ignore[union-attr]


def test_modification_time_is_not_capture_time() -> None:
    exif = _exif_bytes(ifd0=[_ascii(0x0132, "2024:01:02 03:04:05")])  # IFD0 DateTime
    assert read_metadata(_photo_with_exif(exif)).taken_at is None


def test_orientation_and_device_strings_are_sanitised() -> None:
    exif = _exif_bytes(
        ifd0=[
            _ascii(0x010F, "Apple\x01\x02  "),
            _ascii(0x0110, b"iPhone 15 Pro\xff\xfe"),
            _short(0x0112, 9),
        ]
    )
    meta = read_metadata(_photo_with_exif(exif))
    assert meta.make == "Apple"
    assert meta.model is not None and meta.model.startswith("iPhone 15 Pro")
    assert meta.orientation == 1


def test_exif_only_in_info_bytes() -> None:
    # Plugins that keep raw EXIF only in info["exif"] (as pillow-heif does) work too.
    img = Image.new("RGB", (8, 8))
    img.info["exif"] = Image.open(PHOTOS / "gps" / "DSCN0010.jpg").info["exif"]
    meta = read_metadata(img)
    assert meta.lat == pytest.approx(43.467448, abs=1e-4)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixtures_never_crash(path: Path) -> None:
    meta = read_metadata(path)
    assert isinstance(meta, PhotoMeta)
    assert 1 <= meta.orientation <= 8
    try:
        with open_image(path, MAX_PIXELS) as img:
            assert img.width > 0
    except ImageRejected:
        return
    d = make_derivatives(path, MAX_PIXELS)
    _assert_clean(d.display)


def test_read_metadata_of_garbage_is_empty() -> None:
    for junk in (b"", b"\xff\xd8\xff", b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00II*\x00", b"x" * 99):
        assert read_metadata(junk) == PhotoMeta()


_FUZZ_SOURCE = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
_FUZZ_START, _FUZZ_END = _exif_segment(_FUZZ_SOURCE)


# Pillow warns (UserWarning) about every corrupt tag it skips; that is expected here.
@pytest.mark.filterwarnings("ignore::UserWarning")
@HYP
@given(
    st.lists(
        st.tuples(
            # Half the mutations hit the first 600 bytes (TIFF header, IFD0, Exif/GPS IFD
            # entries and offsets); the rest anywhere in the segment (values, MakerNote...).
            st.one_of(
                st.integers(0, 599),
                st.integers(0, _FUZZ_END - _FUZZ_START - 1),
            ),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=24,
    )
)
def test_fuzzed_exif_never_raises(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_FUZZ_SOURCE)
    for offset, value in mutations:
        data[_FUZZ_START + offset] = value
    meta = read_metadata(bytes(data))
    assert isinstance(meta, PhotoMeta)
    assert 1 <= meta.orientation <= 8
    if meta.lat is not None:
        assert -90 <= meta.lat <= 90 and meta.lon is not None and -180 <= meta.lon <= 180
    try:
        with open_image(bytes(data), MAX_PIXELS, verify=False):
            pass
    except ImageRejected:
        pass


@pytest.mark.filterwarnings("ignore::UserWarning")
@HYP
@given(st.binary(min_size=0, max_size=2048), st.sampled_from([b"", b"\xff\xd8\xff\xe1"]))
def test_random_bytes_never_raise(payload: bytes, prefix: bytes) -> None:
    assert isinstance(read_metadata(prefix + payload), PhotoMeta)
    try:
        open_image(prefix + payload, MAX_PIXELS).close()
    except ImageRejected:
        pass


# ------------------------------------------------------------------------------ geo


def test_haversine_known_distances() -> None:
    assert haversine_m(0, 0, 0, 0) == 0
    assert haversine_m(10, 20, 11, 20) == pytest.approx(111_195, abs=1)
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111_195, abs=1)  # along the equator
    london_paris = haversine_m(51.5074, -0.1278, 48.8566, 2.3522)
    assert london_paris == pytest.approx(343_500, rel=0.005)
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert haversine_m(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert haversine_m(0, 179.9995, 0, -179.9995) == pytest.approx(111.2, abs=0.1)  # dateline


lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)


@HYP
@given(lats, lons, lats, lons)
def test_haversine_symmetric_and_bounded(a: float, b: float, c: float, d: float) -> None:
    dist = haversine_m(a, b, c, d)
    assert dist == pytest.approx(haversine_m(c, d, a, b), abs=1e-6)
    assert 0 <= dist <= math.pi * EARTH_RADIUS_M + 1e-6


@HYP
@given(lats, lons, lats, lons, lats, lons)
def test_haversine_triangle_inequality(
    a: float, b: float, c: float, d: float, e: float, f: float
) -> None:
    assert haversine_m(a, b, e, f) <= haversine_m(a, b, c, d) + haversine_m(c, d, e, f) + 1e-3


def test_location_check_boundaries() -> None:
    site = (43.467, 11.885)
    photo = (43.468, 11.886)
    dist = haversine_m(*photo, *site)
    assert 130 < dist < 140
    assert location_check(*photo, None, *site, dist) == ("on_site", dist)
    assert location_check(*photo, None, *site, dist - 0.01)[0] == "off_site"
    assert location_check(*photo, 10, *site, dist - 10)[0] == "on_site"
    assert location_check(*photo, 10, *site, dist - 10.01)[0] == "off_site"
    assert location_check(*photo, 0, *site, 50) == ("off_site", dist)
    assert location_check(None, None, 5, *site, 100) == ("unverified", None)
    assert location_check(photo[0], None, 5, *site, 100) == ("unverified", None)
    assert location_check(*photo, None, None, None, 100) == ("unverified", None)
    assert location_check(91, 0, None, *site, 100) == ("unverified", None)
    assert location_check(math.nan, 0, None, *site, 100) == ("unverified", None)
    # A NaN or negative accuracy adds no slack.
    assert location_check(*photo, math.nan, *site, 50)[0] == "off_site"
    assert location_check(*photo, -500, *site, dist)[0] == "on_site"
    assert location_check(*photo, -500, *site, dist - 1)[0] == "off_site"
    # Optional cap on claimed accuracy.
    assert location_check(*photo, 5000, *site, 50)[0] == "on_site"
    assert location_check(*photo, 5000, *site, 50, max_accuracy_m=1000) == ("unverified", dist)


def test_time_check() -> None:
    start = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
    end = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)
    tol = timedelta(minutes=30)
    assert time_check(datetime(2024, 5, 6, 9, 0, tzinfo=UTC), start, end, tol) == "in_window"
    assert time_check(start - tol, start, end, tol) == "in_window"
    assert time_check(end + tol, start, end, tol) == "in_window"
    assert time_check(end + tol + timedelta(seconds=1), start, end, tol) == "outside_window"
    assert time_check(start - timedelta(days=1), start, end, tol) == "outside_window"
    assert time_check(None, start, end, tol) == "unknown"
    # Aware in another zone: 10:30+02:00 is 08:30 UTC.
    rome = timezone(timedelta(hours=2))
    assert time_check(datetime(2024, 5, 6, 10, 30, tzinfo=rome), start, end, tol) == "in_window"
    # Naive camera time: read in the site's zone, unknown without one.
    naive = datetime(2024, 5, 6, 14, 15)  # 12:15 UTC in Rome (CEST)
    assert time_check(naive, start, end, tol) == "unknown"
    assert time_check(naive, start, end, tol, site_tz=ZoneInfo("Europe/Rome")) == "in_window"
    assert time_check(naive, start, end, tol, site_tz=UTC) == "outside_window"
    with pytest.raises(ValueError):
        time_check(naive, start.replace(tzinfo=None), end, tol)
    with pytest.raises(ValueError):
        time_check(naive, start, end, -tol)


# ----------------------------------------------------------------------- derivatives


def _assert_clean(jpeg: bytes) -> None:
    img = Image.open(io.BytesIO(jpeg))
    assert img.format == "JPEG"
    assert len(img.getexif()) == 0
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop"):
        assert key not in img.info, key
    for marker in (b"Exif\x00\x00", b"http://ns.adobe.com", b"ICC_PROFILE", b"NIKON", b"Apple"):
        assert marker not in jpeg, marker


@HYP
@given(st.integers(1, 20_000), st.integers(1, 20_000), st.integers(1, 4096))
def test_target_size_properties(w: int, h: int, edge: int) -> None:
    tw, th = target_size(w, h, edge)
    assert 1 <= tw <= w and 1 <= th <= h  # never upscales
    assert max(tw, th) == min(edge, max(w, h))  # fills the long edge when shrinking
    if max(w, h) > edge:
        scale = edge / max(w, h)
        assert abs(tw - w * scale) <= 0.5 + 1e-9 or tw == 1
        assert abs(th - h * scale) <= 0.5 + 1e-9 or th == 1
    else:
        assert (tw, th) == (w, h)


def test_target_size_rejects_nonsense() -> None:
    for args in ((0, 10, 10), (10, 0, 10), (10, 10, 0), (-1, 5, 5)):
        with pytest.raises(ValueError):
            target_size(*args)


@HYP
@given(st.integers(1, 30_000), st.integers(1, 30_000), st.sampled_from([320, 2048]))
def test_draft_request_never_decodes_too_small(w: int, h: int, edge: int) -> None:
    request = draft_request(w, h, edge)
    if request is None:
        return
    # Pillow's rule (JpegImageFile.draft).
    scale = min(w // request[0], h // request[1])
    scale = next(s for s in (8, 4, 2, 1) if scale >= s)
    assert math.ceil(max(w, h) / scale) >= edge


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    data = _jpeg(Image.new("RGB", (4400, 3300), (90, 100, 110)))
    request = draft_request(4400, 3300, DISPLAY_EDGE)
    assert request is not None
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", request)
        assert img.size == (2200, 1650)  # 1/2 scale: still >= 2048
    d = make_derivatives(data, MAX_PIXELS)
    assert d.display_size == (2048, 1536)
    assert d.thumb_size == (320, 240)
    assert d.source_size == (4400, 3300)
    assert Image.open(io.BytesIO(d.display)).size == (2048, 1536)


def _reference(kind: str) -> list[int]:
    return _signature(make_derivatives(ORIENTATION / f"{kind}_1.jpg", MAX_PIXELS).display)


@pytest.mark.parametrize("kind", ["landscape", "portrait"])
@pytest.mark.parametrize("n", range(1, 9))
def test_orientation_fixtures_come_out_upright(kind: str, n: int) -> None:
    ref_img = Image.open(
        io.BytesIO(make_derivatives(ORIENTATION / f"{kind}_1.jpg", MAX_PIXELS).display)
    )
    ref = _signature(ref_img)
    d = make_derivatives(ORIENTATION / f"{kind}_{n}.jpg", MAX_PIXELS)
    assert d.display_size == ref_img.size
    assert (d.thumb_size[0] > d.thumb_size[1]) == (kind == "landscape")
    got = _signature(d.display)
    good = _mad(got, ref)
    assert good < 6, good
    # Every wrong rotation/flip of the upright image is far further away.
    for op in Image.Transpose:
        bad = _mad(got, _signature(ref_img.transpose(op)))
        assert bad > 3 * good and bad > 15, (op, good, bad)
    # The thumbnail too.
    assert _mad(_signature(d.thumb), ref) < 8


@pytest.mark.parametrize("n", [1, 3, 6, 8])
def test_naive_baseline_is_upright_too(n: int) -> None:
    # The baseline skips colour management (landscape_2..8 carry a gamma-1.8 profile), so
    # only ask that upright is the closest of the eight possible orientations.
    ref_img = Image.open(
        io.BytesIO(make_derivatives(ORIENTATION / "landscape_1.jpg", 10**8).display)
    )
    got = _signature(naive_pipeline(ORIENTATION / f"landscape_{n}.jpg").display)
    good = _mad(got, _signature(ref_img))
    assert all(good < _mad(got, _signature(ref_img.transpose(op))) for op in Image.Transpose)


@pytest.mark.parametrize(
    "path",
    [*GPS[:3], ORIENTATION / "landscape_6.jpg", ORIENTATION / "portrait_1.jpg", *INVALID[:2]],
    ids=lambda p: p.name,
)
def test_derivatives_carry_no_metadata(path: Path) -> None:
    d = make_derivatives(path, MAX_PIXELS)
    _assert_clean(d.display)
    _assert_clean(d.thumb)
    assert max(d.display_size) <= DISPLAY_EDGE and max(d.thumb_size) <= THUMB_EDGE
    assert Image.open(io.BytesIO(d.display)).size == d.display_size
    assert Image.open(io.BytesIO(d.thumb)).size == d.thumb_size


def test_small_images_are_never_upscaled() -> None:
    for path in INVALID:
        with Image.open(path) as img:
            size = img.size
        d = make_derivatives(path, MAX_PIXELS)
        assert d.display_size == size
        assert d.thumb_size == target_size(*size, THUMB_EDGE)
        assert d.thumb_size[0] <= size[0] and d.thumb_size[1] <= size[1]


def test_comment_and_icc_are_dropped() -> None:
    src = Image.open(ORIENTATION / "landscape_2.jpg")
    assert "icc_profile" in src.info
    data = _jpeg(src, icc_profile=src.info["icc_profile"], comment=b"inspector: J. Smith")
    d = make_derivatives(data, MAX_PIXELS)
    _assert_clean(d.display)
    assert b"J. Smith" not in d.display and b"J. Smith" not in d.thumb


@pytest.mark.parametrize(
    "mode",
    ["P", "RGBA", "LA", "L", "1", "CMYK", "I;16", "P+tRNS"],
)
def test_modes_convert_to_rgb(mode: str, tmp_path: Path) -> None:
    base = Image.new("RGB", (300, 200), (200, 40, 40))
    if mode == "CMYK":
        img = base.convert("CMYK")
        path = tmp_path / "x.jpg"
        img.save(path, "JPEG")
    elif mode == "I;16":
        img = Image.new("I;16", (300, 200), 40_000)  # ~156 of 255 once scaled
        path = tmp_path / "x.png"
        img.save(path, "PNG")
    elif mode == "P+tRNS":
        img = Image.new("P", (300, 200), 1)  # palette index 1 (blue) is transparent...
        img.putpalette([200, 40, 40, 0, 0, 255] + [0] * 762)
        img.paste(0, (0, 0, 150, 200))  # ...and the left half is red
        path = tmp_path / "x.png"
        img.save(path, "PNG", transparency=1)
    else:
        img = base.convert(mode)
        if "A" in mode:
            alpha = Image.new("L", img.size, 0)  # fully transparent...
            alpha.paste(255, (0, 0, 150, 200))  # ...except the left half
            img.putalpha(alpha)
        path = tmp_path / "x.png"
        img.save(path, "PNG")
    d = make_derivatives(path, MAX_PIXELS)
    out = Image.open(io.BytesIO(d.display))
    assert out.mode == "RGB" and out.size == (300, 200)
    if "A" in mode or mode == "P+tRNS":
        assert min(out.getpixel((250, 100))) > 240  # transparent -> white
        assert out.getpixel((50, 100)) != (255, 255, 255)
    if mode == "I;16":
        r, g, b = out.getpixel((10, 10))
        assert 140 < r < 170 and r == g == b  # scaled, not clipped to 255
    if mode == "CMYK":
        r, g, b = out.getpixel((10, 10))
        assert r > 150 and g < 100 and b < 100


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_webp_and_png_sources_with_orientation(fmt: str, tmp_path: Path) -> None:
    ref = _reference("landscape")
    for n in (1, 6, 7):
        src = Image.open(ORIENTATION / f"landscape_{n}.jpg")
        path = tmp_path / f"x{n}.{fmt.lower()}"
        # Keep the colour profile (landscape_2..8 have one), or the colours would differ.
        icc = {"icc_profile": src.info["icc_profile"]} if "icc_profile" in src.info else {}
        src.save(path, fmt, exif=src.info["exif"], **icc)
        assert read_metadata(path).orientation == n
        d = make_derivatives(path, MAX_PIXELS)
        assert d.source_format == fmt.lower()
        assert d.display_size == (600, 450)
        assert _mad(_signature(d.display), ref) < 6
        _assert_clean(d.display)


def test_png_metadata_read_does_not_decode(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    Image.new("RGB", (300, 200)).save(path, "PNG")  # no eXIf at all
    with Image.open(path) as img:
        assert read_metadata(img) == PhotoMeta()
        assert img._im is None  # type: ignore[attr-defined]


def test_open_image_verified_source_still_decodes() -> None:
    # open_image(verify=True) reads the same stream twice; the image it returns must still
    # decode from the start.
    data = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    with open_image(io.BytesIO(data), MAX_PIXELS) as img:
        img.load()
        assert img.tobytes() == Image.open(io.BytesIO(data)).tobytes()


def test_wide_gamut_profile_is_converted_to_srgb_then_dropped() -> None:
    from PIL import ImageCms

    # landscape_2 carries Apple's "Generic RGB Profile" (gamma 1.8): the same numbers mean
    # other colours than in sRGB, so they must change, and match what lcms says.
    icc = Image.open(ORIENTATION / "landscape_2.jpg").info["icc_profile"]
    flat = Image.new("RGB", (64, 64), (100, 150, 200))
    d = make_derivatives(_jpeg(flat, icc_profile=icc, quality=100), MAX_PIXELS)
    _assert_clean(d.display)
    got = Image.open(io.BytesIO(d.display)).getpixel((32, 32))
    expected = ImageCms.profileToProfile(
        flat, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB")
    ).getpixel((32, 32))
    assert sum(abs(a - b) for a, b in zip(got, (100, 150, 200), strict=True)) > 15
    assert all(abs(a - b) <= 4 for a, b in zip(got, expected, strict=True)), (got, expected)


def test_broken_icc_profile_is_ignored() -> None:
    flat = Image.new("RGB", (64, 64), (100, 150, 200))
    d = make_derivatives(_jpeg(flat, icc_profile=b"\x00" * 200, quality=100), MAX_PIXELS)
    _assert_clean(d.display)
    got = Image.open(io.BytesIO(d.display)).getpixel((32, 32))
    assert all(abs(a - b) <= 3 for a, b in zip(got, (100, 150, 200), strict=True))


# ------------------------------------------------------------------------------ HEIC


@pytest.fixture(scope="module")
def heic_with_gps() -> bytes:
    src = Image.open(PHOTOS / "gps" / "DSCN0010.jpg")
    return _heif(src, exif=src.info["exif"], quality=80)


def test_heic_detected_and_metadata_read(heic_with_gps: bytes, tmp_path: Path) -> None:
    assert detect_format(heic_with_gps[:64]) == "heif"
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(heic_with_gps)
    jpeg_meta = read_metadata(PHOTOS / "gps" / "DSCN0010.jpg")
    for src in (path, heic_with_gps):
        meta = read_metadata(src)
        assert meta.lat == pytest.approx(43.467448, abs=1e-4)
        assert meta.lon == pytest.approx(11.885127, abs=1e-4)
        assert meta.lat == jpeg_meta.lat and meta.lon == jpeg_meta.lon
        assert meta.taken_at == datetime(2008, 10, 22, 16, 28, 39)
        assert meta.model == "COOLPIX P6000"
    with open_image(path, MAX_PIXELS) as img:
        assert img.format == "HEIF" and img.size == (640, 480)
        assert read_metadata(img).lat == jpeg_meta.lat


def test_heic_derivatives(heic_with_gps: bytes) -> None:
    d = make_derivatives(heic_with_gps, MAX_PIXELS)
    assert d.source_format == "heif"
    assert d.display_size == (640, 480) and d.thumb_size == (320, 240)
    _assert_clean(d.display)
    _assert_clean(d.thumb)
    jpeg = make_derivatives(PHOTOS / "gps" / "DSCN0010.jpg", MAX_PIXELS)
    assert _mad(_signature(d.display), _signature(jpeg.display)) < 6


@pytest.mark.parametrize("n", [3, 6, 8])
def test_heic_with_rotation_comes_out_upright(n: int) -> None:
    src = Image.open(ORIENTATION / f"landscape_{n}.jpg")
    data = _heif(src, exif=src.info["exif"])
    d = make_derivatives(data, MAX_PIXELS)
    ref = _reference("landscape")
    assert _mad(_signature(d.display), ref) < 6
    assert d.display_size == (600, 450)


def test_truncated_heic_is_corrupt(heic_with_gps: bytes) -> None:
    for cut in (10, len(heic_with_gps) // 2):
        with pytest.raises(ImageRejected) as info:
            open_image(heic_with_gps[:-cut], MAX_PIXELS)
        assert info.value.kind == "corrupt-image"


# -------------------------------------------------------------------------- timing


def test_phone_sized_jpeg_decodes_at_reduced_scale_and_looks_like_the_naive_result(
    tmp_path: Path,
) -> None:
    """12 and 24 MP portrait photos: display within 1600..2048 px, upright, same picture.

    Speed is measured by scripts/bench_photos, not here.
    """
    src = Image.open(PHOTOS / "gps" / "DSCN0010.jpg")
    exif = src.getexif()
    exif[ExifTags.Base.Orientation] = 6  # portrait phone photo: rotation needed
    for w, h in ((4000, 3000), (5712, 4284)):
        path = tmp_path / f"{w}x{h}.jpg"
        src.resize((w, h), Image.Resampling.BICUBIC).save(
            path, "JPEG", quality=92, exif=exif.tobytes()
        )
        ours = make_derivatives(path, MAX_PIXELS)
        naive = naive_pipeline(path)
        assert ours.display_size[0] < ours.display_size[1]  # rotated to portrait
        assert DISPLAY_MIN_EDGE <= max(ours.display_size) <= DISPLAY_EDGE
        assert _mad(_signature(ours.display), _signature(naive.display)) < 4
        assert ours.source_size == (h, w)


def test_derivatives_struct_roundtrips() -> None:
    import msgspec

    d = make_derivatives(GPS[0], MAX_PIXELS)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(d), type=Derivatives) == d


# ------------------------------------------- damage the decoders paint over (issue 11)

GRID_HEIC = FIXTURES / "heic" / "grid_tiles.heic"  # 4 x 3 tiles, as an iPhone writes


def _ff_run_in_scan(data: bytes, at: float) -> bytes:
    """16 KB of 0xFF written over the scan data at a fraction of the file."""
    o = int(len(data) * at)
    return data[:o] + b"\xff" * 16384 + data[o + 16384 :]


def _zero_tail(data: bytes, keep: float = 0.6) -> bytes:
    """The file's full length, but only its first part arrived; the rest reads as zeros."""
    k = int(len(data) * keep)
    return data[:k] + bytes(len(data) - k)


def _rejected_as_corrupt(data: bytes) -> None:
    # make_derivatives is what the upload pipeline runs on every photo.
    with pytest.raises(ImageRejected) as info:
        make_derivatives(data, MAX_PIXELS)
    assert info.value.kind == "corrupt-image" and info.value.status == 422


def test_jpeg_with_ff_run_in_scan_data_is_refused() -> None:
    # libjpeg only warns ("premature end of data segment") and Pillow hides the warning:
    # the last rows decode flat grey. Pillow alone accepts this very file.
    data = _ff_run_in_scan(GPS[1].read_bytes(), 0.4)
    with Image.open(io.BytesIO(data)) as plain:
        plain.load()
    _rejected_as_corrupt(data)


@pytest.mark.parametrize("photo", GPS + INVALID, ids=lambda p: p.name)
def test_jpeg_damage_anywhere_in_scan_data_is_refused(photo: Path) -> None:
    data = photo.read_bytes()
    for at in (0.3, 0.5, 0.7):
        _rejected_as_corrupt(_ff_run_in_scan(data, at))
    # Cut short and closed with an EOI marker: no truncation error, grey rows again.
    _rejected_as_corrupt(data[: int(len(data) * 0.6)] + b"\xff\xd9")


@pytest.mark.parametrize(
    "photo", GPS + INVALID + sorted(ORIENTATION.glob("*.jpg")), ids=lambda p: p.name
)
def test_every_real_camera_photo_passes_the_integrity_checks(photo: Path) -> None:
    # No false positives: real photos (the invalid/ ones have malformed EXIF, sound pixels).
    with open_image(photo, MAX_PIXELS) as img:
        assert img.size[0] > 0
    assert make_derivatives(photo, MAX_PIXELS).thumb


def _as(fmt: str, src: Image.Image) -> bytes:
    if fmt == "heif":
        return GRID_HEIC.read_bytes()
    buf = io.BytesIO()
    src.save(buf, fmt.upper(), **({"quality": 85} if fmt != "png" else {}))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "heif"])
def test_truncated_and_corrupt_files_of_every_accepted_format_are_refused(fmt: str) -> None:
    data = _as(fmt, Image.open(GPS[0]))
    assert make_derivatives(data, MAX_PIXELS).source_format == fmt  # intact: accepted
    _rejected_as_corrupt(data[: int(len(data) * 0.6)])  # cut at 60%
    _rejected_as_corrupt(data[: len(data) // 2] + b"\xff" * 4096 + data[len(data) // 2 + 4096 :])


def test_grid_heic_with_missing_tiles_is_refused() -> None:
    data = GRID_HEIC.read_bytes()
    assert heif_problem(data) is None
    damaged = _zero_tail(data)
    # libheif alone decodes it without complaint, painting the missing tiles green.
    with Image.open(io.BytesIO(damaged)) as plain:
        plain.load()
        assert plain.getpixel((500, 380)) == (0, 136, 0)
    assert heif_problem(damaged) is not None
    _rejected_as_corrupt(damaged)


def test_single_image_heic_with_missing_data_is_refused(heic_with_gps: bytes) -> None:
    assert heif_problem(heic_with_gps) is None
    assert "past the end" in (heif_problem(heic_with_gps[: len(heic_with_gps) // 2]) or "")
    damaged = _zero_tail(heic_with_gps, 0.8)
    assert heif_problem(damaged) is not None
    _rejected_as_corrupt(damaged)


@given(cut=st.integers(min_value=1, max_value=60_000))
@HYP
def test_heif_check_never_crashes_on_cut_files(cut: int) -> None:
    data = GRID_HEIC.read_bytes()
    problem = heif_problem(data[:-cut])
    assert isinstance(problem, str) and problem
