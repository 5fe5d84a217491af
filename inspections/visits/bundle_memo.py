"""A phone's bundle answered from memory while nothing has been written since it was read.

Phones ask for their visit's bundle with ``If-None-Match`` every time the list is opened:
the hottest path there is. The route (``routes.get_bundle``) reads the caller and the
visit's stamps in one query and answers 304 or 200. After such an answer this process
remembers, for that exact ``Authorization`` header and path, the ETag it found, the access
token's expiry, and the host's write generation seen *before* the query
(service/generation.py). A later request with the same header and path is then answered
here, before routing, authentication or any query, only while:

- the token has not expired (its signature was verified when the answer was remembered;
  the key is the whole header, so it is the same token);
- the write generation has not moved: no request that may have written has answered on
  this host since the read, and no write notification has arrived from elsewhere.

Anything else goes to the route. So a change made through the app (deactivation, a revoked
device, a team or visit change) reaches the very next request in every worker of this
host, as before; a change made by another host or by hand in psql reaches it when its
notification arrives (the one window, documented in the README: it can only repeat a 304
or the bundle the caller was last given, never show them anything new).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from service.generation import WriteGeneration
from service.lru import LruCache

PREFIX = "/v1/visits/"
SUFFIX = "/bundle"


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110's strong comparison of an If-None-Match list against the current ETag."""
    return if_none_match.strip() == "*" or etag in [t.strip() for t in if_none_match.split(",")]


def bundle_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": "private, no-cache"}


class Remembered(NamedTuple):
    etag: str
    expires: float  # the access token's expiry, epoch seconds
    seen: int  # the write generation seen before the read


class BundleMemo:
    """``bundles`` is the route's cache: ETag -> (its response, the body's bytes)."""

    def __init__(
        self, writes: WriteGeneration, bundles: LruCache[str, Any], size: int = 10_000
    ) -> None:
        self.writes, self.bundles = writes, bundles
        self.answers: LruCache[tuple[bytes, str], Remembered] = LruCache(size, 3600)
        self.served = 0  # answers given here (tests check the path was taken)

    def remember(self, scope: Scope, token_exp: float, etag: str, seen: int | None) -> None:
        """After the route answered: remember it for requests with the same header and path.

        Only for a bearer header (a cookie-signed request is not keyed by it).
        """
        auth = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if auth is None or seen is None:
            return
        self.answers.put((auth, scope["path"]), Remembered(etag, token_exp, seen))

    async def answer(self, scope: Scope, send: Send) -> bool:
        auth = inm = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                auth = v
            elif k == b"if-none-match":
                inm = v
        if auth is None:
            return False
        hit = self.answers.get((auth, scope["path"]))
        if hit is None or hit.expires <= time.time() or not self.writes.unchanged_since(hit.seen):
            return False
        headers = [(k.lower().encode(), v.encode()) for k, v in bundle_headers(hit.etag).items()]
        if inm is not None and etag_matches(inm.decode("latin-1"), hit.etag):
            status, body = 304, b""
        else:
            cached = self.bundles.get(hit.etag)
            if cached is None:
                return False
            status, body = 200, cached[1]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        self.served += 1
        await send(
            HTTPResponseStartEvent(type="http.response.start", status=status, headers=headers)
        )
        await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))
        return True


def answer_from_memory(app: ASGIApp, memo: Any) -> ASGIApp:
    """The fast path in front of the app; ``memo()`` is the BundleMemo, or None until start-up."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(PREFIX)
            and scope["path"].endswith(SUFFIX)
            and (m := memo()) is not None
            and await m.answer(scope, send)
        ):
            return
        await app(scope, receive, send)

    return middleware
