"""What every staff screen shares: the router, the navigation, and forms read into Structs.

How to write a screen (see inspections/web/home.py for a small one):

- Put the handlers in ``inspections/<slice>/pages.py`` and hand them to ``screens_router``:
  its routes need a signed-in caller (the session cookie), answer errors as pages
  (a signed-out browser goes to /signin and back; a ``DomainError`` from the domain
  becomes ``error.html`` with the status and words the JSON API gives), and stay out of
  the OpenAPI document (they are not the phone's API).
- Render with ``screen(request, "slice/page.html", **context)``: it adds the navigation
  this caller's roles allow and everything ``service.pages.page`` adds, and renews the
  session cookie once half its life has passed. A page whose forms come back refused
  renders with ``form_screen`` (errors, values sent, a fresh id per form).
- Check permissions by calling the slice's operation or query, never by hand: the same
  function the JSON route calls raises the same Forbidden / NotFound.
- Read a posted form with ``await read_form(request, SomeStruct, LABELS)``: it answers the
  Struct, or a list of errors in words (``{field, message}``) for ``forms.error_summary``.
  ``page_errors(exc, LABELS)`` turns a domain ``Invalid`` into the same list.
- Save it with ``await submit(db, data, lambda d: operation(...), LABELS)``: the operation's
  result, or ``Refused`` (the errors to show beside the form and the page's status); the
  write runs in ``attempt``, so a refusal is undone.
"""

from __future__ import annotations

import re
import types
import typing
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
import msgspec
from litestar import Request, Response, Router
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from inspections.accounts.signin_page import keep_session_alive
from service.auth import AuthedRequest, Principal
from service.errors import DomainError
from service.pages import page

T = TypeVar("T", bound=msgspec.Struct)
R = TypeVar("R")


class NavItem(msgspec.Struct, frozen=True):
    href: str
    label: str
    roles: tuple[str, ...]  # empty: everyone signed in


# Only what a person's roles allow: the routes check again (and the domain below them).
NAV: tuple[NavItem, ...] = (
    NavItem("/", "Home", ()),
    NavItem("/people", "People", ("coordinator",)),
    NavItem("/services", "Services", ("coordinator",)),
    NavItem("/checklists", "Checklists", ("coordinator",)),
    NavItem("/visits", "Visits", ("coordinator",)),
    NavItem("/reports", "Reports", ("coordinator",)),
    NavItem("/moderation", "Review before publishing", ("coordinator",)),
    NavItem("/concerns", "Safeguarding concerns", ("safeguarding_lead",)),
    NavItem("/my/findings", "My findings", ("service_manager",)),
    NavItem("/scorecards", "Scorecards", ("coordinator", "scrutiny_member", "service_manager")),
    NavItem("/league", "League tables", ("coordinator", "scrutiny_member")),
    NavItem("/webhooks", "Webhooks", ("coordinator",)),
    NavItem("/settings", "Settings", ("coordinator",)),
    NavItem("/app/", "Inspector app", ("citizen_inspector", "professional_inspector")),
)


def nav_for(principal: Principal, path: str) -> list[dict[str, Any]]:
    """The links this person may follow; the current section is marked for screen readers."""

    def current(href: str) -> bool:
        return (
            path == href if href == "/" else path == href or path.startswith(href.rstrip("/") + "/")
        )

    return [
        {"href": i.href, "label": i.label, "current": current(i.href)}
        for i in NAV
        if not i.roles or principal.has(*i.roles)
    ]


def screen(request: AuthedRequest, template: str, *, status: int = 200, **context: Any) -> Template:
    """A staff page: the template, this caller's navigation, the security headers."""
    nav = nav_for(request.user, request.url.path)
    # The error page of a later failure in this request shows the same navigation.
    request.scope.setdefault("state", {})["nav"] = nav
    response = page(
        template, status=status, signed_in=True, nav=nav, viewer=request.user, **context
    )
    keep_session_alive(request, request.auth, response)  # a reader stays signed in
    return response


def form_screen(
    request: AuthedRequest,
    template: str,
    *,
    errors: list[dict[str, str]] | None = None,
    values: Mapping[str, Any] | None = None,
    status: int = 200,
    **context: Any,
) -> Template:
    """A screen whose forms may come back refused: ``errors`` beside them, the ``values``
    sent, and ``new_id()``, a fresh id for each form (a form sent twice is one change)."""
    return screen(
        request,
        template,
        status=status,
        errors=errors or [],
        values=values or {},
        new_id=lambda: str(uuid.uuid4()),
        **context,
    )


def see_other(location: str) -> Response[None]:
    """After a successful post: 303 to the page that shows the result (post/redirect/get)."""
    return Response(
        None, status_code=303, headers={"Location": location, "Cache-Control": "no-store"}
    )


async def _remember_nav(request: Request[Any, Any, Any]) -> None:
    # Set before the handler runs, so a refusal raised by the domain still shows the menu.
    user = request.scope.get("user")
    if isinstance(user, Principal):
        request.scope.setdefault("state", {})["nav"] = nav_for(user, request.url.path)


def screens_router(path: str, handlers: Sequence[ControllerRouterHandler]) -> Router:
    """Staff screens under ``path``: signed in by cookie, errors as pages, not in OpenAPI."""
    return Router(
        path,
        route_handlers=list(handlers),
        opt={"page": True},
        include_in_schema=False,
        before_request=_remember_nav,
    )


# --- forms -----------------------------------------------------------------------------

_AT = re.compile(r"at `\$\.(\w+)")


def _words(message: str, label: str) -> str:
    """msgspec's message about one field, in words a volunteer understands."""
    if "length >=" in message or "Object missing required field" in message:
        return f"Enter {label.lower()}"
    m = re.search(r"length <= (\d+)", message)
    if m:
        return f"{label} must be {m.group(1)} characters or fewer"
    m = re.search(r"(>=|>|<=|<) (-?[\d.]+)", message)
    if m:
        op = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than"}[m.group(1)]
        return f"{label} must be {op} {m.group(2)}"
    if "`int`" in message:
        return f"{label} must be a whole number"
    if "`float`" in message or "`number`" in message:
        return f"{label} must be a number"
    if "`uuid`" in message:
        return f"Choose {label.lower()} from the list"
    if "datetime" in message or "`date`" in message or "RFC3339" in message:
        return f"{label} must be a date like 2027-01-31"
    if "`str` matching" in message:
        if "@" in message:
            return f"{label} must be an email address, like name@example.org"
        return f"Check {label.lower()}: it is not in the form we expect"
    if "Invalid enumeration value" in message:
        return f"Choose {label.lower()} from the list"
    return f"Check {label.lower()}"


def _field_of(message: str) -> str | None:
    m = re.search(r"required field `(\w+)`", message) or _AT.search(message)
    return m.group(1) if m else None


def _allows_blank(tp: Any) -> bool:
    """May an empty input be kept as ""? Only for plain text fields."""
    if tp is str:
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _allows_blank(typing.get_args(tp)[0])
    return False


def _is_many(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_many(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_many(a) for a in typing.get_args(tp))
    return origin in (list, set, frozenset, tuple)


async def read_form(
    request: Request[Any, Any, Any],
    struct: type[T],
    labels: dict[str, str],
    plain: Mapping[str, str] | None = None,
) -> T | list[dict[str, str]]:
    """The posted form as ``struct``, or the errors in words (``plain``: a field's own words,
    where the general ones would mislead).

    Empty inputs of non-text fields are left out (so a blank optional number is its default,
    and a blank required one says "Enter ..."); checkbox groups and multi-selects come as lists.
    """
    form = await request.form()
    hints = typing.get_type_hints(struct, include_extras=True)
    data: dict[str, Any] = {}
    for name in msgspec.structs.fields(struct):
        key = name.encode_name
        values = [v for v in form.getall(key) if isinstance(v, str)] if key in form else []
        tp = hints.get(name.name, str)
        if _is_many(tp):
            data[key] = [v for v in values if v != ""]
        elif values and (values[0] != "" or _allows_blank(tp)):
            data[key] = values[0].strip() if _allows_blank(tp) else values[0]
    try:
        return msgspec.convert(data, struct, strict=False)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc)) or next(iter(labels), "form")
        words = (plain or {}).get(field) or _words(str(exc), labels.get(field, field))
        return [{"field": field, "message": words}]


def page_errors(exc: DomainError, labels: dict[str, str]) -> list[dict[str, str]]:
    """A domain refusal as form errors: each field's reason beside the field, else the detail."""
    out = []
    for e in exc.errors:
        m = re.match(r"\$?\.?(\w+)", e.field.removeprefix("$."))
        field = m.group(1) if m else e.field
        label = labels.get(field)
        # Field paths and type names stay out of the page: the label, then the reason.
        out.append(
            {
                "field": field if label else "form",
                "message": f"{label}: {e.reason}" if label else e.reason,
            }
        )
    return out or [{"field": "form", "message": exc.detail}]


async def attempt(db: asyncpg.Connection, work: Awaitable[R]) -> R | DomainError:
    """Run a domain write in a savepoint: a refusal undoes what it wrote and is answered,
    so the page can show it beside the form (the request's transaction still commits)."""
    try:
        async with db.transaction():
            return await work
    except DomainError as exc:
        if exc.status in (403, 404):
            raise  # not the form's fault: the error page, with the API's status
        return exc


class Refused(msgspec.Struct, frozen=True):
    """A form not saved: what to show beside it, and the page's status."""

    errors: list[dict[str, str]]
    status: int


async def submit(
    db: asyncpg.Connection,
    data: T | list[dict[str, str]],
    write: Callable[[T], Awaitable[R]],
    labels: dict[str, str],
) -> R | Refused:
    """Save a form read by ``read_form`` with ``write``: its result, or ``Refused`` (the
    form's own errors at 422; a domain refusal, undone, with the API's status)."""
    if isinstance(data, list):
        return Refused(data, 422)
    done = await attempt(db, write(data))
    if isinstance(done, DomainError):
        return Refused(page_errors(done, labels), done.status)
    return done
