"""Photos arriving: a multipart upload streamed into a file of the app's upload folder,
hashing as it goes, or a presigned upload's object fetched into one. Never in memory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request
from multipart import MultipartSegment, ParserError, PushMultipartParser, parse_options_header

from media.detect import too_large
from service.errors import Problem
from service.processes import pid_alive
from service.settings import Settings

MAX_METADATA_BYTES = 64 * 1024


# Photos on their way in, named after the receiving process: evidence-<pid>-<random>.upload.
_TEMP_NAME = re.compile(r"^evidence-(\d+)-[^/]*\.upload$")


def upload_dir(settings: Settings) -> Path:
    """Where photos are received: UPLOAD_TMP_DIR, or <tempdir>/coassess-uploads."""
    return Path(settings.upload_tmp_dir or Path(tempfile.gettempdir()) / "coassess-uploads")


def prepare_upload_dir(path: Path) -> int:
    """Create the folder 0700 (originals carry GPS) and remove what dead processes left.

    Run at each process's start: a crash (kill -9, OOM) skips every ``finally``, so its
    files stay until someone removes them. Other processes of this app share the folder and
    may be receiving right now, so only files of dead processes, and this process's own
    (a reused pid: this process has received nothing yet), are removed. Returns how many.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise RuntimeError(
            f"{path} belongs to another user; set UPLOAD_TMP_DIR to a folder of ours"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return remove_leftovers(path, own=True)


def remove_leftovers(path: Path, older_than_s: float | None = None, own: bool = False) -> int:
    """Remove temp files whose process is dead (or is this one, with ``own``), and, with
    ``older_than_s``, any not written to for that long (an upload that never ended)."""
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return 0
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if m is None:
            continue
        pid = int(m.group(1))
        try:
            stale = (own and pid == os.getpid()) or not pid_alive(pid)
            if not stale and older_than_s is not None:
                stale = entry.stat().st_mtime < now - older_than_s
            if stale:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue  # another process removed it first
    return removed


def new_temp_file(directory: Path) -> tuple[int, Path]:
    """An open file (fd, path) in ``directory``, named after this process."""
    prefix = f"evidence-{os.getpid()}-"
    try:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".upload", dir=directory)
    except FileNotFoundError:  # the folder was removed under us (a tmp cleaner)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".upload", dir=directory)
    return fd, Path(name)


@dataclass
class Photo:
    """A photo's bytes in a file of the upload folder. Whoever holds it removes the file
    (``owned``) unless ``kept``: handed to the processing queue's worker."""

    path: Path
    size: int
    sha256: str  # hex
    kept: bool = False

    def discard(self) -> None:
        _remove(self.path)


@contextlib.asynccontextmanager
async def owned(photo: Photo) -> AsyncIterator[Photo]:
    """Removes the photo's file on the way out, however it is left, unless it was kept."""
    try:
        yield photo
    finally:
        if not photo.kept:
            await asyncio.to_thread(photo.discard)


@dataclass
class Received:
    metadata: bytes
    photo: Photo


def _remove(path: Path | str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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
    fd, path = new_temp_file(upload_dir(request.app.state.settings))
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
                                raise too_large(max_bytes)
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
        return Received(bytes(meta), Photo(path, size, sha.hexdigest()))
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


async def fetch_upload(store: Any, key: str, max_bytes: int, directory: Path) -> Photo:
    """A presigned upload's object, fetched into the upload folder under the size cap (its
    type is not trusted: it is checked like any other photo)."""

    def fetch() -> Photo:
        try:
            obj = store.client.get_object(Bucket=store.bucket, Key=key)
        except store.client.exceptions.NoSuchKey:
            raise Problem(
                409,
                "upload-missing",
                "Upload not found",
                "The photo has not arrived in the store yet; send it to the "
                "presigned URL first, then complete.",
            ) from None
        if obj["ContentLength"] > max_bytes:
            raise too_large(max_bytes)
        fd, path = new_temp_file(directory)  # the app's folder: a crash's leftovers are swept
        sha, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in obj["Body"].iter_chunks(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_large(max_bytes)
                    sha.update(chunk)
                    out.write(chunk)
        except BaseException:
            _remove(path)
            raise
        return Photo(path, size, sha.hexdigest())

    return await asyncio.to_thread(fetch)
