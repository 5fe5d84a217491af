"""Photos for the staff pages: a visit's and a finding's pictures, served by this site.

The API hands out short-lived links to the object store; a page's Content-Security-Policy
loads images from this site only (img-src 'self'), so pages link here instead. Who may see
a photo is the same check GET /v1/evidence/{id} makes.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from litestar import Response, get
from litestar.params import FromPath

from inspections.evidence import queries as q
from inspections.web.screens import screens_router
from service.auth import AuthedRequest
from service.db import DB
from service.errors import not_found
from service.state import AppState

SIZES = {"thumb": "thumb_key", "display": "display_key"}


def photo_url(evidence_id: UUID, size: str = "thumb") -> str:
    """Where a page finds this photo's derived copy (``thumb`` or ``display``)."""
    return f"/evidence/{evidence_id}/{size}"


@get("/{evidence_id:uuid}/{size:str}", name="evidence-photo")
async def photo(
    evidence_id: FromPath[UUID],
    size: FromPath[str],
    request: AuthedRequest,
    db: DB,
    state: AppState,
) -> Response[bytes]:
    if size not in SIZES:
        raise not_found("photo size")
    row = await q.evidence_in_org(db, request.user, evidence_id)
    await q.may_read_evidence(db, request.user, row)
    if row["status"] != "ready":
        raise not_found("photo")
    store = state.store
    obj = await store.call("get_object", Bucket=store.bucket, Key=row[SIZES[size]])
    body = await asyncio.to_thread(obj["Body"].read)
    # Private: a signed-in person's photo; kept briefly so a page reload does not refetch.
    return Response(
        body,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


router = screens_router("/evidence", [photo])
