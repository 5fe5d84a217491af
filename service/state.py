"""The application state, typed: what the app factory and the lifespans put in ``app.state``.

Litestar builds a handler's ``state`` argument from its annotation, sharing the same dict,
so ``state: AppState`` gives every route these attributes with their types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.datastructures import State

if TYPE_CHECKING:
    import asyncpg
    import httpx
    from argon2 import PasswordHasher

    from service.auth import TokenAuth
    from service.generation import WriteGeneration
    from service.lru import LruCache
    from service.reader import Reader
    from service.settings import Settings
    from service.storage import ObjectStore


class AppState(State):
    """Annotations only: values live in State's dict, set at start-up or by a lifespan."""

    settings: Settings
    jwt_auth: TokenAuth
    hasher: PasswordHasher
    # Set by the app's lifespan.
    pool: asyncpg.Pool
    store: ObjectStore
    writes: WriteGeneration
    # Set by slices' lifespans (inspections/caching.py, notifications, media).
    reader: Reader
    bundles: LruCache[Any, Any]
    bundle_not_modified: LruCache[Any, Any]
    bundle_memo: Any  # inspections.visits.bundle_memo.BundleMemo
    http: httpx.AsyncClient
    images: Any  # media.pipeline.ImageWorkers (service names no domain module)
    photo_jobs: Any  # inspections.evidence.jobs.PhotoJobs


def app_state(app: Any) -> AppState:
    """``app.state`` as the typed state (it is one: the app factory creates it so)."""
    state = app.state
    assert isinstance(state, AppState)
    return state
