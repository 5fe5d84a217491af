"""The one base for every request and response body, and reusable constraints.

Every body is a ``Body``: unknown fields are a 422 (a typo in a phone app must not be
silently dropped). Cursor encoders/decoders are built once here.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import msgspec
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from msgspec import Meta

from service.errors import Problem


class Body(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every JSON body this API reads or writes."""


class Form(Body, kw_only=True):
    """Base of every form a page posts: a Body that also carries the form's CSRF token
    (checked by Litestar's CSRF middleware before the handler; kept here so the form's
    other fields are still checked strictly)."""

    csrf_token: str = msgspec.field(default="", name="_csrf_token")


# Reusable constraints.
NonEmpty = Annotated[str, Meta(min_length=1, max_length=200)]
LongText = Annotated[str, Meta(max_length=10_000)]
Email = Annotated[str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
DeviceName = Annotated[str, Meta(min_length=1, max_length=100)]
# Page size of a list, as a query parameter.
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Page size")]
# A list's free-text search, as the query parameter ``q``.
Search = Annotated[str | None, QueryParameter(name="q", max_length=100)]

T = TypeVar("T")


class Page(Body, Generic[T]):
    """A page of a cursor-paginated list."""

    items: list[T]
    next_cursor: str | None = None


_cursor_enc = msgspec.json.Encoder()
_cursor_dec = msgspec.json.Decoder(list)


def encode_cursor(*values: Any) -> str:
    """Opaque cursor from the sort key of the last item of a page."""
    return base64.urlsafe_b64encode(_cursor_enc.encode(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """Inverse of encode_cursor; a tampered cursor is a clear 400, never a 500."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = _cursor_dec.decode(raw)
        if len(values) != len(types):
            raise ValueError
        return tuple(_convert(v, t) for v, t in zip(values, types, strict=True))
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise Problem(
            400, "bad-cursor", "Invalid cursor", "The cursor is not one this API issued."
        ) from None


def cursor_after(cursor: str | None, *types: type) -> tuple[Any, ...]:
    """The sort key a list's ``cursor`` names, or all None for the first page.

    Queries compare with ``($n::type is null or (key...) > ($n, ...))``.
    """
    return decode_cursor(cursor, *types) if cursor else (None,) * len(types)


R = TypeVar("R", bound=Mapping[str, Any])


def page_of(rows: Sequence[R], limit: int, *key: str) -> tuple[Sequence[R], str | None]:
    """Keyset pagination's tail: the query fetched ``limit + 1`` rows; the page is the first
    ``limit``, and the next cursor is the sort key (columns ``key``) of the page's last row
    when there is more, else None."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(*(_cursor_value(last[k]) for k in key))


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A list route's ``cursor`` and ``limit`` query parameters as one argument: declare
    ``paging: Paging`` last (where the two are documented; after ``*`` when the route's
    filters have defaults) and the app's ``paging`` dependency (``paged()``) fills it in."""

    cursor: str | None
    limit: int

    def after(self, *types: type) -> tuple[Any, ...]:
        """The sort key the cursor names (``cursor_after``)."""
        return cursor_after(self.cursor, *types)

    @property
    def fetch(self) -> int:
        """How many rows the keyset query asks for: one more than a page, so that it is
        known whether there is a next one."""
        return self.limit + 1

    def page(self, rows: Sequence[R], *key: str) -> tuple[Sequence[R], str | None]:
        """The page of the ``fetch`` rows and the next cursor (``page_of``)."""
        return page_of(rows, self.limit, *key)


def paged(default_limit: int = 50) -> Provide:
    """The ``paging`` dependency: a list's two query parameters, documented as they are
    declared here (``default_limit`` is the page size when the caller names none)."""

    def paging(cursor: FromQuery[str | None] = None, limit: Limit = default_limit) -> PageQuery:
        return PageQuery(cursor, limit)

    return Provide(paging, sync_to_thread=False)


# A list route's argument: its page query (see PageQuery).
Paging = NamedDependency[PageQuery]


def _cursor_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _convert(value: Any, typ: type) -> Any:
    if typ is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if typ is UUID:
        return UUID(value)
    return msgspec.convert(value, typ)
