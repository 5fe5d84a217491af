"""The phone's idempotent PUT of an object whose id it made: replay, create, overwrite or refuse.

Every write the phone makes offline carries its own id, so a retry never makes a second
object (README, "The phone contract"): the same body again is a replay (200, nothing
changes); a different body overwrites only with ``If-Match`` naming the stored ETag (428
without it, 412 when stale). Submissions, findings and any client-made-id PUT to come
decide with ``decide``, a pure function; the slice supplies what its own refusals say
(``Words``) and its own domain checks, which run only for ``create`` and ``overwrite``.

This lives beside the slices rather than in service/ because it is the phone contract, not
the app shell; it knows no domain rule (what "locked" means is the slice's to say).

Order, as RFC 9110 section 13.2.1 asks: what does not depend on the body (whose id it
is, whether it is locked) before the precondition, the precondition before the body is
checked. Racing twins of one PUT are serialised by ``serialise`` before the stored row is
read, so the second finds the first's row and is a replay (commit 0e6e612).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, TypeVar
from uuid import UUID

import asyncpg
import msgspec
from litestar import Response

from service.errors import DomainError, conflict

_enc = msgspec.json.Encoder()

Decision = Literal[
    "create",  # no such id yet: the slice checks the body and inserts (201)
    "replay",  # the same body again: answer what is stored (200), change nothing
    "overwrite",  # a different body with a current If-Match: check and update (200)
    "taken",  # the id is another parent's, or another caller's (409)
    "locked",  # stored and no longer changeable (409)
    "precondition-required",  # a different body without If-Match (428)
    "stale",  # If-Match names another version (412)
]
REFUSALS: frozenset[Decision] = frozenset({"taken", "locked", "precondition-required", "stale"})


class Stored(msgspec.Struct, frozen=True):
    """What is already stored under the id."""

    body_hash: bytes
    mine: bool  # under the same parent (visit) and the caller may write it
    locked: bool  # the slice's rule: a final submission, a finding whose report has gone


class Put(msgspec.Struct, frozen=True):
    """One PUT as the protocol sees it."""

    body_hash: bytes
    if_match: str | None
    stored: Stored | None


def body_hash(body: Any) -> bytes:
    """The identity of a body: the same Struct encodes to the same bytes."""
    return hashlib.sha256(_enc.encode(body)).digest()


def etag_of(hash_: bytes) -> str:
    """The strong ETag of a stored body."""
    return '"' + hash_.hex()[:32] + '"'


def matches(if_match: str, etag: str) -> bool:
    """If-Match as RFC 9110 reads it: a list of ETags, or ``*`` for "whatever is stored"."""
    if if_match.strip() == "*":
        return True
    return etag in [t.strip() for t in if_match.split(",")]


def decide(put: Put) -> Decision:
    """What to do with this PUT; refusals (REFUSALS) become problems through ``refusal``."""
    stored = put.stored
    if stored is None:
        return "create"
    if not stored.mine:
        return "taken"
    if stored.body_hash == put.body_hash:
        return "replay"
    if stored.locked:
        return "locked"
    if put.if_match is None:
        return "precondition-required"
    if not matches(put.if_match, etag_of(stored.body_hash)):
        return "stale"
    return "overwrite"


class Words(msgspec.Struct, frozen=True, kw_only=True):
    """What a slice's refusals say; their problem ``type``s are part of the API contract.
    What is left out is said in the one way findings have always said it."""

    noun: str  # "submission": "submission-id-taken", "This submission id is already in use."
    locked_kind: str
    locked_detail: str
    required_detail: str | None = None  # 428
    stale_kind: str = "stale"  # 412
    stale_title: str = "Changed meanwhile"
    stale_detail: str | None = None


def refusal(decision: Decision, words: Words) -> DomainError:
    """The problem+json for a refusing decision."""
    noun = words.noun
    match decision:
        case "taken":
            return conflict(f"This {noun} id is already in use.", f"{noun}-id-taken")
        case "locked":
            return conflict(words.locked_detail, words.locked_kind)
        case "precondition-required":
            detail = words.required_detail or f"Send If-Match with the {noun}'s ETag to change it."
            return DomainError(428, "precondition-required", "If-Match required", detail)
        case "stale":
            detail = (
                words.stale_detail
                or f"The {noun} changed since you read it; fetch it and try again."
            )
            return DomainError(412, words.stale_kind, words.stale_title, detail)
    raise ValueError(f"{decision!r} is not a refusal")


async def serialise(conn: asyncpg.Connection, kind: str, object_id: UUID) -> None:
    """Twins of one PUT (a retry overlapping its slow first attempt, a second device) queue
    here until the first commits, then read its row and are answered as a replay would be.
    Call inside the transaction, before reading the stored row."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtext($1), hashtext($2::uuid::text))", kind, object_id
    )


T = TypeVar("T")


def put_response(body: T, created: bool, etag: str | None = None) -> Response[T]:
    """A client-made-id PUT's answer: 201 when it made the object, 200 for a replay or an
    overwrite, with the ETag to send as If-Match next time where the object has one."""
    return Response(
        body, status_code=201 if created else 200, headers={"ETag": etag} if etag else None
    )
