"""Receive a multipart photo upload as a stream into a temporary file, hashing as it goes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from litestar import Request
from multipart import MultipartSegment, ParserError, PushMultipartParser, parse_options_header

from service.errors import Problem

MAX_METADATA_BYTES = 64 * 1024


@dataclass
class Received:
    metadata: bytes
    path: Path
    size: int
    sha256: str

    def discard(self) -> None:
        _remove(self.path)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _too_large(max_bytes: int) -> Problem:
    return Problem(
        413,
        "photo-too-large",
        "Photo too large",
        f"The photo is larger than the {max_bytes / 1e6:.0f} MB limit; send a smaller one.",
    )


async def receive(request: Request, max_bytes: int) -> Received:
    """Parts: ``metadata`` (JSON) and ``file``. Never holds the file in memory."""
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    if ctype != "multipart/form-data" or not options.get("boundary"):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the photo as multipart/form-data with a 'metadata' part and a 'file' part.",
        )
    fd, name = tempfile.mkstemp(prefix="evidence-", suffix=".upload")
    path = Path(name)
    sha, size, meta, part, seen = hashlib.sha256(), 0, bytearray(), None, set()
    try:
        with (
            os.fdopen(fd, "wb") as out,
            PushMultipartParser(options["boundary"], max_segment_count=4, strict=True) as parser,
        ):
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        part = event.name
                        if part not in ("metadata", "file") or part in seen:
                            raise Problem(
                                422,
                                "validation",
                                "Invalid request",
                                f"Unexpected form part {part!r}: send 'metadata' and 'file' "
                                "once each.",
                            )
                        seen.add(part)
                    elif event:
                        if part == "file":
                            size += len(event)
                            if size > max_bytes:
                                raise _too_large(max_bytes)
                            sha.update(event)
                            out.write(event)  # small chunks into the page cache
                        else:
                            meta += event
                            if len(meta) > MAX_METADATA_BYTES:
                                raise Problem(
                                    413,
                                    "body-too-large",
                                    "Metadata too large",
                                    "The metadata part is over 64 KB.",
                                )
                    else:
                        part = None
        missing = {"metadata", "file"} - seen
        if missing:
            raise Problem(
                422,
                "validation",
                "Invalid request",
                f"Missing form part(s): {', '.join(sorted(missing))}.",
            )
        if size == 0:
            raise Problem(422, "empty-photo", "Empty photo", "The file part is empty.")
        return Received(bytes(meta), path, size, sha.hexdigest())
    except ParserError as exc:
        _remove(path)
        raise Problem(
            400,
            "malformed-multipart",
            "Malformed upload",
            f"The multipart body could not be read: {exc}.",
        ) from None
    except BaseException:
        # An interrupted or refused upload leaves nothing behind.
        _remove(path)
        raise
