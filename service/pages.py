"""Pages for people, rendered from Jinja2 templates: the layout, the stylesheet, the headers.

How a page is made (the sign-in and scorecard pages predate this and build their HTML in
Python; new pages, and those pages when they move, use templates):

- ``service/templates/layout.html`` is the one layout: head, skip link, site header,
  ``<main id="main">``. A page extends it and fills the blocks ``title`` and ``content``
  (``head`` and ``account`` too, rarely).
- Each slice keeps its pages in ``inspections/<slice>/templates/<slice>/<page>.html``:
  every slice's ``templates/`` folder is on the search path, and the inner folder named
  after the slice keeps two slices' ``form.html`` apart (``"accounts/invite.html"``).
- Autoescape is on for every template: a value from a person or the database is escaped
  wherever it goes. Never pass input through ``|safe``.
- An undefined variable is an error (``StrictUndefined``): a typo fails a test instead of
  showing an empty place on a page.
- Render with ``page("accounts/invite.html", status=..., **context)``: it adds the
  security headers (CSP that allows our own stylesheet and nothing else: no script, no
  inline style; nosniff; no-store; no framing; no Referer to other sites, since some of
  these URLs hold a secret).
- The stylesheet is ``service/static/site.css``, linked as ``{{ static_url("site.css") }}``
  (``/static/site.css?v=<hash>``: a change reaches browsers at once, and it may be cached).
- Every form that posts carries ``{{ forms.csrf() }}`` (forms.html): Litestar's CSRF
  middleware (``csrf_config``) refuses an unsafe request to a page without the token that
  matches this browser's ``csrftoken`` cookie, so another site cannot post our forms.
- A route marked ``opt={"page": True}`` (``inspections/web/screens.py`` makes such routers)
  answers errors as pages: signed out goes to the sign-in page and back; a refusal
  (403, 404, 409 ...) is ``error.html`` with the same status and words the API gives.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import StrictUndefined
from litestar import Request, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.datastructures.headers import CacheControlHeader
from litestar.enums import MediaType
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SITE_CSS = STATIC / "site.css"

# What a template page may load: our stylesheet (style-src 'self'), nothing else.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Invite and reset links carry their secret in the path: no Referer to other sites.
    # (Not no-referrer: browsers then send "Origin: null", failing the same-origin check.)
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def static_url(name: str) -> str:
    """The URL of a file in service/static, versioned by its content."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


def _configure(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.undefined = StrictUndefined
    env.autoescape = True  # JinjaTemplateEngine sets it too; say it where it matters
    env.globals["static_url"] = static_url
    env.globals["site_name"] = "Co-assessment"


def template_config(slice_dirs: Sequence[Path]) -> TemplateConfig[JinjaTemplateEngine]:
    """Templates from service/templates (the layout) and each slice's templates folder."""
    return TemplateConfig(
        directory=[TEMPLATES, *slice_dirs],
        engine=JinjaTemplateEngine,
        engine_callback=_configure,
    )


async def _static_headers(response: Response[Any]) -> Response[Any]:
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def static_router() -> Router:
    """/static/...: files of service/static, public, cacheable (their URLs carry a version)."""
    return create_static_files_router(
        "/static",
        directories=[STATIC],
        opt={"public": True},
        security=[{}],
        cache_control=CacheControlHeader(public=True, max_age=86_400),
        after_request=_static_headers,
        include_in_schema=False,
    )


def page(
    template_name: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Template:
    """A template page with the security headers every page needs."""
    return Template(
        template_name=template_name,
        context=context,
        status_code=status,
        media_type=MediaType.HTML,
        headers={**PAGE_HEADERS, **(headers or {})},
        cookies=cookies,
    )


CSRF_COOKIE = "csrftoken"
SIGN_IN_PATH = "/signin"


def csrf_config(secret: str, exclude: list[str]) -> CSRFConfig:
    """Double-submit CSRF tokens for every form; ``exclude`` is the bearer-token API."""
    return CSRFConfig(
        # Its own key, derived from the app secret, so a CSRF token never signs anything else.
        secret=hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest(),
        cookie_name=CSRF_COOKIE,
        cookie_httponly=True,  # forms carry it in the page; no script needs to read it
        cookie_samesite="strict",
        exclude=exclude,
    )


def is_page(request: Request[Any, Any, Any]) -> bool:
    """Is this request for a page route (``opt={"page": True}``), so errors are pages too?"""
    handler = request.scope.get("route_handler")
    return bool(handler is not None and handler.opt.get("page"))


def sign_in_redirect(request: Request[Any, Any, Any]) -> Response[None]:
    """303 to the sign-in page, coming back here (a local path) afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Response(
        None,
        status_code=303,
        headers={
            "Location": f"{SIGN_IN_PATH}?next={quote(here, safe='')}",
            "Cache-Control": "no-store",
        },
    )


def error_page(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> Template:
    """The page for a refusal or failure on a page route: the API's status and words."""
    user = request.scope.get("user")
    return page(
        "error.html",
        status=status,
        headers=headers,
        title=title,
        detail=detail,
        signed_in=user is not None,
        nav=request.scope.get("state", {}).get("nav", []),
    )
