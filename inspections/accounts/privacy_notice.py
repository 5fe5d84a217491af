"""``/privacy``: the privacy notice people accept when they join, for anyone to read.

The text is a file in the project (templates/accounts/privacy_notice.html); its version is
the PRIVACY_NOTICE_VERSION setting, recorded on each person when they accept an invite
(invites.accept), so a change to the text goes with a new version.
"""

from __future__ import annotations

from litestar import Request, get
from litestar.response import Template

from service.auth import PUBLIC_PAGE
from service.pages import page
from service.state import app_state


@get("/privacy", **PUBLIC_PAGE, include_in_schema=False)
async def privacy_notice(request: Request) -> Template:
    version = app_state(request.app).settings.privacy_notice_version
    return page("accounts/privacy.html", version=version)


router = privacy_notice
