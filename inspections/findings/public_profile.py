"""An organisation's public profile: what its public pages say about it (its contact),
an organisation settings section like the others (``org_settings.settings_routes``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from litestar import Router

from inspections.findings.public_schemas import PublicProfile, PublicProfilePatch
from inspections.org_settings import read_section, settings_routes

SECTION = "public"


async def public_profile(db: asyncpg.Connection, org: UUID) -> PublicProfile:
    return await read_section(db, org, SECTION, PublicProfile)


router = Router(
    "/v1",
    tags=["findings"],
    route_handlers=settings_routes(
        "/organisation/public-profile",
        SECTION,
        PublicProfile,
        PublicProfilePatch,
        name="public_profile",
        audit_action="organisation.public_profile",
        readers=("coordinator",),
        read_summary="What the organisation's public pages say about it (its contact)",
        patch_summary="Set how the public contacts the organisation (on every public page; "
        "audited)",
    ),
)
