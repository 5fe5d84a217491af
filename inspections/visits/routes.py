"""Coordinators schedule visits with teams; phones download a visit's offline bundle."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

import msgspec
from litestar import MediaType, Router, get, patch, post
from litestar.datastructures import ResponseHeader, State
from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIType, Operation, Schema
from litestar.openapi.spec import Parameter as OAParameter
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED
from msgspec import UNSET

from inspections.audit.log import audit
from inspections.checklists.queries import version_in_org
from inspections.services.queries import service_in_org
from inspections.visits import operations
from inspections.visits import queries as q
from inspections.visits.bundle_memo import bundle_headers, etag_matches
from inspections.visits.schemas import (
    BUNDLE_EXAMPLE,
    Bundle,
    BundleMember,
    BundleService,
    BundleVisit,
    CancelRequest,
    MySubmission,
    MyVisit,
    MyVisitPage,
    Status,
    Visit,
    VisitCreate,
    VisitPage,
    VisitPatch,
)
from service.auth import LOAD_CALLER, AuthedRequest, Principal, coordinator_only
from service.db import DB, from_row
from service.errors import conflict, forbidden, not_found, problem_responses, request_id_of
from service.schema import Paging


@dataclass
class IfNoneMatchOperation(Operation):
    """Documents the If-None-Match header the bundle route reads itself."""

    def __post_init__(self) -> None:
        self.parameters = [
            *(self.parameters or []),
            OAParameter(
                name="If-None-Match",
                param_in=ParamType.HEADER,
                required=False,
                schema=Schema(type=OpenAPIType.STRING),
                description="ETag of the bundle the phone has; 304 when it is current",
            ),
        ]


_encoder = msgspec.json.Encoder()


@post(
    "/",
    guards=coordinator_only,
    summary="Schedule a visit: service, pinned checklist version, window and team",
    responses=problem_responses(404),
)
async def create_visit(data: JSONBody[VisitCreate], request: AuthedRequest, db: DB) -> Visit:
    return await operations.create_visit(db, request.user, data, request_id=request_id_of(request))


@get(
    "/",
    guards=coordinator_only,
    summary="Visits of my organisation",
)
async def list_visits(
    request: AuthedRequest,
    db: DB,
    *,
    service_id: FromQuery[UUID | None] = None,
    status: FromQuery[Status | None] = None,
    starts_from: FromQuery[dt.datetime | None] = None,
    starts_before: FromQuery[dt.datetime | None] = None,
    paging: Paging,
) -> VisitPage:
    return await operations.list_visits(
        db,
        request.user,
        service_id=service_id,
        status=status,
        starts_from=starts_from,
        starts_before=starts_before,
        cursor=paging.cursor,
        limit=paging.limit,
    )


@get(
    "/{visit_id:uuid}",
    summary="One visit (its team and coordinators)",
    responses=problem_responses(403),
)
async def get_visit(visit_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Visit:
    return await operations.visit_for(db, request.user, visit_id)


@patch(
    "/{visit_id:uuid}",
    guards=coordinator_only,
    summary="Change a planned visit's window, announcement or team",
    responses=problem_responses(409),
)
async def patch_visit(
    visit_id: FromPath[UUID], data: JSONBody[VisitPatch], request: AuthedRequest, db: DB
) -> Visit:
    visit = await q.locked_visit(db, request.user, visit_id)
    if visit.status != "planned":
        raise conflict(f"Only a planned visit can be changed; this one is {visit.status}.")
    starts = visit.starts_at if data.starts_at is UNSET else data.starts_at
    ends = visit.ends_at if data.ends_at is UNSET else data.ends_at
    operations.check_window(starts, ends)
    if data.team is UNSET:
        from inspections.visits.schemas import TeamMemberIn

        team = [
            TeamMemberIn(user_id=m.user_id, perspective=m.perspective, lead=m.lead)
            for m in visit.team
        ]
    else:
        team = data.team
    await q.check_team(db, request.user, visit.service_id, team, starts, ends)
    announced = visit.announced if data.announced is UNSET else data.announced
    await db.execute(
        """update visits set starts_at = $2, ends_at = $3, announced = $4, updated_at = now()
            where id = $1""",
        visit_id,
        starts,
        ends,
        announced,
    )
    if data.team is not UNSET:
        await q.write_team(db, request.user, visit_id, team)
    changes = msgspec.to_builtins(data)
    await audit(db, request, "visit.update", "visit", visit_id, changes)
    return await q.visit_in_org(db, request.user, visit_id)


@post(
    "/{visit_id:uuid}/cancel",
    guards=coordinator_only,
    status_code=HTTP_200_OK,
    summary="Cancel a visit (it then refuses submissions)",
    responses=problem_responses(409),
)
async def cancel_visit(
    visit_id: FromPath[UUID], data: JSONBody[CancelRequest], request: AuthedRequest, db: DB
) -> Visit:
    return await operations.cancel_visit(
        db, request.user, visit_id, data.reason, request_id=request_id_of(request)
    )


@post(
    "/{visit_id:uuid}/close",
    guards=coordinator_only,
    status_code=HTTP_200_OK,
    summary="Close a visit as submitted (even if some inspectors did not finalise)",
    description="Closing also closes the visit's door: its team's evidence and findings "
    "are refused from then on (409 visit-closed). A visit whose members are all final is "
    "still open to them until a coordinator closes it or its report is sent.",
    responses=problem_responses(409),
)
async def close_visit(visit_id: FromPath[UUID], request: AuthedRequest, db: DB) -> Visit:
    return await operations.close_visit(
        db, request.user, visit_id, request_id=request_id_of(request)
    )


@get(
    "/visits/{visit_id:uuid}/bundle",
    summary="Everything a phone needs offline; strong ETag, 304 on If-None-Match",
    response_headers=[
        ResponseHeader(
            name="ETag", documentation_only=True, description="strong validator of the bundle"
        )
    ],
    responses={
        200: ResponseSpec(
            data_container=Bundle,
            description="The bundle",
            generate_examples=False,
            examples=[Example(summary="A bundle (checklist shortened)", value=BUNDLE_EXAMPLE)],
        ),
        304: ResponseSpec(
            data_container=None,
            description="Not modified: the copy is current",
            generate_examples=False,
        ),
        **problem_responses(403),
    },
    operation_class=IfNoneMatchOperation,
    # The caller and the visit's stamps in one query: a 304 costs one round trip.
    opt={LOAD_CALLER: q.load_caller_and_stamps},
)
async def get_bundle(visit_id: FromPath[UUID], request: AuthedRequest) -> ASGIResponse:
    user, state = request.user, request.app.state
    # Read directly (documented below as a parameter): this is the phones' hottest path.
    if_none_match = request.headers.get("if-none-match")
    stamps: q.BundleStamps | None = request.state.bundle_stamps
    if stamps is None or stamps.organisation_id != user.organisation_id:
        raise not_found("visit")
    if user.user_id not in stamps.members and not user.has("coordinator"):
        raise forbidden("Only this visit's team and coordinators can download it.")
    exp, seen = request.auth.exp.timestamp(), request.state.seen_writes
    if if_none_match and etag_matches(if_none_match, stamps.etag):
        state.bundle_memo.remember(request.scope, exp, stamps.etag, seen)
        return _not_modified(state, stamps.etag)
    cached = state.bundles.get(stamps.etag)
    if cached is None:
        etag, body = await _build_bundle(state, user, visit_id)
        response = ASGIResponse(body=body, media_type=MediaType.JSON, headers=bundle_headers(etag))
        state.bundles.put(etag, (response, body))
    else:
        etag, (response, _) = stamps.etag, cached
    if etag == stamps.etag:  # else it changed since the stamps were read: remember nothing
        state.bundle_memo.remember(request.scope, exp, etag, seen)
    return response


def _not_modified(state: State, etag: str) -> ASGIResponse:
    # The phones' hottest path. A low-level response holds no per-request state, so one
    # is built per ETag and reused.
    response = state.bundle_not_modified.get(etag)
    if response is None:
        response = ASGIResponse(status_code=HTTP_304_NOT_MODIFIED, headers=bundle_headers(etag))
        state.bundle_not_modified.put(etag, response)
    return response


async def _build_bundle(state: State, user: Principal, visit_id: UUID) -> tuple[str, bytes]:
    """The bundle and its ETag from one snapshot, so an ETag always names the same bytes."""
    async with (
        state.pool.acquire() as db,
        db.transaction(isolation="repeatable_read", readonly=True),
    ):
        row = await db.fetchrow(q.STAMPS_SQL, visit_id)
        visit = await q.visit_in_org(db, user, visit_id)
        service = await service_in_org(db, user, visit.service_id)
        version = await version_in_org(
            db, user.organisation_id, visit.checklist_id, visit.checklist_version
        )
    bundle = Bundle(
        # The phone's copies: the fields of the full objects it needs.
        visit=from_row(BundleVisit, msgspec.structs.asdict(visit)),
        service=from_row(BundleService, msgspec.structs.asdict(service)),
        checklist=version,
        team=[
            BundleMember(display_name=m.display_name, perspective=m.perspective, lead=m.lead)
            for m in visit.team
        ],
    )
    return q.stamps_from(visit_id, row).etag, _encoder.encode(bundle)


@get(
    "/me/visits",
    summary="My visits, upcoming and of the last 30 days, with each bundle's ETag",
)
async def my_visits(request: AuthedRequest, db: DB, paging: Paging) -> MyVisitPage:
    rows = await db.fetch(
        """select v.id, v.service_id, s.name service_name, v.starts_at, v.ends_at, v.status,
                  m.perspective, m.is_lead lead, v.updated_at vu, s.updated_at su,
                  (select max(u.updated_at) from visit_members m2 join users u
                     on u.id = m2.user_id where m2.visit_id = v.id) tu,
                  sub.id sub_id, sub.state sub_state, s.address,
                  (select json_agg(json_build_object(
                            'display_name', u.display_name, 'perspective', m3.perspective,
                            'lead', m3.is_lead)
                            order by m3.is_lead desc, u.display_name, m3.user_id)
                     from visit_members m3 join users u on u.id = m3.user_id
                    where m3.visit_id = v.id) team
             from visit_members m
             join visits v on v.id = m.visit_id
             join services s on s.id = v.service_id
             left join submissions sub on sub.visit_id = v.id and sub.user_id = m.user_id
            where m.user_id = $1 and v.ends_at > now() - interval '30 days'
              and ($2::timestamptz is null or (v.starts_at, v.id) > ($2, $3))
            order by v.starts_at, v.id limit $4""",
        request.user.user_id,
        *paging.after(dt.datetime, UUID),
        paging.fetch,
    )
    page, nxt = paging.page(rows, "starts_at", "id")
    items = [
        MyVisit(
            id=r["id"],
            service_id=r["service_id"],
            service_name=r["service_name"],
            starts_at=r["starts_at"],
            ends_at=r["ends_at"],
            status=r["status"],
            perspective=r["perspective"],
            lead=r["lead"],
            bundle_etag=q.bundle_etag(r["id"], r["vu"], r["su"], r["tu"]),
            submission=MySubmission(id=r["sub_id"], state=r["sub_state"]) if r["sub_id"] else None,
            address=r["address"] or "",
            team=msgspec.convert(r["team"] or [], list[BundleMember]),
        )
        for r in page
    ]
    return MyVisitPage(items=items, next_cursor=nxt)


router = Router(
    "/v1/visits",
    tags=["visits"],
    route_handlers=[create_visit, list_visits, get_visit, patch_visit, cancel_visit, close_visit],
)
# What the phone reads: its visits and each one's offline bundle.
phone_router = Router("/v1", tags=["phone"], route_handlers=[get_bundle, my_visits])
