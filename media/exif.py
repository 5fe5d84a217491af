"""Capture time, GPS fix, orientation and device from a photo's EXIF, without decoding pixels.

EXIF comes from whoever made the file, so every value is treated as untrusted: anything
malformed, out of range or of the wrong type becomes None (orientation: 1) instead of an
exception. ``read_metadata`` never raises.

Times: ``taken_at`` is timezone-aware only when the camera wrote OffsetTimeOriginal (most
phones since ~2018 do). Otherwise it is NAIVE: the camera's wall-clock time in an unknown
zone. Callers must not treat a naive value as UTC; ``media.geo.time_check`` interprets it
in the site's timezone (``site_tz=``), since phones run on local time. ``gps_time`` is the
GPS receiver's UTC timestamp (always aware) and is independent of the camera clock.

HEIF: libheif applies the container's rotation (irot/imir) when decoding, and pillow-heif
then reports EXIF Orientation as 1 (the original is kept in ``info["original_orientation"]``),
so ``orientation`` is always "what still has to be done to the decoded pixels".
"""

from __future__ import annotations

import math
import numbers
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import msgspec
from PIL import Image

from media.detect import Source, open_image

# EXIF tag numbers (PIL.ExifTags names in comments).
_IFD_EXIF = 0x8769  # IFD.Exif
_IFD_GPS = 0x8825  # IFD.GPSInfo
_ORIENTATION = 0x0112
_MAKE = 0x010F
_MODEL = 0x0110
_DATETIME_ORIGINAL = 0x9003
_DATETIME_DIGITIZED = 0x9004
_OFFSET_ORIGINAL = 0x9011
_OFFSET_DIGITIZED = 0x9012
_SUBSEC_ORIGINAL = 0x9291
_SUBSEC_DIGITIZED = 0x9292
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
_GPS_ALT_REF, _GPS_ALT, _GPS_TIME, _GPS_DATE = 5, 6, 7, 29
_GPS_H_ERROR = 31  # GPSHPositioningError, metres

# Plausibility limits: values outside them are garbage rather than facts.
_ALTITUDE_RANGE_M = (-1_000.0, 20_000.0)
_MAX_H_ERROR_M = 10_000_000.0
_MAX_TEXT = 100

_DATETIME_RE = re.compile(r"^\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")
_DATE_RE = re.compile(r"^\s*(\d{4})[:-](\d{2})[:-](\d{2})\s*$")

T = TypeVar("T")


class PhotoMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What a photo says about itself. All fields are optional facts; see the module doc."""

    taken_at: datetime | None = None  # aware if the camera wrote its UTC offset, else naive
    lat: float | None = None  # WGS-84 degrees, north positive
    lon: float | None = None  # WGS-84 degrees, east positive
    altitude_m: float | None = None  # above sea level
    h_error_m: float | None = None  # GPSHPositioningError: horizontal accuracy radius
    orientation: int = 1  # EXIF orientation 1..8 still to apply to the decoded pixels
    make: str | None = None
    model: str | None = None
    gps_time: datetime | None = None  # UTC, from GPSDateStamp + GPSTimeStamp


def read_metadata(img_or_path: Image.Image | Source) -> PhotoMeta:
    """Read PhotoMeta from an opened image or from a path/bytes/file. Never raises.

    A file that is not an accepted image (see ``media.detect.open_image``) gives an empty
    PhotoMeta; whether to accept it is ``open_image``'s decision, not this function's.
    """
    exif = _guard(lambda: _load_exif(img_or_path))
    if exif is None:
        return PhotoMeta()
    base: Mapping[int, Any] = exif
    sub = _guard(lambda: exif.get_ifd(_IFD_EXIF)) or {}
    gps = _guard(lambda: exif.get_ifd(_IFD_GPS)) or {}
    lat_lon = _guard(lambda: _lat_lon(gps)) or (None, None)
    return PhotoMeta(
        taken_at=_guard(lambda: _taken_at(base, sub)),
        lat=lat_lon[0],
        lon=lat_lon[1],
        altitude_m=_guard(lambda: _altitude(gps)),
        h_error_m=_guard(lambda: _h_error(gps)),
        orientation=_guard(lambda: _orientation(base)) or 1,
        make=_guard(lambda: _text(base.get(_MAKE))),
        model=_guard(lambda: _text(base.get(_MODEL))),
        gps_time=_guard(lambda: _gps_time(gps)),
    )


def orientation_of(img: Image.Image) -> int:
    """EXIF orientation (1..8) of an opened image, 1 when absent or invalid. Never raises."""
    exif = _guard(lambda: _exif_of(img))
    return (_guard(lambda: _orientation(exif)) or 1) if exif is not None else 1


def _guard(fn: Callable[[], T]) -> T | None:
    # Why a blanket except: EXIF parsing walks attacker-controlled offsets and types, and
    # Pillow may raise almost anything on them (struct.error, KeyError, TypeError,
    # RecursionError, MemoryError on absurd counts...). A bad field must cost that field only.
    try:
        return fn()
    except Exception:
        return None


def _load_exif(src: Image.Image | Source) -> Image.Exif | None:
    if isinstance(src, Image.Image):
        return _exif_of(src)
    # Lazy open: only headers are parsed; no pixel limit because no pixels are decoded.
    with open_image(src, max_pixels=sys.maxsize, verify=False) as img:
        return _exif_of(img)


def _exif_of(img: Image.Image) -> Image.Exif | None:
    if img.format == "PNG" and getattr(img, "tile", None) and "exif" not in img.info:
        # PngImageFile.getexif() decodes every pixel to look for an eXIf chunk after the
        # image data: too costly (and a bomb risk) for a header read. An eXIf chunk before
        # IDAT is already in info["exif"]; a later one is seen once the image is loaded.
        return None
    exif = img.getexif()
    if len(exif) == 0:
        # Some plugins keep raw EXIF only in info["exif"] (bytes, maybe "Exif\0\0"-prefixed).
        raw = img.info.get("exif")
        if isinstance(raw, bytes | bytearray) and raw:
            exif = Image.Exif()
            exif.load(bytes(raw))
    return exif if len(exif) else None


def _orientation(ifd0: Mapping[int, Any]) -> int:
    value = ifd0.get(_ORIENTATION)
    if isinstance(value, tuple | list) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return 1


def _number(value: Any) -> float | None:
    """A finite float from an EXIF number: IFDRational, (num, den), int or float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, tuple | list) and len(value) == 2:
        num, den = value
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (num, den)):
            return None
        if den == 0:
            return None
        result = num / den
    elif isinstance(value, numbers.Real):  # int, float, IFDRational, Fraction
        # IFDRational with a zero denominator turns into nan here and is refused below.
        result = float(value)
    else:
        return None
    return result if math.isfinite(result) else None


def _dms(value: Any) -> float | None:
    """Degrees from (deg, min, sec), (deg, min), (deg,) or a bare decimal degree number."""
    raw_rational = isinstance(value, tuple | list) and len(value) == 2
    if raw_rational and all(isinstance(v, int) for v in value):
        parts: list[Any] = [value]  # one raw (num, den) rational, not (deg, min) as ints
    elif isinstance(value, tuple | list):
        parts = list(value)
    else:
        parts = [value]
    if not 1 <= len(parts) <= 3:
        return None
    numbers_ = [_number(p) for p in parts]
    if any(n is None for n in numbers_):
        return None
    deg, minutes, seconds = ([*numbers_, 0.0, 0.0])[:3]
    assert deg is not None and minutes is not None and seconds is not None
    if not (0 <= minutes <= 60 and 0 <= seconds <= 60):
        return None
    if deg < 0:
        # Not allowed by the spec but written by some apps as a signed decimal degree.
        return deg - minutes / 60 - seconds / 3600
    return deg + minutes / 60 + seconds / 3600


def _ref(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "ignore")
    if not isinstance(value, str):
        return None
    value = value.strip("\x00 \t").upper()
    return value[:1] or None


def _signed(value: float | None, ref: str | None, positive: str, negative: str) -> float | None:
    if value is None:
        return None
    if ref == positive:
        return value if value >= 0 else None  # "N" with a negative value contradicts itself
    if ref == negative:
        return -abs(value)
    # No usable ref: only an explicitly signed value tells the hemisphere. A positive value
    # without ref could be either side of the equator/meridian; a wrong fix is worse than none.
    return value if value < 0 else None


def _lat_lon(gps: Mapping[int, Any]) -> tuple[float | None, float | None]:
    lat = _signed(_dms(gps.get(_GPS_LAT)), _ref(gps.get(_GPS_LAT_REF)), "N", "S")
    lon = _signed(_dms(gps.get(_GPS_LON)), _ref(gps.get(_GPS_LON_REF)), "E", "W")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    if lat == 0 and lon == 0:
        # "Null island": phones and apps write zeros when they had no fix.
        return None, None
    return lat, lon


def _altitude(gps: Mapping[int, Any]) -> float | None:
    alt = _number(gps.get(_GPS_ALT))
    if alt is None or alt < 0:
        return None
    ref = gps.get(_GPS_ALT_REF, 0)
    if isinstance(ref, bytes | bytearray):
        ref = ref[0] if len(ref) else 0
    elif isinstance(ref, str):
        ref = ord(ref[0]) if ref else 0
    if ref == 1:
        alt = -alt
    elif ref != 0:
        return None
    low, high = _ALTITUDE_RANGE_M
    return alt if low <= alt <= high else None


def _h_error(gps: Mapping[int, Any]) -> float | None:
    err = _number(gps.get(_GPS_H_ERROR))
    return err if err is not None and 0 <= err <= _MAX_H_ERROR_M else None


def _string(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    text = _string(value)
    if text is None:
        return None
    # Drop control characters and padding so a device name is safe to log and display.
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text[:_MAX_TEXT] or None


def _taken_at(ifd0: Mapping[int, Any], exif_ifd: Mapping[int, Any]) -> datetime | None:
    # DateTimeOriginal is the shutter time. DateTimeDigitized is the same for cameras and
    # phones. IFD0 DateTime (0x0132) is deliberately NOT used: editors set it to the edit time.
    candidates = (
        (exif_ifd, _DATETIME_ORIGINAL, _OFFSET_ORIGINAL, _SUBSEC_ORIGINAL),
        (ifd0, _DATETIME_ORIGINAL, _OFFSET_ORIGINAL, _SUBSEC_ORIGINAL),  # misplaced tags
        (exif_ifd, _DATETIME_DIGITIZED, _OFFSET_DIGITIZED, _SUBSEC_DIGITIZED),
    )
    for ifd, dt_tag, offset_tag, subsec_tag in candidates:
        taken = _parse_datetime(_string(ifd.get(dt_tag)))
        if taken is None:
            continue
        micro = _subsec(_string(ifd.get(subsec_tag)))
        if micro is not None:
            taken = taken.replace(microsecond=micro)
        tz = _parse_offset(_string(ifd.get(offset_tag)))
        return taken.replace(tzinfo=tz) if tz is not None else taken
    return None


def _parse_datetime(text: str | None) -> datetime | None:
    # "YYYY:MM:DD HH:MM:SS"; unset clocks write blanks or zeros, which fail datetime().
    match = _DATETIME_RE.match(text or "")
    if not match:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        # Naive on purpose, see the module's doc.
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _subsec(text: str | None) -> int | None:
    digits = (text or "").strip("\x00 ")
    if not digits.isdigit():
        return None
    return int(digits[:6].ljust(6, "0"))


def _parse_offset(text: str | None) -> timezone | None:
    match = _OFFSET_RE.match(text or "")
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if int(minutes) >= 60 or delta > timedelta(hours=14):
        return None
    return timezone(-delta if sign == "-" else delta)


def _gps_time(gps: Mapping[int, Any]) -> datetime | None:
    date = _DATE_RE.match(_string(gps.get(_GPS_DATE)) or "")
    hms = gps.get(_GPS_TIME)
    if not date or not isinstance(hms, tuple | list) or len(hms) != 3:
        return None
    h, m, s = (_number(v) for v in hms)
    if h is None or m is None or s is None or not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
        return None
    try:
        day = datetime(*(int(g) for g in date.groups()), tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(hours=int(h), minutes=int(m), seconds=s)
