"""The staff screens' shell: CSRF on every form, navigation by role, forms read in words."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar.testing import AsyncTestClient
from msgspec import Meta

from inspections.web.screens import nav_for, read_form
from service.auth import Principal
from tests.helpers import CSRF_COOKIE, PASSWORD, Api, form_post
from tests.scenes import seeded


async def test_a_form_posted_without_this_browsers_token_is_refused(api: Api) -> None:
    s, _ = await seeded(api)
    coord = await api.user(s.org, "coordinator")
    login = {"email": coord["email"], "password": PASSWORD, "next": "/"}
    # As another site's page would post it: no token (and no cookie to match one).
    r = await api.client.post("/signin", data=login, follow_redirects=False)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "This form has expired" in r.text
    assert "coassess_session" not in r.headers.get("set-cookie", "")
    # A token that is not this browser's (forged, or another browser's) is refused too.
    await api.client.get("/signin")
    forged = {**login, "_csrf_token": "0" * 64 + "1" * 64}
    r = await api.client.post("/signin", data=forged, follow_redirects=False)
    assert r.status_code == 403
    # The real form, with its token, signs in.
    r = await form_post(api.client, "/signin", login, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    # Signing out is a form too.
    r = await api.client.post("/signout", follow_redirects=False)
    assert r.status_code == 403
    page = await api.client.get("/signout")
    assert 'name="_csrf_token"' in page.text
    r = await form_post(api.client, "/signout", {}, follow_redirects=False)
    assert r.status_code == 303
    assert (await api.client.get("/", follow_redirects=False)).status_code == 303


async def test_the_csrf_cookie_is_httponly_and_strict(client: AsyncTestClient) -> None:
    r = await client.get("/signin")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(CSRF_COOKIE + "=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    # The phone's JSON API needs no token: it carries a bearer token, not a cookie.
    assert (
        await client.post(
            "/v1/auth/token", json={"email": "a@b.cd", "password": "x" * 20, "device": "p"}
        )
    ).status_code == 401


async def test_each_person_sees_only_what_their_roles_allow(api: Api) -> None:
    s, _ = await seeded(api)
    expect = {
        "coordinator": {"People", "Visits", "Reports", "Checklists", "Services", "League tables"},
        "safeguarding_lead": {"Safeguarding concerns"},
        "service_manager": {"My findings", "Scorecards"},
        "scrutiny_member": {"League tables", "Scorecards"},
        "citizen_inspector": {"Inspector app"},
    }
    everything = {
        "People",
        "Safeguarding concerns",
        "My findings",
        "League tables",
        "Inspector app",
        "Visits",
    }
    for role, allowed in expect.items():
        user = await api.user(s.org, role)
        api.client.cookies.clear()
        r = await form_post(
            api.client, "/signin", {"email": user["email"], "password": PASSWORD, "next": "/"}
        )
        assert r.status_code == 200 and "<h1>Hello," in r.text, r.text
        nav = r.text.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
        for label in allowed:
            assert f">{label}</a>" in nav, (role, label)
        for label in everything - allowed:
            assert f">{label}</a>" not in nav, (role, label)
        assert 'href="/" aria-current="page"' in nav


def test_nav_marks_the_current_section() -> None:
    from uuid import uuid4

    who = Principal(uuid4(), uuid4(), frozenset({"coordinator"}), uuid4())
    nav = {i["href"]: i["current"] for i in nav_for(who, "/people/123")}
    assert nav["/people"] and not nav["/"] and not nav["/services"]


class _Form(msgspec.Struct, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=20)]
    radius_m: Annotated[int, Meta(ge=10)] = 100
    managers: list[str] = []


class _FakeForm:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items

    def __contains__(self, key: str) -> bool:
        return any(k == key for k, _ in self.items)

    def getall(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key]


class _Req:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._form = _FakeForm(items)

    async def form(self) -> _FakeForm:
        return self._form


LABELS = {"name": "Name", "radius_m": "Geofence radius (metres)", "managers": "Managers"}


async def test_forms_are_read_into_structs_and_errors_are_words() -> None:
    ok = await read_form(
        _Req([("name", " Elm "), ("radius_m", "250"), ("managers", "a"), ("managers", "b")]),
        _Form,
        LABELS,
    )  # type: ignore[arg-type]
    assert ok == _Form(name="Elm", radius_m=250, managers=["a", "b"])
    blank_number = await read_form(_Req([("name", "Elm"), ("radius_m", "")]), _Form, LABELS)  # type: ignore[arg-type]
    assert blank_number == _Form(name="Elm")
    cases = {
        (("name", ""),): "Enter name",
        (("name", "x" * 21),): "Name must be 20 characters or fewer",
        (("name", "Elm"), ("radius_m", "ten")): "Geofence radius (metres) must be a whole number",
        (("name", "Elm"), ("radius_m", "5")): "Geofence radius (metres) must be at least 10",
        (): "Enter name",
    }
    for items, words in cases.items():
        errors = await read_form(_Req(list(items)), _Form, LABELS)  # type: ignore[arg-type]
        assert isinstance(errors, list) and errors[0]["message"] == words, (items, errors)
        assert "$" not in errors[0]["message"] and "`" not in errors[0]["message"]


class _Dated(msgspec.Struct, kw_only=True):
    email: Annotated[str, Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    on: dt.date


async def test_emails_and_dates_in_the_wrong_form_are_explained_in_words() -> None:
    labels = {"email": "Email address", "on": "Date completed"}
    errors = await read_form(_Req([("email", "rose"), ("on", "2027-01-31")]), _Dated, labels)  # type: ignore[arg-type]
    assert errors == [
        {
            "field": "email",
            "message": "Email address must be an email address, like name@example.org",
        }
    ]
    errors = await read_form(_Req([("email", "r@e.org"), ("on", "31/01")]), _Dated, labels)  # type: ignore[arg-type]
    assert errors == [{"field": "on", "message": "Date completed must be a date like 2027-01-31"}]
