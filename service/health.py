"""Liveness and readiness."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Request, Response, get

from service.auth import PUBLIC
from service.errors import PROBLEM_JSON, ProblemBody, problem_responses
from service.state import AppState


class Health(msgspec.Struct):
    status: str


@get("/health", **PUBLIC, tags=["health"], summary="The process is alive")
async def health() -> Health:
    return Health(status="ok")


@get(
    "/ready",
    **PUBLIC,
    tags=["health"],
    summary="PostgreSQL and the bucket are reachable",
    responses=problem_responses(503),
)
async def ready(request: Request, state: AppState) -> Response[Health] | Response[ProblemBody]:
    failed: list[str] = []

    async def check_db() -> None:
        async with state.pool.acquire(timeout=2) as conn:
            await conn.fetchval("select 1")

    for name, check in (("postgresql", check_db), ("object_store", state.store.ping)):
        try:
            await asyncio.wait_for(check(), timeout=3)
        except Exception:  # any failure means "not ready"; the name says which
            failed.append(name)
    if failed:
        body = ProblemBody(
            type="https://coassess.dev/problems/not-ready",
            title="Not ready",
            status=503,
            detail=f"Unreachable: {', '.join(failed)}.",
            request_id=request.scope.get("state", {}).get("request_id"),
        )
        return Response(body, status_code=503, media_type=PROBLEM_JSON)
    return Response(Health(status="ready"))
