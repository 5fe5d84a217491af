"""Bounds on what a request may carry, checked before anything reaches PostgreSQL or the maths.

One place for the whole class of "bad input that gives 500":

- JSON bodies (``BoundedRequest.json``): nesting deeper than ``MAX_DEPTH`` is a 400 before
  anything decodes it (deep JSON is a RecursionError in every recursive decoder and encoder
  after it), and a NUL character (``\\u0000``) in any string or key is a 400 naming where:
  PostgreSQL text and jsonb cannot hold it.
- URL-encoded form bodies (``BoundedRequest.body``), query strings and paths
  (``refuse_nul_in_urls``): no NUL either.
- Numbers: ``Int32`` (and ``Version`` for path parameters) for what PostgreSQL stores as
  ``int``; anything wider is a 422 instead of an overflow in the driver.
- Dates: ``Moment`` and ``Day`` take years ``MIN_YEAR``..``MAX_YEAR`` only, so period
  arithmetic (a previous period of the same length, working days) never overflows.

service/errors.py still maps a PostgreSQL data error that escapes anyway to a 422, as a
last line; each one it logs is an input this module should have bounded.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema
from litestar.params import Parameter
from litestar.plugins import OpenAPISchemaPlugin
from litestar.types import ASGIApp, Empty, Receive, Scope, Send
from msgspec import Meta

from service.errors import FieldError, Problem

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

MAX_DEPTH = 64  # a checklist, the deepest body, is 6 levels deep
MIN_YEAR, MAX_YEAR = 1900, 2200
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

Int32 = Annotated[int, Meta(ge=INT32_MIN, le=INT32_MAX)]
# A positive int path parameter that PostgreSQL stores as int (a checklist version...).
Version = Annotated[int, Parameter(ge=1, le=INT32_MAX)]

_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_TO_PARENS = bytes.maketrans(b"[]{}", b"()()")
_RUNS = re.compile(rb"\(+|\)+")
_PEEL = 8


def nul(where: list[str]) -> Problem:
    return Problem(
        400,
        "nul-character",
        "NUL character",
        "Text cannot contain the NUL character (U+0000): " + ", ".join(where) + ".",
        [FieldError(w, "contains the NUL character (U+0000)") for w in where],
    )


def too_deep() -> Problem:
    return Problem(
        400,
        "too-deep",
        "JSON nested too deeply",
        f"The JSON body is nested more than {MAX_DEPTH} levels deep.",
    )


def nesting_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in ``raw`` nest more than ``limit`` deep (pure, fast).

    Strings are cut out first (brackets inside them do not count): outside strings JSON has
    no backslash, so dropping the escapes ``\\\\`` and ``\\"`` leaves every quote a string
    boundary. Only brackets are kept; a few passes of removing ``()`` peel the shallow bulk
    (each pass removes one level under every path, so the depth left is the depth less the
    passes made), and one loop over the runs of what remains measures the rest. Unclosed
    brackets (malformed JSON) count as open: a decoder would recurse into them first.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[0::2]).translate(_TO_PARENS, _NOT_BRACKETS)
    if b"(" * (limit + 1) in brackets:
        return True
    peeled = 0
    while peeled < _PEEL and b"()" in brackets:
        brackets = brackets.replace(b"()", b"")
        peeled += 1
    depth = 0
    for run in _RUNS.findall(brackets):
        depth += len(run) if run[0] == 40 else -len(run)  # 40 is "("
        if depth > limit - peeled:
            return True
    return False


def _nul_paths(value: Any, path: str = "$") -> list[str]:
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nul_paths(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            here = f"{path}.{k}".replace("\x00", "\\u0000")
            out += [here] if "\x00" in k else _nul_paths(v, here)
        return out
    return []


def check_json(raw: bytes) -> None:
    """Refuse a JSON body nested too deeply or carrying a NUL character (Problem 400)."""
    if nesting_exceeds(raw):
        raise too_deep()
    if b"\\u0000" in raw and _NUL_ESCAPE.search(raw):
        try:
            where = _nul_paths(msgspec.json.decode(raw))
        except msgspec.DecodeError:
            return  # malformed anyway: the decoder says so next
        raise nul(where or ["$"])


class BoundedRequest(Request):  # type: ignore[type-arg]
    """The app's request class: bodies are checked before they are decoded."""

    async def json(self) -> Any:
        if self._connection_state.json is Empty:  # not decoded yet in this request
            check_json(await self.body())
        return await super().json()

    async def body(self) -> bytes:
        raw = await super().body()
        # Forms are parsed straight from these bytes (Litestar's url-encoded extractor).
        if b"%00" in raw and self.headers.get("content-type", "").startswith(
            "application/x-www-form"
        ):
            raise nul(["form body"])
        return raw


def refuse_nul_in_urls(app: ASGIApp) -> ASGIApp:
    """Middleware: a NUL character in the path or the query string is a 400."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            if b"%00" in query or b"\x00" in query:
                names = [
                    name.decode("latin-1")
                    for name, _, value in (p.partition(b"=") for p in query.split(b"&"))
                    if b"%00" in name + value or b"\x00" in name + value
                ]
                raise nul([f"query parameter {n!r}" for n in names])
            if "\x00" in scope["path"]:
                raise nul(["the path"])
        await app(scope, receive, send)

    return middleware


# --------------------------------------------------------------------------- dates


class Moment(dt.datetime):
    """An RFC 3339 time in years MIN_YEAR..MAX_YEAR (see ``TYPE_DECODERS``)."""


class Day(dt.date):
    """A date (2026-01-31) in years MIN_YEAR..MAX_YEAR (see ``TYPE_DECODERS``)."""


def _in_range(value: dt.date) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")


def bounded_moment(value: dt.datetime) -> Moment:
    """``value`` as a Moment; ValueError outside the years this service handles."""
    _in_range(value)
    return Moment(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.tzinfo,
        fold=value.fold,
    )


def _decode_moment(_: type, value: Any) -> Moment:
    # msgspec's RFC 3339 parser, the one every plain datetime field uses.
    return bounded_moment(msgspec.convert(value, dt.datetime))


def _decode_day(_: type, value: Any) -> Day:
    d = msgspec.convert(value, dt.date)
    _in_range(d)
    return Day(d.year, d.month, d.day)


# For Litestar's ``type_decoders``: how query, path and body values become Moments and Days.
TYPE_DECODERS = [
    (lambda t: t is Moment, _decode_moment),
    (lambda t: t is Day, _decode_day),
]


class BoundsSchemaPlugin(OpenAPISchemaPlugin):
    """Moments and Days are documented as the date-time and date strings they are."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value in (Moment, Day)

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        moment = field_definition.annotation is Moment
        return Schema(
            type=OpenAPIType.STRING,
            format=OpenAPIFormat.DATE_TIME if moment else OpenAPIFormat.DATE,
            description=f"{'RFC 3339 time' if moment else 'Date'} in the years "
            f"{MIN_YEAR} to {MAX_YEAR}",
        )


__all__ = [
    "MAX_DEPTH",
    "BoundedRequest",
    "BoundsSchemaPlugin",
    "Day",
    "Int32",
    "Moment",
    "TYPE_DECODERS",
    "Version",
    "bounded_moment",
    "check_json",
    "nesting_exceeds",
    "refuse_nul_in_urls",
]
