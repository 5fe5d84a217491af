"""What every public page (no sign-in: sign-in itself, invites, password reset) shares:
how it is declared, and that its form refuses a post from another site's page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.response import Template

from service.auth import PUBLIC_PAGE, same_origin

HTML = "text/html"  # Litestar adds "; charset=utf-8"
# Shown to the OpenAPI reader; the pages are for browsers, not the phone app.
PAGES_TAG = "browser pages"


def public_page(path: str, summary: str) -> HTTPRouteHandler:
    """A page anyone may open, signed in or not, listed with the browser pages."""
    return get(path, **PUBLIC_PAGE, tags=[PAGES_TAG], summary=summary, media_type=HTML)


def public_form(
    path: str,
    summary: str,
    refused: Callable[[], Template],
    status_code: int = 200,
    **more: Any,
) -> HTTPRouteHandler:
    """Where a public page's form posts; it answers with a page (``status_code`` unless
    the page says otherwise). A post from another site's page gets ``refused()``, before
    the form is read."""

    async def same_site_only(request: Request) -> Template | None:
        return None if same_origin(request) else refused()

    return post(
        path,
        **PUBLIC_PAGE,
        tags=[PAGES_TAG],
        summary=summary,
        media_type=HTML,
        status_code=status_code,
        before_request=same_site_only,
        **more,
    )
