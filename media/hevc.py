"""HEIC pixels through FFmpeg's HEVC decoder, at the scale the derivatives need.

Why: decoding is ~90% of a HEIC photo's CPU, and libheif's decoder (libde265, the one
pillow-heif bundles) takes about twice the CPU of FFmpeg's on the same 12 MP grid
(scripts/bench_heic_decoders). Every iPhone photo pays it, so the image workers use FFmpeg
(through PyAV) for the HEIC shapes phones write, and libheif for everything else.

Only what this module fully understands is decoded here; for the rest ``decode`` raises
Unsupported and the caller lets libheif decode it:
- the primary item is one HEVC image (``hvc1``) or a ``grid`` of HEVC tiles sharing one
  decoder configuration;
- its transforms are clean aperture (``clap``, whole pixels), rotation (``irot``) and
  mirroring (``imir``), applied in the order the file lists them as libheif does;
- no other property of the primary item is marked essential;
- the tiles decode to 8-bit Y'CbCr or grey.

Colour: the Y'CbCr -> RGB matrix and range come from the item's ``nclx`` colour box, else
from the HEVC stream (VUI), else BT.601 full range (libheif's defaults). The ICC profile
(Display P3 on iPhones) is left to the caller, as for libheif's pixels.

Integrity: FFmpeg runs with ``err_detect=explode``, so damaged slice data raises instead of
being concealed, and every tile must give exactly one picture of its declared size.
Threads: runs of tiles on our own threads, each with a single-threaded decoder (see
``decode`` for why not FFmpeg's frame threads).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import av
from av.error import InvalidDataError
from av.video.plane import VideoPlane
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter
from PIL import Image

from media.detect import _associations, _boxes, _Broken, _iloc, _item_types, _Reader

# ISO/IEC 23091-2 matrix coefficients -> swscale's colour spaces (0 = identity/GBR: left to
# libheif; 2 = unspecified: the stream's, then the default).
_MATRICES = {
    1: Colorspace.ITU709,
    4: Colorspace.FCC,
    5: Colorspace.ITU601,
    6: Colorspace.ITU601,
    7: Colorspace.SMPTE240M,
    9: Colorspace.BT2020,
}
_EIGHT_BIT = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray"}
)
_420 = frozenset({"yuv420p", "yuvj420p"})
# Properties that change no pixel this module makes (or that it reads itself).
_UNDERSTOOD = frozenset({b"hvcC", b"ispe", b"colr", b"pixi", b"clap", b"irot", b"imir"})
_TRANSFORMS = (b"clap", b"irot", b"imir")
_I = Interpolation
# Full size: chroma repeated, as libheif does (within 1 level of its pixels). Shrunk by a
# whole factor: a box filter with chroma at full precision, within ~1 level (mean) of
# libheif's decode followed by Pillow's reduce. Both at no measurable extra cost.
_AS_LIBHEIF = _I.POINT | _I.ACCURATE_RND
_AREA = _I.AREA | _I.ACCURATE_RND | _I.FULL_CHR_H_INT


class Unsupported(Exception):
    """A HEIF shape this module leaves to libheif."""


class Layout(NamedTuple):
    hvcc: bytes  # the HEVC decoder configuration every tile shares (hvcC payload)
    tiles: list[bytes]  # each tile's length-prefixed NAL units, in raster order
    columns: int
    tile_width: int  # every tile's size (ispe), which its decoded picture must have
    tile_height: int
    width: int  # the grid's (or the single image's) size before transforms
    height: int
    transforms: list[tuple[bytes, bytes]]  # (box type, payload), in the file's order
    matrix: Colorspace | None  # from the nclx box; None: the stream's
    full_range: bool | None


def layout(data: bytes) -> Layout:
    """Where the primary image's pixels are and what to do with them (no pixel decoded).

    Raises Unsupported for anything this module does not decode itself; the container was
    already checked whole (``media.detect.heif_problem``) before this runs.
    """
    try:
        return _layout(memoryview(data))
    except (_Broken, IndexError, KeyError, ValueError, StopIteration) as exc:
        raise Unsupported(str(exc) or type(exc).__name__) from exc


def _layout(mv: memoryview) -> Layout:
    meta = next((s, e) for k, s, e in _boxes(mv, 0, len(mv)) if k == b"meta")
    boxes = {k: (s, e) for k, s, e in _boxes(mv, meta[0] + 4, meta[1])}
    r = _Reader(mv, *boxes[b"pitm"])
    version = r.uint(1)
    r.uint(3)
    primary = r.uint(2 if version == 0 else 4)
    types = _item_types(mv, boxes.get(b"iinf"))
    locations = {item: (method, ext) for item, method, ext in _iloc(mv, *boxes[b"iloc"])}
    idat = boxes.get(b"idat")
    props, associations = _properties(mv, boxes[b"iprp"])

    def item_data(item: int) -> bytes:
        method, extents = locations[item]
        if method not in (0, 1) or (method == 1 and idat is None):
            raise Unsupported(f"item {item} is built from other items")
        base, end = (idat[0], idat[1]) if method == 1 and idat is not None else (0, len(mv))
        # A length of 0 is "to the end" of the file (or of the idat box).
        return b"".join(bytes(mv[base + o : base + o + n if n else end]) for o, n in extents)

    def item_props(item: int) -> list[tuple[bytes, bytes, bool]]:
        return [(*props[i - 1], essential) for i, essential in associations.get(item, [])]

    kind = types.get(primary)
    own = item_props(primary)
    for box, _, essential in own:
        if essential and box not in _UNDERSTOOD:
            raise Unsupported(f"the primary image has an essential {box!r} property")
    if kind == b"hvc1":
        tiles, columns = [primary], 1
        width, height = _ispe(own)
    elif kind == b"grid":
        tiles = _derived_from(mv, boxes[b"iref"], primary)
        g = item_data(primary)
        rows, columns = g[2] + 1, g[3] + 1
        wide = g[1] & 1
        size = 4 if wide else 2
        width = int.from_bytes(g[4 : 4 + size])
        height = int.from_bytes(g[4 + size : 4 + 2 * size])
        if g[0] != 0 or len(tiles) != rows * columns:
            raise Unsupported("a grid whose tiles do not fill it")
    else:
        raise Unsupported(f"the primary item is {kind!r}")
    tile_width, tile_height = _ispe(item_props(tiles[0]))
    rows = len(tiles) // columns
    # Tiles cover the grid and no more than a tile's edge past it (ISO/IEC 23008-12 6.6.2.3):
    # what is decoded is then never much more than the pixels the header admitted.
    if not (
        (columns - 1) * tile_width < width <= columns * tile_width
        and (rows - 1) * tile_height < height <= rows * tile_height
    ):
        raise Unsupported("tiles that do not cover the grid exactly")
    configs = set()
    for tile in tiles:
        if types.get(tile) != b"hvc1":
            raise Unsupported("a tile that is not HEVC")
        tile_props = item_props(tile)
        configs.update(payload for box, payload, _ in tile_props if box == b"hvcC")
        if _ispe(tile_props) != (tile_width, tile_height):
            raise Unsupported("tiles of different sizes")
        if kind == b"grid" and any(box in _TRANSFORMS for box, _, _ in tile_props):
            raise Unsupported("a tile with its own transform")
    if len(configs) != 1:
        raise Unsupported("tiles with different decoder configurations")
    matrix, full_range = _nclx(own) or _nclx(item_props(tiles[0])) or (None, None)
    return Layout(
        hvcc=configs.pop(),
        tiles=[item_data(t) for t in tiles],
        columns=columns,
        tile_width=tile_width,
        tile_height=tile_height,
        width=width,
        height=height,
        transforms=[(box, payload) for box, payload, _ in own if box in _TRANSFORMS],
        matrix=matrix,
        full_range=full_range,
    )


def _properties(
    mv: memoryview, iprp: tuple[int, int]
) -> tuple[list[tuple[bytes, bytes]], dict[int, list[tuple[int, bool]]]]:
    """The ipco properties (type, payload) and each item's (1-based index, essential)."""
    children = _boxes(mv, *iprp)
    ipco = next((s, e) for k, s, e in children if k == b"ipco")
    props = [(k, bytes(mv[s:e])) for k, s, e in _boxes(mv, *ipco)]
    out: dict[int, list[tuple[int, bool]]] = {}
    for kind, start, end in children:
        if kind != b"ipma":
            continue
        for item, index, essential in _associations(mv, start, end):
            if index > len(props):
                raise Unsupported("a property index past the property list")
            if index:
                out.setdefault(item, []).append((index, essential))
    return props, out


def _derived_from(mv: memoryview, iref: tuple[int, int], item: int) -> list[int]:
    size = 2 if mv[iref[0]] == 0 else 4
    for kind, start, end in _boxes(mv, iref[0] + 4, iref[1]):
        r = _Reader(mv, start, end)
        if kind == b"dimg" and r.uint(size) == item:
            return [r.uint(size) for _ in range(r.uint(2))]
    raise Unsupported("a grid without tiles")


def _ispe(props: list[tuple[bytes, bytes, bool]]) -> tuple[int, int]:
    payload = next(p for box, p, _ in props if box == b"ispe")
    return int.from_bytes(payload[4:8]), int.from_bytes(payload[8:12])


def _nclx(props: list[tuple[bytes, bytes, bool]]) -> tuple[Colorspace | None, bool] | None:
    for box, p, _ in props:
        if box == b"colr" and p[:4] == b"nclx" and len(p) >= 11:
            matrix = int.from_bytes(p[8:10])
            if matrix == 0:
                raise Unsupported("RGB coded as-is (identity matrix)")
            return _MATRICES.get(matrix), bool(p[10] & 0x80)
    return None


def decode(
    data: bytes, factor: int, threads: int = 1, max_pixels: int | None = None
) -> tuple[Image.Image, int]:
    """The primary image as upright-by-its-transforms RGB, shrunk by ``factor`` when whole
    tiles allow it (by 1 otherwise); returns (image, the factor used).

    Raises Unsupported (the caller falls back to libheif, whose limits then apply) when
    the grid holds more than ``max_pixels``, or av.error.FFmpegError for damaged data.
    """
    lay = layout(data)
    if max_pixels is not None and lay.width * lay.height > max_pixels:
        raise Unsupported("more pixels than allowed")
    tw, th = lay.tile_width, lay.tile_height
    clap = _clap_box(lay)  # before decoding: an aperture we cannot apply costs no decode
    # Tiles are independent pictures: ``threads`` runs of them, each decoded on its own
    # thread by its own single-threaded decoder (PyAV releases the GIL while FFmpeg
    # decodes). Not FFmpeg's frame threads: freeing a frame-threaded decoder after a
    # damaged tile deadlocks in avcodec_free_context (FFmpeg 8, err_detect=explode).
    n = max(1, min(threads, len(lay.tiles)))
    runs = [lay.tiles[i * len(lay.tiles) // n : (i + 1) * len(lay.tiles) // n] for i in range(n)]
    if n == 1:
        frames = _decode_run(lay.hvcc, runs[0], tw, th)
    else:
        with ThreadPoolExecutor(n, thread_name_prefix="hevc") as pool:
            done = list(pool.map(lambda run: _decode_run(lay.hvcc, run, tw, th), runs))
        frames = [frame for run in done for frame in run]
    if any((f.width, f.height) != (tw, th) for f in frames):
        raise InvalidDataError(0, "a tile's picture is not the size its container declares")
    if frames[0].format.name not in _EIGHT_BIT:
        raise Unsupported(f"{frames[0].format.name} pixels")
    rows = len(frames) // lay.columns
    if tw % factor or th % factor or any(v % factor for v in clap[:2]):
        factor = 1
    canvas = Image.new("RGB", (lay.columns * tw // factor, rows * th // factor))
    reformatter = VideoReformatter()  # keeps one swscale context for every tile
    for i, frame in enumerate(frames):
        column, row = i % lay.columns, i // lay.columns
        tile = _rgb(frame, factor, lay, reformatter)
        canvas.paste(tile, (column * tw // factor, row * th // factor))
    image = canvas.crop(_scaled((0, 0, lay.width, lay.height), factor))
    for box, payload in lay.transforms:
        image = _transform(image, box, payload, _scaled(clap, factor))
    return image, factor


def _decode_run(hvcc: bytes, tiles: list[bytes], tw: int, th: int) -> list[av.VideoFrame]:
    """Decode consecutive tiles with one single-threaded FFmpeg HEVC decoder."""
    cc = av.CodecContext.create("hevc", "r")
    cc.extradata = hvcc
    # explode: damage raises instead of being concealed; max_pixels: a tile's stream
    # cannot make FFmpeg allocate a bigger picture than its container declared (coded
    # sizes are whole coding blocks, at most 64 px, before the stream's own cropping).
    coded = -(-tw // 64) * 64 * (-(-th // 64) * 64)
    cc.options = {"err_detect": "explode", "max_pixels": str(coded)}
    cc.thread_count = 1
    cc.thread_type = "NONE"
    frames: list[av.VideoFrame] = []
    for tile in tiles:
        frames += cc.decode(av.Packet(tile))
    frames += cc.decode(None)
    if len(frames) != len(tiles):
        raise InvalidDataError(0, "a tile gave no picture")
    return frames


def _rgb(
    frame: av.VideoFrame, factor: int, lay: Layout, reformatter: VideoReformatter
) -> Image.Image:
    """One decoded tile as RGB, shrunk by ``factor``."""
    matrix = lay.matrix or _stream_matrix(frame)
    full = _full_range(lay.full_range, frame)
    if factor == 2 and matrix == Colorspace.ITU601 and full and frame.format.name in _420:
        # What iPhones and libheif write: BT.601, full range, 4:2:0. At half size every
        # output pixel has exactly one chroma sample, so luma is box-reduced and Pillow's
        # JPEG YCbCr conversion (the same matrix and range) finishes: ~30% less than swscale.
        y, cb, cr = (_plane(p, w, h) for p, (w, h) in zip(frame.planes, _sizes(frame), strict=True))
        return Image.merge("YCbCr", (y.reduce(2), cb, cr)).convert("RGB")
    rgb = reformatter.reformat(
        frame,
        width=frame.width // factor,
        height=frame.height // factor,
        format="rgb24",
        src_colorspace=matrix,
        src_color_range=ColorRange.JPEG if full else ColorRange.MPEG,
        interpolation=_AREA if factor > 1 else _AS_LIBHEIF,
        threads=1,
    )
    return _plane(rgb.planes[0], rgb.width, rgb.height, "RGB")


def _plane(plane: VideoPlane, width: int, height: int, mode: str = "L") -> Image.Image:
    # Shares the plane's memory (the memoryview keeps the plane and its frame alive).
    data = memoryview(plane)
    return Image.frombuffer(mode, (width, height), data, "raw", mode, plane.line_size, 1)  # pyright: ignore[reportArgumentType]


def _sizes(frame: av.VideoFrame) -> list[tuple[int, int]]:
    w, h = frame.width, frame.height
    return [(w, h), (w // 2, h // 2), (w // 2, h // 2)]


def _clap_box(lay: Layout) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the clean aperture in full-size pixels, or the image."""
    payload = next((p for box, p in lay.transforms if box == b"clap"), None)
    if payload is None:
        return (0, 0, lay.width, lay.height)
    if next(box for box, _ in lay.transforms) != b"clap":
        raise Unsupported("a clean aperture after a rotation")
    w_n, w_d, h_n, h_d, x_n, x_d, y_n, y_d = (
        int.from_bytes(payload[i : i + 4], signed=i in (16, 24)) for i in range(0, 32, 4)
    )
    if min(w_d, h_d, x_d, y_d) <= 0 or w_n % w_d or h_n % h_d:
        raise Unsupported("a clean aperture of fractional size")
    w, h = w_n // w_d, h_n // h_d
    # The aperture's centre is (width - 1) / 2 + horizOff; its left edge is then
    # horizOff + (width - w) / 2, kept only when it falls on a whole pixel.
    left2 = 2 * x_n + (lay.width - w) * x_d
    top2 = 2 * y_n + (lay.height - h) * y_d
    if left2 % (2 * x_d) or top2 % (2 * y_d):
        raise Unsupported("a clean aperture off whole pixels")
    left, top = left2 // (2 * x_d), top2 // (2 * y_d)
    if left < 0 or top < 0 or left + w > lay.width or top + h > lay.height or w < 1 or h < 1:
        raise Unsupported("a clean aperture outside the image")
    return (left, top, left + w, top + h)


def _transform(
    image: Image.Image, box: bytes, payload: bytes, aperture: tuple[int, int, int, int]
) -> Image.Image:
    if box == b"clap":
        return image.crop(aperture)
    if box == b"irot":
        turns = payload[0] & 3  # anticlockwise quarter turns, as Pillow's ROTATE_*
        rotate = (
            None,
            Image.Transpose.ROTATE_90,
            Image.Transpose.ROTATE_180,
            Image.Transpose.ROTATE_270,
        )[turns]
        return image if rotate is None else image.transpose(rotate)
    # imir: as libheif reads it (checked against it in tests/test_hevc.py), axis 0 flips
    # top <-> bottom and 1 left <-> right.
    return image.transpose(
        Image.Transpose.FLIP_LEFT_RIGHT if payload[0] & 1 else Image.Transpose.FLIP_TOP_BOTTOM
    )


def _scaled(box: tuple[int, int, int, int], factor: int) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return (left // factor, top // factor, -(-right // factor), -(-bottom // factor))


def _stream_matrix(frame: av.VideoFrame) -> Colorspace:
    return _MATRICES.get(int(frame.colorspace), Colorspace.ITU601)


def _full_range(full: bool | None, frame: av.VideoFrame) -> bool:
    if full is not None:
        return full
    if frame.format.name.startswith("yuvj"):
        return True
    return int(frame.color_range) != ColorRange.MPEG  # unspecified: full, as libheif
