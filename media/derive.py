"""Display and thumbnail derivatives: small, upright, sRGB JPEGs with no metadata at all.

Cost model: a phone photo is 12-48 MP, the largest thing we show is 2048 px. So:
- JPEG is decoded with libjpeg's DCT scaling (``draft``) at the smallest 1/2, 1/4 or 1/8
  scale that still leaves >= 2048 px on the long edge;
- the image is shrunk BEFORE it is rotated, with the orientation applied by hand
  (``ImageOps.exif_transpose`` would load and rotate the full-size original);
- colour management runs on the shrunk image;
- the thumbnail is made from the (upright) display image, not from the original again.

Evidence integrity: pixels always come from the primary image. Embedded thumbnails (the
JPEG EXIF thumbnail, HEIF thumbnail items that pillow-heif's ``draft`` would pick) are never
used, because the uploader controls them and they need not show the same thing.

ICC: a non-sRGB profile (Display P3 on iPhones, Adobe RGB, CMYK press profiles) is
converted to sRGB and then dropped, so colours stay right in every browser without
shipping a profile; profile text can also name a vendor or device. Output carries no EXIF,
XMP, ICC, comment or DPI.
"""

from __future__ import annotations

import functools
import io

import msgspec
import pillow_heif
from av.error import FFmpegError
from PIL import Image, ImageCms

from media import hevc
from media.detect import (
    DECODE_ERRORS,
    Source,
    check_intact,
    corrupt_image,
    decode_error,
    open_image,
    seekable,
)
from media.exif import orientation_of

DISPLAY_EDGE = 2048
# A JPEG may be decoded at 1/2, 1/4 or 1/8 scale as long as the display keeps at least this
# long edge: a 12 MP (4000 px) photo then decodes at 2000 px, a quarter of the pixels, and
# needs no resize for its display (which is "at most 2048", not "exactly 2048").
DISPLAY_MIN_EDGE = 1600
THUMB_EDGE = 320
DISPLAY_QUALITY = 85
THUMB_QUALITY = 80
# resize() first shrinks by an integer factor with a box filter while the result stays at
# least reducing_gap times the target, then finishes with Lanczos: same look, much faster.
_REDUCING_GAP = 3.0

FORMAT_NAMES = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "HEIF": "heif"}

# EXIF orientation -> the transpose that makes the stored pixels upright (as exif_transpose).
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class Derivatives(msgspec.Struct, frozen=True, kw_only=True):
    display: bytes  # JPEG, long edge <= 2048
    display_size: tuple[int, int]  # (width, height), upright
    thumb: bytes  # JPEG, long edge <= 320
    thumb_size: tuple[int, int]
    source_format: str  # "jpeg" | "png" | "webp" | "heif"
    source_size: tuple[int, int]  # the original's (width, height), upright


def target_size(w: int, h: int, long_edge: int) -> tuple[int, int]:
    """(w, h) scaled so the long edge is at most ``long_edge``; never upscales."""
    if w < 1 or h < 1 or long_edge < 1:
        raise ValueError(f"sizes must be positive, got {w}x{h} and {long_edge}")
    if max(w, h) <= long_edge:
        return w, h
    scale = long_edge / max(w, h)
    if w >= h:
        return long_edge, max(1, round(h * scale))
    return max(1, round(w * scale)), long_edge


def make_derivatives(
    path: Source,
    max_pixels: int,
    *,
    display_edge: int = DISPLAY_EDGE,
    thumb_edge: int = THUMB_EDGE,
) -> Derivatives:
    """Decode once at reduced scale and produce the display and thumbnail JPEGs.

    Raises ``media.detect.ImageRejected`` for unsupported, oversized, corrupt or truncated
    files: decoding the pixels (and ``check_intact`` for JPEG and HEIF, whose decoders
    paint over damage) is the integrity check, so callers need not call ``open_image``.
    """
    # Everything happens inside the with: closing an image frees its pixels, and the
    # flattened image may be the opened one itself.
    src = seekable(path)
    with open_image(src, max_pixels, verify=False) as img:
        source_format = FORMAT_NAMES.get(img.format or "", (img.format or "").lower())
        src_w, src_h = img.size
        # Damage the decoders below would paint over (grey JPEG rows, green HEIF tiles).
        data = check_intact(src, source_format, img.mode)
        edge = min(display_edge, DISPLAY_MIN_EDGE)
        if source_format == "jpeg":
            request = draft_request(src_w, src_h, edge)
            if request is not None:
                img.draft("RGB", request)
        try:
            pixels = None
            if source_format == "heif" and data is not None:
                factor = reduce_factor(src_w, src_h, edge)
                pixels = _hevc_pixels(data, img, factor, max_pixels)
            if pixels is None:
                img.load()
            # After load: the header already had it for JPEG/WebP/HEIF, PNG may keep its
            # eXIf chunk after the pixel data.
            orientation = orientation_of(img)
            work, icc = _flatten(img) if pixels is None else (pixels, _icc(img))
            # What JPEG's DCT scaling does, for the formats that cannot decode small (HEIC,
            # PNG, WebP): an integer box reduction (a few ms) instead of a 12 MP Lanczos
            # (hundreds), when it keeps at least DISPLAY_MIN_EDGE on the long edge.
            factor = reduce_factor(work.width, work.height, edge)
            if factor > 1:
                work = work.reduce(factor)
            display_size = target_size(work.width, work.height, display_edge)
            if work.size != display_size:
                work = work.resize(
                    display_size, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP
                )
        except DECODE_ERRORS as exc:
            raise decode_error(exc) from exc
        work = _to_srgb(work, icc)
        if orientation in _TRANSPOSE:
            work = work.transpose(_TRANSPOSE[orientation])
        display = _strip(work if work is not img else img.copy())

    thumb_size = target_size(display.width, display.height, thumb_edge)
    thumb = display
    if thumb.size != thumb_size:
        thumb = display.resize(thumb_size, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    thumb = _strip(thumb)

    swap = orientation in (5, 6, 7, 8)
    return Derivatives(
        display=_encode(display, DISPLAY_QUALITY),
        display_size=display.size,
        thumb=_encode(thumb, THUMB_QUALITY),
        thumb_size=thumb.size,
        source_format=source_format,
        source_size=(src_h, src_w) if swap else (src_w, src_h),
    )


def reduce_factor(w: int, h: int, long_edge: int) -> int:
    """The largest of 8, 4, 2 that leaves >= ``long_edge`` px on the long edge, else 1."""
    long = max(w, h)
    return next((f for f in (8, 4, 2) if long // f >= long_edge), 1)


def draft_request(w: int, h: int, long_edge: int) -> tuple[int, int] | None:
    """The size to pass to JpegImageFile.draft so the decode keeps >= ``long_edge`` px.

    Returns None when no DCT scale (1/8, 1/4, 1/2) keeps enough pixels. The choice is
    checked against Pillow's own rule (scale = min(w // rw, h // rh), rounded down to 8, 4,
    2 or 1; decoded size = ceil(size / scale)) so odd sizes never decode too small.
    """
    long = max(w, h)
    for scale in (8, 4, 2):
        if -(-long // scale) < long_edge:
            continue
        request = (max(1, w // scale), max(1, h // scale))
        if -(-long // _pillow_draft_scale(w, h, request)) >= long_edge:
            return request
    return None


def _pillow_draft_scale(w: int, h: int, request: tuple[int, int]) -> int:
    # Mirrors PIL.JpegImagePlugin.JpegImageFile.draft.
    scale = min(w // request[0], h // request[1])
    return next(s for s in (8, 4, 2, 1) if scale >= s)


def _hevc_pixels(data: bytes, img: Image.Image, factor: int, max_pixels: int) -> Image.Image | None:
    """A HEIC's RGB pixels from FFmpeg (``media.hevc``), already shrunk by ``factor`` where
    its tiles allow; None leaves the decode to libheif (alpha, 10-bit, unusual layouts).

    The result must have exactly the size libheif reports for the same file, shrunk, or it
    is not used: the two decoders never disagree about what the picture is.
    """
    if img.mode != "RGB":
        return None
    try:
        threads = pillow_heif.options.DECODE_THREADS
        pixels, used = hevc.decode(data, factor, threads, max_pixels)
    except hevc.Unsupported:
        return None
    except FFmpegError as exc:  # damaged slice data (err_detect=explode)
        raise corrupt_image() from exc
    w, h = img.size
    return pixels if pixels.size == (-(-w // used), -(-h // used)) else None


def _icc(img: Image.Image) -> bytes | None:
    icc = img.info.get("icc_profile")
    return icc if isinstance(icc, bytes) and icc else None


def _flatten(img: Image.Image) -> tuple[Image.Image, bytes | None]:
    """RGB (or CMYK, converted later with its profile) plus the ICC profile still valid."""
    icc = _icc(img)
    mode = img.mode
    if mode in ("RGB", "CMYK"):
        return img, icc
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        # Pillow's I;16 -> L conversion clips at 255 instead of scaling, so scale by hand.
        img, icc = _to_8bit(img), None
        img.info.pop("transparency", None)  # a 16-bit tRNS value means nothing in 8 bits
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        # Alpha over white: transparent areas read as paper, not as black.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
        return flat, icc if mode in ("RGBA", "RGBa", "P", "PA") else None
    # P (palette colours live in the profile's RGB space), L, 1 and anything else.
    return img.convert("RGB"), icc if mode == "P" else None


def _to_8bit(img: Image.Image) -> Image.Image:
    if img.mode == "F":
        return img.convert("L")  # clips to 0..255, fine for the rare float image
    as_int = img.convert("I") if img.mode != "I" else img
    low, high = as_int.getextrema()
    if isinstance(high, int) and high <= 255:
        return as_int.convert("L")
    return as_int.point(lambda v: v * (1 / 256)).convert("L")


@functools.lru_cache(maxsize=32)
def _srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from the embedded profile to sRGB, or None when none is needed/possible."""
    try:
        # Opened as the core profile, whose type says it has a colour space (the wrapper's
        # ``.profile`` is typed as whatever it was given).
        core = ImageCms.core.profile_frombytes(icc)
        profile = ImageCms.ImageCmsProfile(core)
        space = core.xcolor_space.strip()
        if (mode, space) not in (("RGB", "RGB"), ("CMYK", "CMYK")):
            return None  # profile does not describe these pixels: ignore it
        if mode == "RGB" and "srgb" in ImageCms.getProfileDescription(profile).lower():
            return None  # already sRGB
        return ImageCms.buildTransform(
            profile,
            _SRGB,
            mode,
            "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            # NOCACHE: lcms's one-pixel cache is per transform and we share transforms
            # between worker threads.
            flags=ImageCms.Flags.NOCACHE,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, AttributeError):
        return None  # a broken profile is ignored rather than failing the upload


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    transform = _srgb_transform(icc, img.mode) if icc else None
    if transform is not None:
        try:
            converted = ImageCms.applyTransform(img, transform)
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return img if img.mode == "RGB" else img.convert("RGB")


def _strip(img: Image.Image) -> Image.Image:
    # Image operations copy .info (exif, xmp, icc_profile, comment, dpi...) and JPEG save
    # writes some of it back (e.g. "comment"); an empty info guarantees nothing leaks.
    img.info = {}
    return img


def _encode(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    # No exif=, icc_profile= or comment= on purpose: derivatives carry pixels only.
    # optimize=True (a second Huffman pass) saved only 1-2% here for ~15 ms per display.
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
