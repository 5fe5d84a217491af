"""RFC 9457 problem+json for every error, with a stable ``type`` per kind of problem."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import botocore.exceptions as boto
import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers import HTTPRouteHandler
from litestar.plugins import ReceiveRoutePlugin
from litestar.response import Template
from litestar.routes import BaseRoute

from media.detect import ImageRejected
from service import pages
from service.logs import mask_path

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://coassess.dev/problems/"
log = logging.getLogger("service.errors")


class FieldError(msgspec.Struct):
    field: str
    reason: str


class ProblemBody(msgspec.Struct, omit_defaults=True):
    """What every error response carries (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []
    request_id: str | None = None


class DomainError(Exception):
    """The one base of every error this API answers on purpose; ``handle_exception`` maps
    it (and only it) to problem+json. ``kind`` becomes the stable ``type`` URI.

    Raise a subclass (``NotFound``, ``Forbidden``, ``Conflict``, ``Invalid``, ``Refused``,
    ``Unavailable``) or this base for a one-off status.
    """

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.errors = errors or []
        self.headers = headers or {}


# The earlier name, kept so every ``raise Problem(...)`` keeps working.
Problem = DomainError


class NotFound(DomainError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not-found", "Not found", f"No such {what}.")


class Forbidden(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__(403, "forbidden", "Forbidden", detail)


class Conflict(DomainError):
    def __init__(self, detail: str, kind: str = "conflict") -> None:
        super().__init__(409, kind, "Conflict", detail)


class Invalid(DomainError):
    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(422, "validation", "Invalid request", detail, errors)


class Refused(DomainError):
    """A domain rule said no (403, 409 or 422): ``kind`` names the rule. Pure rule modules
    raise it directly, so no caller translates their errors by hand."""

    def __init__(self, status: int, kind: str, detail: str, title: str = "Not possible") -> None:
        super().__init__(status, kind, title, detail)


def not_found(what: str) -> NotFound:
    return NotFound(what)


def forbidden(detail: str) -> Forbidden:
    return Forbidden(detail)


def conflict(detail: str, kind: str = "conflict") -> Conflict:
    return Conflict(detail, kind)


def unprocessable(detail: str, errors: list[FieldError] | None = None) -> Invalid:
    return Invalid(detail, errors)


class Unavailable(DomainError):
    """Something we depend on is down: 503 with Retry-After, which a phone reads as "try
    later", never as a bug (500)."""

    def __init__(self, what: str, retry_after_s: int) -> None:
        super().__init__(
            503,
            "service-unavailable",
            "Service unavailable",
            f"The service cannot reach {what} just now; try again in a little while.",
            headers={"Retry-After": str(retry_after_s)},
        )
        self.what = what


def database_unavailable() -> Unavailable:
    return Unavailable("the database", 5)  # a restart or failover takes seconds


def storage_unavailable() -> Unavailable:
    return Unavailable("photo storage", 30)


def database_down(exc: BaseException) -> bool:
    """Whether ``exc`` means PostgreSQL is unreachable (not a bug in a query)."""
    pg = asyncpg.exceptions
    if isinstance(exc, Unavailable):
        return exc.what == "the database"
    if isinstance(
        exc,
        (
            pg.PostgresConnectionError,  # ConnectionDoesNotExistError, failures to connect
            pg.OperatorInterventionError,  # AdminShutdown, CrashShutdown, CannotConnectNow
            pg.TooManyConnectionsError,
        ),
    ):
        return True
    # asyncpg's own state errors: seen on connections the server dropped mid-operation
    # ("another operation (2) is in progress" on the next query).
    if isinstance(exc, asyncpg.InternalClientError):
        return True
    # Other InterfaceErrors are misuse of a connection (bugs); "connection is closed" is not.
    return isinstance(exc, pg.InterfaceError) and "closed" in str(exc)


def outage(exc: BaseException) -> Unavailable | None:
    """The 503 for an exception that means a dependency is down, else None (a bug: 500)."""
    if database_down(exc):
        return database_unavailable()
    # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError...
    if isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)):
        return storage_unavailable()
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if status >= 500 or error.get("Code") in ("ServiceUnavailable", "SlowDown"):
            return storage_unavailable()
    return None


def request_id_of(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def problem_response(request: Request, p: DomainError) -> Response[ProblemBody]:
    body = ProblemBody(
        type=TYPE_BASE + p.kind,
        title=p.title,
        status=p.status,
        detail=p.detail,
        errors=p.errors,
        request_id=request_id_of(request),
    )
    return Response(body, status_code=p.status, media_type=PROBLEM_JSON, headers=p.headers)


_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Not signed in"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
}


def validation_problem(exc: ValidationException) -> DomainError:
    """Litestar reports msgspec decode errors as a list of {message, key, source}."""
    errors: list[FieldError] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            message = str(item.get("message", "invalid"))
            errors.append(FieldError(field=_field_path(item, message), reason=message))
    if not errors and "malformed" in str(exc.detail).lower():
        return DomainError(400, "malformed-json", "Malformed JSON", "The body is not valid JSON.")
    if any("malformed" in e.reason.lower() for e in errors):
        return DomainError(400, "malformed-json", "Malformed JSON", "The body is not valid JSON.")
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors) or str(exc.detail)
    return DomainError(422, "validation", "Invalid request", detail, errors)


def _field_path(item: dict[str, Any], message: str) -> str:
    """A JSON path ($.roles[0]) for body fields, the parameter name otherwise."""
    key = str(item.get("key", ""))
    if item.get("source") == "body" or key == "data":
        path = "$" if key in ("", "data") else "$." + key
        # "Object missing required field `password`", "... contains unknown field `x`"
        if ("required field `" in message or "unknown field `" in message) and "`" in message:
            path += "." + message.split("`")[1]
        return path
    return key or "request"


def _bad_value(exc: Exception) -> bool:
    """A value PostgreSQL (or the driver) cannot take: class 22 errors, out-of-range params.

    service/bounds.py refuses these at the edge; this is the last line for what it missed.
    """
    import asyncpg

    return isinstance(exc, (asyncpg.DataError, asyncpg.exceptions._base.DataError))


# A photo the image library refused (media.detect.ImageRejected): its kind and detail,
# answered here once, wherever it was raised.
_PHOTO_TITLES = {
    "unsupported-type": "Not a photo we accept",
    "corrupt-image": "Damaged photo",
    "too-many-pixels": "Photo has too many pixels",
    "too-large": "Photo too large",
}


def photo_problem(exc: ImageRejected) -> DomainError:
    return DomainError(exc.status, f"photo-{exc.kind}", _PHOTO_TITLES[exc.kind], exc.detail)


_INVALID_VALUE = DomainError(
    422,
    "invalid-value",
    "Invalid value",
    "A value in the request is out of range or not valid text, so it cannot be "
    "stored or searched for.",
)
_INTERNAL = DomainError(
    500,
    "internal",
    "Internal error",
    "Something went wrong on our side; quote the request id when reporting it.",
)


def _log_context(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """What a logged failure says about its request (never a query string or identifier)."""
    return {"request_id": request_id_of(request), "path": mask_path(request.url.path)}


def handle_exception(request: Request, exc: Exception) -> Response[Any]:
    """problem+json for the API; on a page route the same status and words as a page."""
    if pages.is_page(request):
        if isinstance(exc, NotAuthorizedException):
            return pages.sign_in_redirect(request)
        p = problem_of(request, exc)
        if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
            p = DomainError(
                403,
                "csrf",
                "This form has expired",
                "The form was open too long or came from another website. Go back, reload "
                "the page and try again.",
            )
        return pages.error_page(request, p.status, p.title, p.detail, p.headers)
    return problem_response(request, problem_of(request, exc))


def problem_of(request: Request, exc: Exception) -> DomainError:
    """The problem an exception answers: its own for domain errors, a 4xx for bad input,
    503 for an outage, and 500 (logged) for a bug."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, ImageRejected):
        return photo_problem(exc)
    if isinstance(exc, ValidationException):
        return validation_problem(exc)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        kind, title = _TITLES.get(status, ("http-error", "Error"))
        headers = dict(exc.headers or {})
        if isinstance(exc, NotAuthorizedException):
            headers.setdefault("WWW-Authenticate", "Bearer")
            detail = (
                exc.detail
                if exc.detail and exc.detail != "Unauthorized"
                else ("Sign in first: send a valid bearer access token.")
            )
        elif isinstance(exc, PermissionDeniedException):
            detail = exc.detail
        elif status == 400 and str(exc.detail).startswith("JSON is malformed"):
            kind, title, detail = "malformed-json", "Malformed JSON", str(exc.detail)
        elif status == 413:
            detail = "The request body is larger than this endpoint accepts."
        else:
            detail = exc.detail or title
        return DomainError(status, kind, title, detail, headers=headers)
    down = outage(exc)
    if down is not None:
        log.warning(
            "%s unavailable: %r",
            down.what,
            exc,
            extra=_log_context(request),
        )
        return down
    if _bad_value(exc):
        # Still the caller's input, so a 4xx; logged because service/bounds.py should have
        # bounded it.
        log.warning(
            "unbounded input reached the database: %s",
            exc,
            extra=_log_context(request),
        )
        return _INVALID_VALUE
    log.exception(
        "unhandled error",
        extra=_log_context(request),
    )
    return _INTERNAL


def problem_responses(*statuses: int) -> dict[int, Any]:
    """OpenAPI descriptions of the problem+json responses a route can give. A route names
    only those its own rules add; ``ProblemsFromShape`` adds those its shape gives."""
    from litestar.openapi.datastructures import ResponseSpec

    return {
        s: ResponseSpec(
            data_container=ProblemBody,
            media_type=PROBLEM_JSON,
            description=d,
            generate_examples=False,
        )
        for s in statuses
        for d in [
            _TITLES.get(
                s,
                (
                    "",
                    {
                        422: "Invalid request",
                        412: "Precondition failed",
                        410: "Gone",
                        503: "Unavailable",
                    }.get(s, "Error"),
                ),
            )[1]
        ]
    }


class ProblemsFromShape(ReceiveRoutePlugin):
    """Documents the problem responses an API route gives because of its shape, so that a
    route's ``responses=problem_responses(...)`` names only those its own rules add (409,
    410, 412 ...): signed in (not ``PUBLIC``) 401, behind a guard 403, an id in the path
    404, a body 422, a page of a list (``Paging``) 400, a cursor this API did not issue.
    Pages (``opt["page"]``, or a ``Template`` answered) answer with pages, not problems:
    they are left as they are."""

    def receive_route(self, route: BaseRoute) -> None:
        from service.schema import PageQuery  # service.schema imports this module

        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or _answers_pages(handler):
                continue
            params = handler.parsed_fn_signature.parameters
            shape = {
                400: any(p.annotation is PageQuery for p in params.values()),
                401: not handler.opt.get("public"),
                403: bool(handler.resolve_guards()),
                404: bool(route.path_parameters),
                422: "data" in params,
            }
            declared = handler.responses or {}
            problems = {s for s, spec in declared.items() if spec.data_container is ProblemBody}
            problems |= {s for s, applies in shape.items() if applies}
            others = {s: spec for s, spec in declared.items() if s not in problems}
            handler.responses = {**others, **problem_responses(*sorted(problems))}


def _answers_pages(handler: HTTPRouteHandler) -> bool:
    return bool(handler.opt.get("page")) or (
        handler.parsed_fn_signature.return_type.annotation is Template
    )
