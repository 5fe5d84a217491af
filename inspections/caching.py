"""The domain's in-process caches and what evicts them (service/invalidation.py).

- principals: who a (user, device) is now: roles, organisation; evicted on any change to
  the user or a device revocation. Deactivation therefore still takes effect at once.
- bundle_stamps: per visit, its organisation, team and bundle ETag, so a phone's 304
  costs no database round trip; evicted on changes to the visit, its team, its service
  or a team member.
- bundles, bundle_not_modified: the 200 and 304 responses by ETag (an ETag always names
  the same bytes, so these need no eviction; LRU only).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from uuid import UUID

from litestar import Litestar

from service.invalidation import Invalidations, LruCache


@asynccontextmanager
async def caches_lifespan(app: Litestar) -> AsyncGenerator[None, None]:
    state = app.state
    bus = Invalidations(state.settings.database_url)
    principals: LruCache = LruCache(10_000, 60)
    stamps: LruCache = LruCache(10_000, 300)
    bundles: LruCache = LruCache(256, 3600)

    def on_event(payload: str) -> None:
        kind, _, ident = payload.partition(":")
        try:
            key = UUID(ident)
        except ValueError:
            return
        if kind == "user":
            principals.evict_where(lambda k, _v: k[0] == ident)
            stamps.evict_where(lambda _k, v: key in v.members)
        elif kind == "visit":
            stamps.pop(key)
        elif kind == "service":
            stamps.evict_where(lambda _k, v: v.service_id == key)

    def on_lost() -> None:
        principals.clear()
        stamps.clear()

    bus.subscribe(on_event, on_lost)
    state.invalidations, state.principals = bus, principals
    state.bundle_stamps, state.bundles = stamps, bundles
    state.bundle_not_modified = LruCache(10_000, 3600)
    await bus.start()
    try:
        yield
    finally:
        await bus.close()
