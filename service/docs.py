"""The API docs page (/schema): Swagger UI served from the project's own files, no CDN.

The UI's JS and CSS are a pinned, vendored copy (service/static/vendor/, with its licence),
so the docs work offline and behind a firewall, and the page's Content-Security-Policy
allows nothing from elsewhere.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import ResponseHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

STATIC = Path(__file__).parent / "static"
SWAGGER_UI = "vendor/swagger-ui-dist-5.35.0"
ASSETS = "/assets"  # under the docs path: /schema/assets/...

# Swagger UI sets style attributes from JS (hence 'unsafe-inline' for styles only) and
# shows inline SVG and data: images; scripts, fetches and everything else: this origin only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


class SwaggerUI(OpenAPIRenderPlugin):
    """Swagger UI from ``/schema/assets`` (Litestar's own plugin loads it from a CDN)."""

    def __init__(self, docs_path: str = "/schema") -> None:
        self.assets = f"{docs_path}{ASSETS}"
        super().__init__(
            path="/swagger",
            favicon=f'<link rel="icon" href="{self.assets}/{SWAGGER_UI}/favicon-32x32.png">',
        )

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(openapi_schema["info"]["title"])
        spec = html.escape(self.get_openapi_json_route(request))
        ui = f"{self.assets}/{SWAGGER_UI}"
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{self.favicon}
<link rel="stylesheet" href="{ui}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-spec-url="{spec}"></div>
<script src="{ui}/swagger-ui-bundle.js"></script>
<script src="{self.assets}/docs.js"></script>
</body>
</html>
""".encode()


def docs_router(docs_path: str = "/schema") -> Router:
    """The router the OpenAPI plugin fills with the docs routes: the assets, and the CSP."""
    return Router(
        docs_path,
        route_handlers=[
            create_static_files_router(
                path=ASSETS,
                directories=[STATIC],
                include_in_schema=False,
            )
        ],
        response_headers=[ResponseHeader(name="Content-Security-Policy", value=CSP)],
        include_in_schema=False,
    )
