"""/people: the coordinator's People screens.

List and search; invite (and send an invite again); a person's name and roles, training
and safeguarding-check records, devices, deactivating and reactivating. Every handler
calls what the JSON route calls (inspections/accounts/people.py, invites.py) behind the
same guard, so the checks and the audit are the API's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from urllib.parse import urlencode
from uuid import UUID

import asyncpg
from litestar import Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from inspections.accounts import invites, people
from inspections.accounts import queries as q
from inspections.accounts.clearance import clearance_reasons, from_rows
from inspections.accounts.home_panel import coordinator_panel
from inspections.accounts.invites import ROLE_WORDS, roles_in_words
from inspections.accounts.schemas import DisplayName, Roles
from inspections.web.home import panel_for
from inspections.web.screens import (
    Refused,
    attempt,
    read_form,
    screen,
    screens_router,
    see_other,
    submit,
)
from inspections.wording import long_date
from service.auth import ROLES, AuthedRequest, Role, coordinator_only
from service.db import DB
from service.errors import DomainError
from service.schema import Email, Form, NonEmpty, Search, cursor_after
from service.state import AppState

DUE_DAYS = 30  # "expires soon": the home panel's window too


class InviteForm(Form, kw_only=True):
    email: Email
    roles: Roles


class PersonForm(Form, kw_only=True):
    display_name: DisplayName
    roles: Roles


class TrainingForm(Form, kw_only=True):
    kind: Literal["course", "safeguarding_check"]
    course: NonEmpty
    completed_on: dt.date
    expires_on: dt.date | None = None


class ActiveForm(Form, kw_only=True):
    active: Literal["yes", "no"]


LABELS = {
    "email": "Email address",
    "roles": "Roles",
    "display_name": "Name",
    "kind": "What was completed",
    "course": "Course or check",
    "completed_on": "Date completed",
    "expires_on": "Expiry date",
    "active": "Account",
}
# What to do about a field the form could not read, where the general words would mislead
# ("Choose email address from the list" for a mistyped address).
PLAIN = {
    "email": "Enter an email address like name@example.org",
    "roles": "Choose at least one role",
    "kind": "Choose inspector training or a safeguarding check",
    "completed_on": "Enter the date it was completed, like 31/01/2027",
    "expires_on": "Enter the date it expires, like 31/01/2027, or leave it empty",
}
KIND_WORDS = {"course": "Inspector training", "safeguarding_check": "Safeguarding check (DBS)"}
ROLE_CHOICES = [{"value": r, "label": ROLE_WORDS[r].capitalize()} for r in ROLES]


def clearance_words(roles: list[str], records: list[Any], today: dt.date) -> dict[str, Any]:
    """Whether a person may inspect, in words, and whether that runs out within DUE_DAYS."""
    if not {"citizen_inspector", "professional_inspector"} & set(roles):
        return {"state": "none", "words": "Not an inspector", "reasons": []}
    now = clearance_reasons(roles, records, today)
    if now:
        return {"state": "not-cleared", "words": "Not cleared to inspect", "reasons": now}
    soon = clearance_reasons(roles, records, today, today + dt.timedelta(days=DUE_DAYS))
    if soon:
        return {"state": "expiring", "words": "Cleared, but not for long", "reasons": soon}
    return {"state": "cleared", "words": "Cleared to inspect", "reasons": []}


async def _training(db: asyncpg.Connection, ids: list[UUID]) -> dict[UUID, list[Any]]:
    by_user: dict[UUID, list[Any]] = {i: [] for i in ids}
    for r in await db.fetch(
        """select user_id, kind, course, completed_on, expires_on from training_records
            where user_id = any($1::uuid[])""",
        ids,
    ):
        by_user[r["user_id"]].append(r)
    return by_user


@get("/", name="people", guards=coordinator_only)
async def people_list(
    request: AuthedRequest,
    db: DB,
    search: Search = None,
    role: FromQuery[Role | None] = None,
    status: FromQuery[Literal["active", "deactivated", "all"]] = "active",
    clearance: FromQuery[Literal["expiring", "any"]] = "any",
    cursor: FromQuery[str | None] = None,
) -> Template:
    today = dt.date.today()
    ids = None
    if clearance == "expiring":
        ids = list(await people.clearance_due(db, request.user, today, DUE_DAYS))
    found, nxt = await people.list_users(
        db,
        request.user,
        role=role,
        active={"active": True, "deactivated": False}.get(status),
        search=search or None,
        ids=ids,
        after=cursor_after(cursor, dt.datetime, UUID),
    )
    training = await _training(db, [u.id for u in found])
    rows = [
        {
            "user": u,
            "roles": roles_in_words(u.roles),
            "clearance": clearance_words(u.roles, from_rows(training[u.id]), today),
        }
        for u in found
    ]
    query = {"q": search or "", "role": role or "", "status": status, "clearance": clearance}
    return screen(
        request,
        "accounts/people_list.html",
        rows=rows,
        query=query,
        roles=ROLE_CHOICES,
        next_url="/people?" + urlencode({**query, "cursor": nxt}) if nxt else None,
        filtered=bool(search or role or status != "active" or clearance != "any"),
    )


def _invite_page(
    request: AuthedRequest, form: dict[str, Any], errors: list[dict[str, str]], status: int = 200
) -> Template:
    return screen(
        request,
        "accounts/people_invite.html",
        status=status,
        form=form,
        errors=errors,
        roles=ROLE_CHOICES,
    )


@get("/invite", guards=coordinator_only)
async def invite_form(
    request: AuthedRequest,
    email: FromQuery[str] = "",
    role: FromQuery[list[Role] | None] = None,
) -> Template:
    return _invite_page(request, {"email": email, "roles": role or []}, [])


@post("/invite", guards=coordinator_only)
async def invite_post(request: AuthedRequest, db: DB, state: AppState) -> Template | Response[None]:
    form = await request.form()
    shown = {"email": form.get("email", ""), "roles": form.getall("roles", [])}
    made = await submit(
        db,
        await read_form(request, InviteForm, LABELS, PLAIN),
        lambda d: invites.create(db, state.settings, request, request.user, d.email, d.roles),
        LABELS,
    )
    if isinstance(made, Refused):
        return _invite_page(request, shown, made.errors, made.status)
    row, _code = made  # the code goes by email only: never into a page or a URL
    return see_other(f"/people/invites?sent={row['id']}")


InviteStatus = Literal["open", "accepted", "expired", "all"]


@get("/invites", guards=coordinator_only)
async def invites_list(
    request: AuthedRequest,
    db: DB,
    status: FromQuery[InviteStatus] = "open",
    sent: FromQuery[UUID | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Template:
    return await _invites_page(request, db, status, sent, cursor)


async def _invites_page(
    request: AuthedRequest,
    db: asyncpg.Connection,
    status: InviteStatus = "open",
    sent: UUID | None = None,
    cursor: str | None = None,
    errors: list[dict[str, str]] | None = None,
    code: int = 200,
) -> Template:
    items, nxt = await people.list_invites(
        db, request.user, status, cursor_after(cursor, dt.datetime, UUID)
    )
    notice = None
    if sent is not None:
        done = await people.invite_summary(db, request.user, sent)
        until = long_date(done.expires_at)
        notice = f"Invite emailed to {done.email}. The link in it works until {until}."
    return screen(
        request,
        "accounts/people_invites.html",
        status=code,
        errors=errors or [],
        invites=[
            {
                "invite": i,
                "roles": roles_in_words(i.roles),
                "query": urlencode({"email": i.email, "role": i.roles}, doseq=True),
            }
            for i in items
        ],
        which=status,
        notice=notice,
        next_url="/people/invites?" + urlencode({"status": status, "cursor": nxt}) if nxt else None,
        long_date=long_date,
    )


@post("/invites/{invite_id:uuid}/resend", guards=coordinator_only)
async def invite_resend(
    invite_id: FromPath[UUID], request: AuthedRequest, db: DB, state: AppState
) -> Template | Response[None]:
    done = await attempt(db, invites.resend(db, state.settings, request, request.user, invite_id))
    if isinstance(done, DomainError):
        # Accepted or expired since the list was shown: say what to do instead.
        why = (
            "This invite has expired. Invite the person again."
            if done.status == 410
            else done.detail
        )
        return await _invites_page(
            request, db, "all", errors=[{"field": "invites", "message": why}], code=done.status
        )
    return see_other(f"/people/invites?sent={invite_id}")


async def _person_page(
    request: AuthedRequest,
    db: asyncpg.Connection,
    user_id: UUID,
    *,
    refused: Refused | None = None,
    form: str = "",
    values: dict[str, Any] | None = None,
    saved: str = "",
) -> Template:
    """A person's page; ``refused``: ``form`` was not saved, its errors beside it."""
    person = await q.user_detail(db, await q.user_in_org(db, request.user, user_id))
    devices = await people.devices_of(db, request.user, user_id)
    today = dt.date.today()
    return screen(
        request,
        "accounts/people_person.html",
        status=refused.status if refused else 200,
        person=person,
        roles_words=roles_in_words(person.roles),
        clearance=clearance_words(person.roles, person.training, today),
        devices=devices,
        roles=ROLE_CHOICES,
        kinds=KIND_WORDS,
        errors=refused.errors if refused else [],
        form=form,
        values=values or {},
        saved=saved,
        itself=user_id == request.user.user_id,
        long_date=long_date,
    )


SAVED = {
    "person": "Name and roles saved.",
    "training": "Training record saved.",
    "deactivated": "Account deactivated: every device is signed out.",
    "reactivated": "Account reactivated: they can sign in again.",
    "device": "Device signed out.",
}


@get("/{user_id:uuid}", guards=coordinator_only)
async def person(
    user_id: FromPath[UUID], request: AuthedRequest, db: DB, saved: FromQuery[str] = ""
) -> Template:
    return await _person_page(request, db, user_id, saved=SAVED.get(saved, ""))


@post("/{user_id:uuid}", guards=coordinator_only)
async def person_post(
    user_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Template | Response[None]:
    raw = await request.form()
    values = {"display_name": raw.get("display_name", ""), "roles": raw.getall("roles", [])}
    done = await submit(
        db,
        await read_form(request, PersonForm, LABELS, PLAIN),
        lambda d: people.update_user(
            db, request, request.user, user_id, display_name=d.display_name, roles=d.roles
        ),
        LABELS,
    )
    if isinstance(done, Refused):
        return await _person_page(request, db, user_id, refused=done, form="person", values=values)
    return see_other(f"/people/{user_id}?saved=person#person")


@post("/{user_id:uuid}/training", guards=coordinator_only)
async def training_post(
    user_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Template | Response[None]:
    raw = await request.form()
    values = {k: raw.get(k, "") for k in ("kind", "course", "completed_on", "expires_on")}
    done = await submit(
        db,
        await read_form(request, TrainingForm, LABELS, PLAIN),
        lambda d: people.record_training(
            db,
            request,
            request.user,
            user_id,
            kind=d.kind,
            course=d.course,
            completed_on=d.completed_on,
            expires_on=d.expires_on,
        ),
        LABELS,
    )
    if isinstance(done, Refused):
        return await _person_page(
            request, db, user_id, refused=done, form="training", values=values
        )
    return see_other(f"/people/{user_id}?saved=training#training")


@post("/{user_id:uuid}/active", guards=coordinator_only)
async def active_post(
    user_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Template | Response[None]:
    done = await submit(
        db,
        await read_form(request, ActiveForm, LABELS, PLAIN),
        lambda d: people.update_user(db, request, request.user, user_id, active=d.active == "yes"),
        LABELS,
    )
    if isinstance(done, Refused):
        return await _person_page(request, db, user_id, refused=done, form="active")
    return see_other(f"/people/{user_id}?saved={'reactivated' if done.active else 'deactivated'}")


@post("/{user_id:uuid}/devices/{device_id:uuid}/revoke", guards=coordinator_only)
async def device_revoke(
    user_id: FromPath[UUID], device_id: FromPath[UUID], request: AuthedRequest, db: DB
) -> Response[None]:
    await people.revoke_device_of(db, request, request.user, user_id, device_id)
    return see_other(f"/people/{user_id}?saved=device#devices")


panel_for("coordinator")(coordinator_panel)  # the home page's "what needs doing now"
router = screens_router(
    "/people",
    [
        people_list,
        invite_form,
        invite_post,
        invites_list,
        invite_resend,
        person,
        person_post,
        training_post,
        active_post,
        device_revoke,
    ],
)
