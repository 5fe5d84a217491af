"""Is the photo from the site, and from the visit? Pure maths on values read elsewhere."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo
from typing import Literal

# IUGG mean Earth radius. Haversine on a sphere is within ~0.5% of the ellipsoid, far
# below phone GPS error at geofence distances.
EARTH_RADIUS_M = 6_371_008.8

LocationStatus = Literal["on_site", "off_site", "unverified"]
TimeStatus = Literal["in_window", "outside_window", "unknown"]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = math.radians(lat2 - lat1)
    dlam = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    # Rounding can push a a hair above 1 for antipodal points; asin would then fail.
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def _valid_point(lat: float | None, lon: float | None) -> bool:
    return (
        lat is not None
        and lon is not None
        and math.isfinite(lat)
        and math.isfinite(lon)
        and -90 <= lat <= 90
        and -180 <= lon <= 180
    )


def location_check(
    photo_lat: float | None,
    photo_lon: float | None,
    accuracy_m: float | None,
    site_lat: float | None,
    site_lon: float | None,
    radius_m: float,
    *,
    max_accuracy_m: float | None = None,
) -> tuple[LocationStatus, float | None]:
    """Classify a photo's position against a site's geofence; returns (status, distance_m).

    on_site when distance <= radius + accuracy: the fix's error circle reaches the geofence,
    so the photo may have been taken there. Without a valid photo or site position the
    result is ("unverified", None). ``max_accuracy_m`` (off by default) turns a fix whose
    claimed accuracy is worse than that into "unverified": otherwise a huge accuracy, which
    the client controls, would make any position "on_site".
    """
    if not _valid_point(photo_lat, photo_lon) or not _valid_point(site_lat, site_lon):
        return "unverified", None
    assert photo_lat is not None and photo_lon is not None
    assert site_lat is not None and site_lon is not None
    distance = haversine_m(photo_lat, photo_lon, site_lat, site_lon)
    # A missing, negative or NaN accuracy adds no slack rather than poisoning the sum.
    slack = accuracy_m if accuracy_m is not None and math.isfinite(accuracy_m) else 0.0
    slack = max(0.0, slack)
    if max_accuracy_m is not None and slack > max_accuracy_m:
        return "unverified", distance
    return ("on_site" if distance <= radius_m + slack else "off_site"), distance


def time_check(
    taken_at: datetime | None,
    window_start: datetime,
    window_end: datetime,
    tolerance: timedelta,
    *,
    site_tz: tzinfo | None = None,
) -> TimeStatus:
    """Was the photo taken during the visit window (widened by ``tolerance`` each side)?

    The window bounds must be timezone-aware. An aware ``taken_at`` is compared as is. A
    naive one (EXIF without OffsetTimeOriginal) is camera wall-clock time: it is read in
    ``site_tz`` (phones run on local time) and gives "unknown" when no ``site_tz`` is given,
    because guessing UTC would be hours wrong for most of the world.
    """
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window_start and window_end must be timezone-aware")
    if tolerance < timedelta(0):
        raise ValueError("tolerance must not be negative")
    if taken_at is None:
        return "unknown"
    if taken_at.tzinfo is None or taken_at.utcoffset() is None:
        if site_tz is None:
            return "unknown"
        taken_at = taken_at.replace(tzinfo=site_tz)
    inside = window_start - tolerance <= taken_at <= window_end + tolerance
    return "in_window" if inside else "outside_window"
