"""The inspector's app: an installable web app (PWA) served from ``static/``.

Plain ES modules, no build step. Every file is read once at start-up and kept with its
gzip form and ETag; any path under /app/ that is not a file is a client route and gets
index.html, so a reload on /app/visits/<id> works (offline, the service worker answers).
The app uses only the public JSON API, like a native app would.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from litestar import Request, Response, get
from litestar.params import FromPath

from service.auth import PUBLIC

STATIC = Path(__file__).resolve().parent / "static"
# Our own files only: no inline script or style, nothing from another origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Revalidated each time (ETag): the service worker decides what is used offline.
    "Cache-Control": "no-cache",
}
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
}


@dataclass(frozen=True)
class File:
    body: bytes
    gzipped: bytes
    content_type: str
    etag: str


def _load() -> dict[str, File]:
    raw = {
        p.relative_to(STATIC).as_posix(): p.read_bytes()
        for p in sorted(STATIC.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }
    # The service worker precaches the shell; its version changes with any file's content,
    # so a new deployment replaces the old cache.
    version = hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in raw.values()))
    shell = [f"/app/{name}" for name in raw if name != "sw.js" and not name.endswith("LICENSE")]
    raw["sw.js"] = (
        raw["sw.js"]
        .replace(b'"__VERSION__"', json.dumps(version.hexdigest()[:16]).encode())
        .replace(b'["__SHELL__"]', json.dumps(["/app/", *shell]).encode())
    )
    files = {}
    for name, body in raw.items():
        suffix = Path(name).suffix
        ctype = TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        files[name] = File(
            body=body,
            gzipped=gzip.compress(body, 9, mtime=0),
            content_type=ctype,
            etag='"' + hashlib.sha256(body).hexdigest()[:24] + '"',
        )
    return files


FILES = _load()


def _serve(request: Request, name: str) -> Response[bytes]:
    f = FILES[name]
    headers = {**HEADERS, "ETag": f.etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == f.etag:
        return Response(b"", status_code=304, headers=headers)
    body = f.body
    if "gzip" in request.headers.get("accept-encoding", "") and f.content_type != "image/png":
        body, headers["Content-Encoding"] = f.gzipped, "gzip"
    return Response(body, media_type=f.content_type, headers=headers)


# Litestar routes /app and /app/ alike; the app's own links all use /app/ (the worker's scope).
@get("/app/", include_in_schema=False, **PUBLIC)
async def app_index(request: Request) -> Response[bytes]:
    return _serve(request, "index.html")


@get("/app/{path:path}", include_in_schema=False, **PUBLIC)
async def app_file(request: Request, path: FromPath[str]) -> Response[bytes]:
    name = path.lstrip("/")
    if name in FILES:
        return _serve(request, name)
    if "." in name.rsplit("/", 1)[-1]:
        return Response(b"Not found", status_code=404, media_type="text/plain", headers=HEADERS)
    return _serve(request, "index.html")  # a client route: the app draws it


route_handlers = [app_index, app_file]
