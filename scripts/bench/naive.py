"""The baseline the photo benchmark beats: what most image code does. Never for uploads."""

from __future__ import annotations

import io
import os

from PIL import Image, ImageOps

from media.derive import (
    DISPLAY_EDGE,
    DISPLAY_QUALITY,
    FORMAT_NAMES,
    THUMB_EDGE,
    THUMB_QUALITY,
    Derivatives,
)


def naive_pipeline(path: str | os.PathLike[str]) -> Derivatives:
    """BASELINE FOR BENCHMARKS ONLY: what most code does. Do not use for uploads.

    Full decode of any format Pillow knows, exif_transpose of the full-size image, and
    both sizes made from the full-size image.
    """
    with Image.open(path) as opened:
        fmt = FORMAT_NAMES.get(opened.format or "", (opened.format or "").lower())
        full = ImageOps.exif_transpose(opened).convert("RGB")

    def shrink(edge: int, quality: int) -> tuple[bytes, tuple[int, int]]:
        copy = full.copy()
        copy.thumbnail((edge, edge))
        buf = io.BytesIO()
        copy.save(buf, format="JPEG", quality=quality)
        return buf.getvalue(), copy.size

    display, display_size = shrink(DISPLAY_EDGE, DISPLAY_QUALITY)
    thumb, thumb_size = shrink(THUMB_EDGE, THUMB_QUALITY)
    return Derivatives(
        display=display,
        display_size=display_size,
        thumb=thumb,
        thumb_size=thumb_size,
        source_format=fmt,
        source_size=full.size,
    )
