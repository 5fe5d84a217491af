"""The app factory: wires settings, the pool, the store, auth and the domain slices."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from argon2 import PasswordHasher
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from service import db, docs, health
from service.auth import TokenAuth
from service.bounds import TYPE_DECODERS, BoundedRequest, BoundsSchemaPlugin, refuse_nul_in_urls
from service.errors import ProblemsFromShape, handle_exception
from service.generation import WriteGeneration, bump_after_writes, counter_path
from service.logs import configure_logging, request_id_middleware
from service.pages import csrf_config, static_router, template_config
from service.schema import paged
from service.settings import Settings
from service.state import AppState, app_state
from service.storage import ObjectStore

log = logging.getLogger("service.app")


def create_app(settings: Settings) -> Litestar:
    # Import the domain here so `service` itself knows no domain rules.
    from inspections import wiring

    if not settings.database_url or not settings.jwt_secret:
        raise RuntimeError("create_app needs database_url and jwt_secret (see README: Settings)")
    dsn = settings.database_url

    jwt_auth = wiring.make_auth(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        await db.migrate(dsn, wiring.MIGRATIONS)
        state = app_state(app)
        state.pool = await db.create_pool(dsn, settings.db_pool_min, settings.db_pool_max)
        state.writes = WriteGeneration(counter_path(dsn))
        await state.writes.listen(dsn)
        state.store = ObjectStore(
            settings.s3_endpoint_url,
            settings.s3_bucket,
            settings.s3_region,
            settings.s3_access_key,
            settings.s3_secret_key,
        )
        # Start-up objects live for the whole process: keep the cyclic GC from walking
        # them on every full collection (tens of ms of tail latency otherwise).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await state.pool.close()
            state.store.close()
            await state.writes.close()

    configure_logging(settings.log_level)
    app = Litestar(
        route_handlers=[
            health.health,
            health.ready,
            static_router(),
            *wiring.route_handlers(settings),
        ],
        # Pages' templates: the layout in service/templates, and every slice's templates/
        # folder (by convention, like migrations/), so the shell names no slice.
        template_config=template_config(sorted(wiring.MIGRATIONS.parent.glob("*/templates"))),
        # Every form carries a CSRF token; the bearer-token API is exempt (wiring.CSRF_EXEMPT).
        csrf_config=csrf_config(settings.jwt_secret, wiring.CSRF_EXEMPT),
        lifespan=[lifespan, *wiring.LIFESPANS],
        dependencies={"db": Provide(db.provide_db), "paging": paged()},
        exception_handlers={Exception: handle_exception},
        # Bad input is refused before it reaches PostgreSQL or the maths (service/bounds.py).
        request_class=BoundedRequest,
        middleware=[refuse_nul_in_urls],
        type_decoders=TYPE_DECODERS,
        # Every route's 401/403/404/422/400 follow from its shape (service.errors).
        plugins=[BoundsSchemaPlugin(), ProblemsFromShape()],
        on_app_init=[jwt_auth.on_app_init],
        request_max_body_size=settings.max_body_bytes,
        state=_state(settings, jwt_auth),
        openapi_config=OpenAPIConfig(
            title="Co-assessment API",
            version="1.0.0",
            description=(
                "Citizen and professional inspectors assess public services side by side. "
                "Errors are application/problem+json (RFC 9457)."
            ),
            path="/schema",
            # Swagger UI from our own vendored copy: the docs work offline (service/docs.py).
            render_plugins=[docs.SwaggerUI("/schema")],
            openapi_router=docs.docs_router("/schema"),
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
        ),
        debug=False,
        logging_config=None,  # ours: JSON lines (service.logs), not Litestar's text format
    )
    # Outermost, around Litestar's own exception handling, so that 404s from the router and
    # 401s from the auth middleware are logged and carry a request id like everything else.
    # Inside it: a write's response moves the host's write generation (service/generation.py),
    # and the slices' fast paths that answer from memory while it has not moved.
    handler = bump_after_writes(app.asgi_handler, lambda: app.state.get("writes"))
    for wrap in wiring.ASGI_WRAPPERS:
        handler = wrap(handler, app.state)
    app.asgi_handler = request_id_middleware(handler)
    return app


def _state(settings: Settings, jwt_auth: TokenAuth) -> AppState:
    return AppState(
        {
            "settings": settings,
            "jwt_auth": jwt_auth,
            "hasher": PasswordHasher(
                time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib
            ),
        }
    )
