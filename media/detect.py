"""Recognise uploaded photos by their content and open them safely.

Only JPEG, PNG, WebP and HEIF (the phones' HEIC) are accepted. The format is decided from
the first bytes of the file, never from its name or its declared content type, and only
the one Pillow decoder that matches those bytes is allowed to run.

AVIF is refused on purpose: the libheif bundled with pillow-heif here has no AV1 decoder
(``pillow_heif.libheif_info()["AVIF"] == ""``), phones do not produce AVIF photos, and
letting Pillow's own AVIF plugin in would add a decoder we do not need to trust.
"""

from __future__ import annotations

import io
import os
from typing import IO, Literal

import pillow_heif
from PIL import Image, UnidentifiedImageError

# Registered once at import so Image.open knows the "HEIF" format; it is only ever used
# when the magic bytes say HEIF, because every open below passes an explicit formats list.
pillow_heif.register_heif_opener()

ImageFormat = Literal["jpeg", "png", "webp", "heif"]
RejectKind = Literal["unsupported-type", "corrupt-image", "too-many-pixels", "too-large"]
Source = str | os.PathLike[str] | bytes | IO[bytes]
_Seekable = str | os.PathLike[str] | IO[bytes]  # a path, or a file Pillow can seek

# Enough for every magic number below, including an ISO BMFF ftyp box with a long list of
# compatible brands.
HEAD_BYTES = 256

# Our format name -> the Pillow format name of its decoder.
PIL_FORMATS: dict[str, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heif": "HEIF"}

# What to store as the original's content type (derived from the bytes, never the client's).
MIME_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heif": "image/heic",
}

# HEVC-coded HEIF brands (iPhone: heic/mif1; Samsung: heic; Canon: heix) and their
# image-sequence variants.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
# Generic MIAF/HEIF brands: used for HEIC and AVIF alike, so they need a second look.
_GENERIC_BRANDS = frozenset({b"mif1", b"msf1", b"miaf"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

_STATUS: dict[str, int] = {
    "unsupported-type": 415,
    "corrupt-image": 422,
    "too-many-pixels": 413,
    "too-large": 413,
}

ACCEPTED_TYPES_TEXT = "JPEG, PNG, WebP or HEIC"


class ImageRejected(Exception):
    """The upload is not a photo we accept. ``detail`` is meant for the inspector's phone."""

    def __init__(self, kind: RejectKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: RejectKind = kind
        self.detail = detail

    def __reduce__(self) -> tuple[type[ImageRejected], tuple[str, str]]:
        # Picklable with both fields, so it survives a ProcessPoolExecutor round trip.
        return type(self), (self.kind, self.detail)

    @property
    def status(self) -> int:
        """The HTTP status an API should answer with."""
        return _STATUS[self.kind]


def detect_format(head: bytes) -> ImageFormat | None:
    """The image format from the first bytes of a file (see ``HEAD_BYTES``), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if _is_heif(head):
        return "heif"
    return None


def _is_heif(head: bytes) -> bool:
    # ISO BMFF: the file starts with an 'ftyp' box: size(4) 'ftyp' major(4) minor(4) compat*.
    if len(head) < 16 or head[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(head[:4], "big")
    if box_size < 16:
        return False
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if major in _HEIF_BRANDS:
        return True
    if major in _AVIF_BRANDS:
        return False
    # A generic major brand is HEIF unless the compatible brands say it is really AVIF.
    return major in _GENERIC_BRANDS and not (compatible & _AVIF_BRANDS)


def check_byte_size(n_bytes: int, max_bytes: int) -> None:
    """Reject a file that is bigger than ``max_bytes`` (call it while streaming the upload)."""
    if n_bytes > max_bytes:
        raise ImageRejected(
            "too-large",
            f"The file is {_mb(n_bytes)}; the limit is {_mb(max_bytes)}. "
            "Please send a smaller photo.",
        )


def open_image(path_or_file: Source, max_pixels: int, *, verify: bool = True) -> Image.Image:
    """Open an accepted photo lazily (pixels not decoded) after checking it.

    Raises ImageRejected when the bytes are not JPEG/PNG/WebP/HEIF, when the image has more
    than ``max_pixels`` pixels (checked from the header, before any pixel is decoded), or
    when it is corrupt or truncated.

    With ``verify`` (the default) the whole file is checked for truncation as cheaply as
    each format allows, see ``_verify``. ``make_derivatives`` passes ``verify=False``
    because decoding the pixels it needs performs the same check.

    The caller owns the returned image and should close it (``with open_image(...) as im``).
    """
    src = _seekable(path_or_file)
    fmt = detect_format(_head(src))
    if fmt is None:
        raise ImageRejected(
            "unsupported-type",
            f"This file is not a photo we can accept. Please send a {ACCEPTED_TYPES_TEXT} photo.",
        )
    img = _open_checked(src, fmt, max_pixels)
    if verify:
        try:
            _verify(src, fmt)
        except BaseException:
            img.close()
            raise
    return img


def _open_checked(src: _Seekable, fmt: str, max_pixels: int) -> Image.Image:
    try:
        if not isinstance(src, str | os.PathLike):
            src.seek(0)
        # Only the decoder matching the magic bytes may run: no other plugin gets a guess.
        img = Image.open(src, formats=[PIL_FORMATS[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (MAX_IMAGE_PIXELS) fired first; the warning only arrives here
        # as an exception when warnings are turned into errors. We do not use
        # warnings.catch_warnings to force that: it is process-global and not thread-safe.
        raise _too_many_pixels(_claimed_pixels(exc), _effective_limit(max_pixels)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _corrupt() from exc
    w, h = img.size
    if w <= 0 or h <= 0:
        img.close()
        raise _corrupt()
    if w * h > max_pixels:
        img.close()
        raise _too_many_pixels(w * h, max_pixels)
    return img


def _verify(src: _Seekable, fmt: str) -> None:
    """Reject truncated or damaged files without paying for a full decode.

    JPEG: Pillow opens lazily and only notices truncation when it decodes, so decode at the
    smallest DCT scale (1/8): libjpeg still reads every entropy-coded byte, which is what
    finds truncation (even a missing EOI marker raises "image file is truncated"), but it
    skips most of the IDCT and colour work. Looking for FFD9 at the end of the file would
    be cheaper but wrong: phones append data after EOI (Google/Samsung motion photos).
    PNG: ``verify()`` walks every chunk and checks its CRC without inflating pixels.
    WebP and HEIF: the decoders parse the whole container at open and already reject
    truncated files there; damaged HEVC/VP8 payloads are found when pixels are decoded.

    All of this relies on PIL.ImageFile.LOAD_TRUNCATED_IMAGES staying False (the default):
    code that sets it to True process-wide turns truncated uploads into accepted ones.
    """
    if fmt not in ("jpeg", "png"):
        return
    if not isinstance(src, str | os.PathLike):
        src.seek(0)
    try:
        with Image.open(src, formats=[PIL_FORMATS[fmt]]) as probe:
            if fmt == "jpeg":
                probe.draft(probe.mode, (1, 1))
                probe.load()
            else:
                probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _corrupt() from exc


def decode_error(exc: BaseException) -> ImageRejected:
    """The ImageRejected for an error raised while decoding pixels of an opened image."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return _too_many_pixels(_claimed_pixels(exc), None)
    return _corrupt()


# What decoders raise on damaged pixel data (RuntimeError: libheif via pillow-heif).
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    RuntimeError,
    SyntaxError,
    ValueError,
    EOFError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


def _seekable(src: Source) -> _Seekable:
    if isinstance(src, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(src))
    if isinstance(src, str | os.PathLike):
        return src
    try:
        src.seek(src.tell())
        return src
    except (AttributeError, OSError, ValueError):
        # Pillow needs to seek; a non-seekable stream is read into memory once.
        return io.BytesIO(src.read())


def _head(src: str | os.PathLike[str] | IO[bytes]) -> bytes:
    if isinstance(src, str | os.PathLike):
        # A missing path is the caller's bug, not the uploader's: let OSError through.
        with open(src, "rb") as f:
            return f.read(HEAD_BYTES)
    src.seek(0)
    head = src.read(HEAD_BYTES)
    src.seek(0)
    return head


def _corrupt() -> ImageRejected:
    return ImageRejected(
        "corrupt-image",
        "The photo file is damaged or incomplete (the upload may have been cut off). "
        "Please send it again.",
    )


def _too_many_pixels(pixels: int | None, max_pixels: int | None) -> ImageRejected:
    size = f"The photo is {pixels / 1e6:.1f} megapixels" if pixels else "The photo is too big"
    limit = (
        f"the limit is {max_pixels / 1e6:.1f} megapixels"
        if max_pixels
        else f"the limit is {Image.MAX_IMAGE_PIXELS / 1e6:.1f} megapixels"
    )
    return ImageRejected(
        "too-many-pixels", f"{size}; {limit}. Please send a smaller or lower-resolution photo."
    )


def _effective_limit(max_pixels: int) -> int:
    # Pillow refuses outright above twice its MAX_IMAGE_PIXELS, whatever our limit says.
    pil = Image.MAX_IMAGE_PIXELS
    return max_pixels if pil is None else min(max_pixels, 2 * pil)


def _claimed_pixels(exc: BaseException) -> int | None:
    # Pillow's message: "Image size (N pixels) exceeds limit of M pixels, ...".
    text = str(exc)
    start = text.find("(")
    end = text.find(" pixels)")
    if 0 <= start < end:
        digits = text[start + 1 : end]
        if digits.isdigit():
            return int(digits)
    return None


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"
