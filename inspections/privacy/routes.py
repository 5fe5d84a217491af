"""The privacy API: the retention schedule (organisation settings), erasing a person and
exporting everything held about them (coordinators of the person's organisation only)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from uuid import UUID

import asyncpg
from litestar import Router, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath
from litestar.response import File

from inspections.org_settings import settings_routes
from inspections.privacy.erasure import erase_person
from inspections.privacy.export import export_person
from inspections.privacy.schemas import (
    Acting,
    Erasure,
    RetentionSettings,
    RetentionSettingsPatch,
    check_retention,
)
from service.auth import AuthedRequest, coordinator_only
from service.db import DB
from service.errors import problem_responses, request_id_of
from service.state import AppState
from service.storage import ObjectStore


def acting(request: AuthedRequest, via: str = "api") -> Acting:
    """The caller, as erase_person and export_person check and audit them."""
    return Acting(
        organisation_id=request.user.organisation_id,
        actor_id=request.user.user_id,
        request_id=request_id_of(request),
        via=via,
    )


@post(
    "/users/{user_id:uuid}/erase",
    summary="Erase a person who leaves, by anonymisation (audited)",
    description="Their name, email, devices and training records go; their submissions stay "
    "as 'a citizen inspector' (scorecards do not change); their photos' originals are "
    "deleted from the store, the derivatives kept only if the organisation keeps evidence "
    "(`keep_erased_evidence` in the retention settings). Cannot be undone.",
    status_code=200,
    responses=problem_responses(409),
    # Rows commit before the store's objects are deleted: the operation opens its own.
    opt={"db_transaction": False},
)
async def erase(
    user_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Erasure:
    return await erase_person(db, state.store, user_id, acting(request))


@get(
    "/users/{user_id:uuid}/export",
    summary="Everything held about a person: person.json and their photos, as a .zip (audited)",
    media_type="application/zip",
)
async def export(user_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState) -> File:
    return await export_file(db, state.store, user_id, acting(request))


async def export_file(
    db: asyncpg.Connection, store: ObjectStore, user_id: UUID, by: Acting
) -> File:
    """The export written to a temporary file (0600), sent as the download, then removed:
    a volunteer's photos never need to fit in memory."""
    fd, name = tempfile.mkstemp(prefix="coassess-export-", suffix=".zip")
    os.close(fd)
    path = Path(name)
    try:
        await export_person(db, store, user_id, path, by)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)  # no await here: a cancelled export still cleans up
        raise
    return File(
        path,
        filename=f"person-{user_id}.zip",
        media_type="application/zip",
        headers={"Cache-Control": "no-store"},
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


retention_handlers = settings_routes(
    "/organisation/retention-settings",
    "retention",
    RetentionSettings,
    RetentionSettingsPatch,
    name="retention_settings",
    audit_action="organisation.retention_settings",
    readers=("coordinator",),
    read_summary="How long each kind of data is kept before it is deleted or anonymised",
    patch_summary="Change the retention schedule (audited)",
    check=check_retention,
)

router = Router(
    "/v1",
    tags=["privacy"],
    route_handlers=[*retention_handlers],
)
people_router = Router(
    "/v1",
    tags=["privacy"],
    guards=coordinator_only,
    route_handlers=[erase, export],
)
