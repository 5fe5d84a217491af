"""What each process caches, and why nothing cached can be stale.

A change answered 2xx must never be read back stale: the next request a process answers
after a write has committed (in this process, in another worker, on another host, or by
hand in psql) sees it. So only values that cannot go stale are cached:

- bundles, bundle_not_modified: a bundle's 200 (response and body) and 304 responses by
  ETag. An ETag always
  names the same bytes (it hashes what the bundle is made of), so these need no eviction;
  LRU only.
- service.auth.CachedToken: an access token whose signature was verified (the signature
  of a given token never changes; expiry is still checked every time).

What could go stale is read from the database with every request, in one indexed query:
who the caller is (account active, roles, device not revoked) and, on the bundle route,
the visit's organisation, team and current ETag together with the caller
(``load_caller_and_stamps``).

One exception: bundle_memo (inspections/visits/bundle_memo.py) repeats the bundle route's
last answer to the same signed-in phone while the host's write generation has not moved
since the route read the database (service/generation.py says when it moves). A write
through the app on this host moves it before its response; a write made elsewhere moves
it when its notification arrives (the one window; the README's Caches section).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from litestar import Litestar

from inspections.visits.bundle_memo import BundleMemo
from service.auth import CachedToken
from service.lru import LruCache
from service.reader import Reader


@asynccontextmanager
async def caches_lifespan(app: Litestar) -> AsyncGenerator[None, None]:
    state = app.state
    state.bundles = LruCache(256, 3600)
    state.bundle_not_modified = LruCache(10_000, 3600)
    state.bundle_memo = BundleMemo(state.writes, state.bundles)
    # Not a cache: connections held for the caller loaders' one query (service/reader.py).
    state.reader = Reader(state.pool, state.settings.db_pool_max // 4)
    try:
        yield
    finally:
        await state.reader.close()


def evict_user(state: Any, user_id: UUID) -> None:
    """Forget what this process holds about a person (their verified access tokens).

    Not needed for correctness: their sign-ins are checked against the database on every
    request, so revoking devices or deactivating them takes effect everywhere at the
    commit. Call it after such a change to also drop the tokens from memory.
    """
    sub = str(user_id)
    CachedToken.forget(lambda token: token.sub == sub)
