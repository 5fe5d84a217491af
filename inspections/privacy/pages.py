"""``/people/{id}/data``: what is held about a person, a button that downloads it all
(the subject access .zip) and a form that erases them. The person's page links here."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Response, get, post
from litestar.params import FromPath
from litestar.response import File, Template
from msgspec import Meta

from inspections.accounts.queries import user_in_org
from inspections.org_settings import read_section
from inspections.privacy.erasure import erase_person
from inspections.privacy.routes import acting, export_file
from inspections.privacy.schemas import RetentionSettings
from inspections.web.screens import form_screen, read_form, screens_router, see_other
from service.auth import AuthedRequest, coordinator_only
from service.db import DB
from service.errors import DomainError
from service.schema import Form
from service.state import AppState

LABELS = {"confirm": "Type ERASE to confirm"}


class ExportForm(Form, kw_only=True):
    pass


class EraseForm(Form, kw_only=True):
    confirm: Annotated[str, Meta(min_length=1, max_length=20)]


_HELD_SQL = """
    select (select count(*) from submissions where user_id = $1) submissions,
           (select count(*) from evidence where uploaded_by = $1) photos,
           (select count(*) from evidence where uploaded_by = $1
                                           and original_key is not null) originals,
           (select count(*) from training_records where user_id = $1) training,
           (select count(*) from devices where user_id = $1) devices,
           (select count(*) from findings where raised_by = $1) findings,
           (select erased_at from users where id = $1) erased_at"""


async def _page(request: AuthedRequest, db: DB, user_id: UUID, **form: Any) -> Template:
    """What is held about the person; ``form``: a refused erasure's errors and status."""
    person = await user_in_org(db, request.user, user_id)  # 404 for another organisation
    held = await db.fetchrow(_HELD_SQL, user_id)
    schedule = await read_section(db, request.user.organisation_id, "retention", RetentionSettings)
    return form_screen(
        request,
        "privacy/person_data.html",
        person=person,
        held=held,
        schedule=schedule,
        itself=user_id == request.user.user_id,
        erased=request.query_params.get("erased") == "1",
        **form,
    )


@get("/{user_id:uuid}/data", guards=coordinator_only)
async def person_data(user_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Template:
    return await _page(request, db, user_id)


@post("/{user_id:uuid}/data/export", guards=coordinator_only, status_code=200)
async def person_export(
    user_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> File:
    return await export_file(db, state.store, user_id, acting(request, "screen"))


@post(
    "/{user_id:uuid}/data/erase",
    guards=coordinator_only,
    opt={"db_transaction": False},  # rows commit before the store's objects go
)
async def person_erase(
    user_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Template | Response[None]:
    form = await read_form(request, EraseForm, LABELS)
    if not isinstance(form, list) and form.confirm.strip().upper() != "ERASE":
        form = [{"field": "confirm", "message": "Type ERASE to confirm"}]
    if isinstance(form, list):
        return await _page(request, db, user_id, errors=form, status=422)
    try:
        await erase_person(db, state.store, user_id, acting(request, "screen"))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return await _page(
            request, db, user_id, errors=[{"field": "confirm", "message": exc.detail}], status=409
        )
    return see_other(f"/people/{user_id}/data?erased=1")


router = screens_router("/people", [person_data, person_export, person_erase])
