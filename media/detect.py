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
from collections.abc import Iterator
from typing import IO, Literal

import pillow_heif
import simplejpeg
from PIL import Image, UnidentifiedImageError

# Registered once at import so Image.open knows the "HEIF" format; it is only ever used
# when the magic bytes say HEIF, because every open below passes an explicit formats list.
pillow_heif.register_heif_opener()

ImageFormat = Literal["jpeg", "png", "webp", "heif"]
RejectKind = Literal["unsupported-type", "corrupt-image", "too-many-pixels", "too-large"]
Source = str | os.PathLike[str] | bytes | IO[bytes]
Seekable = str | os.PathLike[str] | IO[bytes]  # a path, or a file Pillow can seek

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


def too_large(max_bytes: int) -> ImageRejected:
    """A file over ``max_bytes``, refused before its end is seen (while it streams in)."""
    return ImageRejected(
        "too-large",
        f"The photo is larger than the {max_bytes / 1e6:.0f} MB limit; send a smaller one.",
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
    src = seekable(path_or_file)
    fmt = detect_format(_head(src))
    if fmt is None:
        raise ImageRejected(
            "unsupported-type",
            f"This file is not a photo we can accept. Please send a {ACCEPTED_TYPES_TEXT} photo.",
        )
    img = _open_checked(src, fmt, max_pixels)
    if verify:
        try:
            _verify(src, fmt, img.mode)
        except BaseException:
            img.close()
            raise
    return img


def _open_checked(src: Seekable, fmt: str, max_pixels: int) -> Image.Image:
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
        raise corrupt_image() from exc
    w, h = img.size
    if w <= 0 or h <= 0:
        img.close()
        raise corrupt_image()
    if w * h > max_pixels:
        img.close()
        raise _too_many_pixels(w * h, max_pixels)
    return img


def _verify(src: Seekable, fmt: str, mode: str) -> None:
    """Reject truncated or damaged files without paying for a full decode.

    JPEG and HEIF: ``check_intact`` (libjpeg-turbo with warnings as errors; the HEIF
    container's item data against the file). PNG: ``verify()`` walks every chunk and
    checks its CRC without inflating pixels. WebP: the decoder parses the whole container
    at open and already rejects truncated files there; damaged VP8 payloads are found when
    pixels are decoded.

    All of this relies on PIL.ImageFile.LOAD_TRUNCATED_IMAGES staying False (the default):
    code that sets it to True process-wide turns truncated uploads into accepted ones.
    """
    if fmt in ("jpeg", "heif"):
        check_intact(src, fmt, mode)
        return
    if fmt != "png":
        return
    if not isinstance(src, str | os.PathLike):
        src.seek(0)
    try:
        with Image.open(src, formats=[PIL_FORMATS[fmt]]) as probe:
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise corrupt_image() from exc


def check_intact(src: Seekable, fmt: str, mode: str) -> bytes | None:
    """Refuse damage that Pillow's decoders paint over instead of reporting. Returns the
    file's bytes when it read them (JPEG, HEIF), so a caller need not read them again.

    JPEG: Pillow silences libjpeg's warnings, so 16 KB of 0xFF in the scan data ("Corrupt
    JPEG data: premature end of data segment") or a cut file with an EOI glued on decode
    to flat grey rows and pass. libjpeg-turbo (simplejpeg, strict) turns those warnings
    into errors; decoding at 1/8 scale to one channel still reads every entropy-coded
    byte, which is where the damage is, but skips most of the IDCT and colour work.
    HEIF: libheif fills a grid tile whose data is missing or unreadable with a flat
    colour and reports no error, so the container is checked first (``heif_problem``).
    """
    if fmt not in ("jpeg", "heif"):
        return None
    data = _read_all(src)
    if fmt == "jpeg":
        try:
            simplejpeg.decode_jpeg(
                data,
                colorspace="CMYK" if mode == "CMYK" else "GRAY",
                min_height=1,
                min_width=1,
                strict=True,
            )
        except ValueError as exc:
            raise corrupt_image() from exc
    elif heif_problem(data) is not None:
        raise corrupt_image()
    return data


class _Broken(Exception):
    """The HEIF container contradicts itself or the file's length."""


# JPEG frame headers (SOFn): every C0..CF but DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_problem(data: bytes | memoryview) -> str | None:
    """Why these JPEG bytes cannot hold a whole picture, or None (no pixel is decoded).

    Walks the marker segments up to the first scan: each must fit in the file, a frame
    header must come before the scan, and an end-of-image marker must follow the scan's
    data (a file cut off in transit has none). What this cannot see (damaged entropy-coded
    data, an EOI glued onto a cut file) the full decode finds later (``check_intact``).
    """
    data = bytes(data)
    n, pos, frame = len(data), 2, False
    if data[:2] != b"\xff\xd8":
        return "no start-of-image marker"
    while True:
        if pos >= n or data[pos] != 0xFF:
            return f"no marker at byte {pos}"
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return "the headers are cut off"
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return "the image ends before its scan data"
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # no length field
        if pos + 2 > n:
            return "a segment header is cut off"
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > n:
            return f"the segment at byte {pos - 2} runs past the end of the file"
        frame = frame or marker in _SOF
        if marker == 0xDA:
            if not frame:
                return "a scan before any frame header"
            if data.rfind(b"\xff\xd9", pos + length) < 0:
                return "no end-of-image marker after the scan data: the file is cut off"
            return None
        pos += length


def heif_problem(data: bytes) -> str | None:
    """Why this HEIF file cannot hold the whole picture, or None when its structure is whole.

    Pure and cheap (no pixel is decoded): every top-level box must fit in the file; every
    item's extents (iloc) must lie inside the file (or the idat box); and every HEVC-coded
    item (each grid tile of an iPhone photo) must be a chain of length-prefixed NAL units
    that fills its data exactly, each with a valid NAL header. Missing bytes show up as an
    extent past the end of the file, and bytes that never arrived but read as zeros (a
    preallocated file, an interrupted copy) as a zero-length or invalid NAL unit.
    """
    try:
        _check_heif(memoryview(data))
    except _Broken as exc:
        return str(exc)
    return None


def _boxes(data: memoryview, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, end) of each box in data[start:end]; all must fit."""
    out, pos = [], start
    while pos < end:
        if end - pos < 8:
            raise _Broken(f"a box header is cut off at byte {pos}")
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = bytes(data[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            if end - pos < 16:
                raise _Broken(f"the {kind!r} box header is cut off")
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos  # the box runs to the end of its container
        if size < header or pos + size > end:
            raise _Broken(f"the {kind!r} box at byte {pos} runs past the end of the data")
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


class _Reader:
    def __init__(self, data: memoryview, start: int, end: int) -> None:
        self.data, self.pos, self.end = data, start, end

    def uint(self, n: int) -> int:
        if n == 0:
            return 0
        if self.pos + n > self.end:
            raise _Broken("a box is shorter than its fields")
        value = int.from_bytes(self.data[self.pos : self.pos + n], "big")
        self.pos += n
        return value


def _check_heif(data: memoryview) -> None:
    top = _boxes(data, 0, len(data))
    meta = next(((s, e) for k, s, e in top if k == b"meta"), None)
    if meta is None:
        raise _Broken("no meta box")
    children = {k: (s, e) for k, s, e in _boxes(data, meta[0] + 4, meta[1])}  # FullBox
    if b"iloc" not in children:
        raise _Broken("no iloc box")
    types = _item_types(data, children.get(b"iinf"))
    nal_length = _nal_length_sizes(data, children.get(b"iprp"))
    idat = children.get(b"idat")
    for item, method, extents in _iloc(data, *children[b"iloc"]):
        if method == 0:
            base, limit = 0, len(data)
        elif method == 1:
            if idat is None:
                raise _Broken(f"item {item} lives in an idat box that is missing")
            base, limit = idat[0], idat[1]
        else:
            continue  # data made from other items, which are checked themselves
        parts = []
        for offset, length in extents:
            start = base + offset
            stop = limit if length == 0 else start + length
            if start > limit or stop > limit:
                raise _Broken(f"item {item}'s data lies past the end of the file")
            parts.append(data[start:stop])
        if types.get(item) == b"hvc1":
            _check_nal_units(b"".join(parts), nal_length.get(item, 4), item)


def _item_types(data: memoryview, box: tuple[int, int] | None) -> dict[int, bytes]:
    if box is None:
        return {}
    r = _Reader(data, *box)
    version = r.uint(1)
    r.uint(3)
    r.uint(2 if version == 0 else 4)  # entry count: the boxes below say as much
    types = {}
    for kind, start, end in _boxes(data, r.pos, box[1]):
        if kind != b"infe":
            continue
        e = _Reader(data, start, end)
        v = e.uint(1)
        e.uint(3)
        if v < 2:
            continue  # pre-HEIF item info: no item type
        item = e.uint(2 if v == 2 else 4)
        e.uint(2)
        types[item] = bytes(data[e.pos : e.pos + 4])
    return types


def _nal_length_sizes(data: memoryview, iprp: tuple[int, int] | None) -> dict[int, int]:
    """Item id -> the byte size of its NAL unit lengths, from its hvcC property."""
    if iprp is None:
        return {}
    boxes = _boxes(data, *iprp)
    ipco = next(((s, e) for k, s, e in boxes if k == b"ipco"), None)
    if ipco is None:
        return {}
    props = _boxes(data, *ipco)
    out: dict[int, int] = {}
    for kind, start, end in boxes:
        if kind != b"ipma":
            continue
        for item, index, _essential in _associations(data, start, end):
            if 1 <= index <= len(props) and props[index - 1][0] == b"hvcC":
                _, p_start, p_end = props[index - 1]
                if p_end - p_start <= 21:
                    raise _Broken(f"item {item}'s hvcC is too short")
                out[item] = (data[p_start + 21] & 3) + 1
    return out


def _associations(data: memoryview, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """(item id, 1-based property index or 0, essential) of each entry of an ipma box."""
    r = _Reader(data, start, end)
    version = r.uint(1)
    wide = r.uint(3) & 1  # flags: 15-bit property indices
    for _ in range(r.uint(4)):
        item = r.uint(2 if version < 1 else 4)
        for _ in range(r.uint(1)):
            v = r.uint(2) if wide else r.uint(1)
            yield item, v & (0x7FFF if wide else 0x7F), bool(v >> (15 if wide else 7))


def _iloc(data: memoryview, start: int, end: int) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """(item id, construction method, [(offset incl. base offset, length)]) per item."""
    r = _Reader(data, start, end)
    version = r.uint(1)
    r.uint(3)
    sizes = r.uint(2)
    offset_size, length_size = sizes >> 12, (sizes >> 8) & 0xF
    base_size, index_size = (sizes >> 4) & 0xF, sizes & 0xF if version in (1, 2) else 0
    items = []
    for _ in range(r.uint(2 if version < 2 else 4)):
        item = r.uint(2 if version < 2 else 4)
        method = r.uint(2) & 0xF if version in (1, 2) else 0
        r.uint(2)  # data reference index: 0 is this file
        base = r.uint(base_size)
        extents = []
        for _ in range(r.uint(2)):
            r.uint(index_size)
            offset = r.uint(offset_size)
            extents.append((base + offset, r.uint(length_size)))
        items.append((item, method, extents))
    return items


def _check_nal_units(sample: bytes, length_size: int, item: int) -> None:
    pos, end = 0, len(sample)
    if end == 0:
        raise _Broken(f"item {item} has no data")
    while pos < end:
        if end - pos < length_size:
            raise _Broken(f"item {item}: a NAL unit length is cut off")
        size = int.from_bytes(sample[pos : pos + length_size], "big")
        pos += length_size
        if size < 2 or pos + size > end:
            raise _Broken(f"item {item}: a NAL unit of {size} bytes does not fit its data")
        # forbidden_zero_bit must be 0 and nuh_temporal_id_plus1 never 0 (H.265 7.3.1.2)
        if sample[pos] & 0x80 or not sample[pos + 1] & 0x07:
            raise _Broken(f"item {item}: an invalid NAL unit header")
        # Emulation prevention (H.265 7.4.2): inside a NAL unit 00 00 00/01/02 never
        # occur and the last byte is never 00, so bytes that read as zeros are caught
        # even inside one large slice (a single-image HEIC).
        unit = sample[pos : pos + size]
        if unit[-1] == 0 or any(z in unit for z in _FORBIDDEN_IN_NAL):
            raise _Broken(f"item {item}: a NAL unit holds bytes no encoder writes")
        pos += size


_FORBIDDEN_IN_NAL = (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02")


def _read_all(src: Seekable) -> bytes:
    if isinstance(src, str | os.PathLike):
        with open(src, "rb") as f:
            return f.read()
    src.seek(0)
    data = src.read()
    src.seek(0)
    return data


def decode_error(exc: BaseException) -> ImageRejected:
    """The ImageRejected for an error raised while decoding pixels of an opened image."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return _too_many_pixels(_claimed_pixels(exc), None)
    return corrupt_image()


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


def seekable(src: Source) -> Seekable:
    """A path, or a file Pillow can seek: a non-seekable stream is read into memory once."""
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


def corrupt_image() -> ImageRejected:
    """Damaged or cut off: the phone still has the photo and can send it again."""
    return ImageRejected(
        "corrupt-image",
        "The photo file is damaged or incomplete (the upload may have been cut off). "
        "Please send it again.",
    )


def _too_many_pixels(pixels: int | None, max_pixels: int | None) -> ImageRejected:
    size = f"The photo is {pixels / 1e6:.1f} megapixels" if pixels else "The photo is too big"
    # Pillow's own limit when we set none (it is never None while its guard is on).
    limit = max_pixels or Image.MAX_IMAGE_PIXELS or 0
    limit = f"the limit is {limit / 1e6:.1f} megapixels"
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
