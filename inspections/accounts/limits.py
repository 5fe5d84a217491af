"""Rate limits kept in PostgreSQL, so every process on every host shares one count.

Windows in ``rate_limits`` (migrations 0009, 0014): one row per bucket, counted by one
upsert, so concurrent requests in any number of processes never lose a hit. A window opens
at a bucket's first hit, so N hits are allowed in any window (never 2N across a clock
boundary). Buckets are hashed: the table holds no email or client addresses. Rows older
than a day are pruned as we go (every window here is at most a day long).

Used by sign-in (``POST /v1/auth/token`` and the browser form) and by password reset
requests.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Sequence

import asyncpg
import msgspec
from litestar import Request

from inspections.wording import plural
from service.errors import Problem
from service.settings import Settings
from service.state import app_state


class Limit(msgspec.Struct, frozen=True):
    bucket: str  # already hashed (see ``bucket``)
    limit: int  # hits allowed in one window
    window_s: int


class Exceeded(Exception):
    """A limit was passed; ``retry_after`` is when its window ends, in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


def bucket(kind: str, *values: str) -> str:
    """``kind`` in clear (to read the table), the values hashed (case-insensitive)."""
    digest = hashlib.sha256("\0".join(v.strip().lower() for v in values).encode())
    return f"{kind}:{digest.hexdigest()}"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def trusted_networks(spec: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES ("10.0.0.5, 192.168.0.0/24") as networks; a bad entry fails loudly."""
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()
    )


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request: Request) -> str:
    """Who is asking, for rate limits: the TCP peer, or behind trusted proxies the right-most
    X-Forwarded-For hop that is not one of them.

    Hops left of that one were written by the client itself (anyone can send the header), so
    they are never believed; without TRUSTED_PROXIES the header is ignored altogether.
    """
    peer = request.client.host if request.client else "unknown"
    networks = trusted_networks(app_state(request.app).settings.trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [
        hop.strip()
        for value in request.headers.getall("x-forwarded-for", [])
        for hop in value.split(",")
        if hop.strip()
    ]
    client = peer
    for hop in reversed(hops):
        client = hop[:64]  # only ever a (hashed) bucket key; a bound keeps it one
        if not _trusted(hop, networks):
            break
    return client


# One row per bucket: a window opens at the bucket's first hit and lasts window_s; a hit
# after it ends opens the next. In SET, every r.* is the row before this hit.
_HIT = """
with pruned as (
    delete from rate_limits where window_start < now() - interval '1 day'
)
insert into rate_limits as r (bucket, window_start, hits, window_s)
select b, now(), 1, w from unnest($1::text[], $2::int[]) as t(b, w)
    on conflict (bucket) do update set
       hits = case when r.window_start + make_interval(secs => r.window_s) > now()
                   then r.hits + 1 else 1 end,
       window_start = case when r.window_start + make_interval(secs => r.window_s) > now()
                           then r.window_start else now() end,
       window_s = excluded.window_s
returning r.bucket, r.hits,
          ceil(extract(epoch from r.window_start + make_interval(secs => r.window_s) - now()))::int
              as retry_after
"""


async def hit(db: asyncpg.Connection, limits: Sequence[Limit]) -> None:
    """Count one attempt against every limit (one statement); raise Exceeded past any.

    Outside a transaction the count stands whatever the request's outcome (a wrong
    password is exactly the attempt to count); inside one it holds the buckets' rows until
    the commit, so concurrent attempts on the same bucket are counted one after another.
    """
    # Sorted, so concurrent statements lock the rows in the same order (no deadlock).
    ordered = sorted(limits, key=lambda li: li.bucket)
    rows = await db.fetch(_HIT, [li.bucket for li in ordered], [li.window_s for li in ordered])
    allowed = {li.bucket: li.limit for li in ordered}
    waits = [r["retry_after"] for r in rows if r["hits"] > allowed[r["bucket"]]]
    if waits:
        raise Exceeded(max(1, *waits))


def wait_text(seconds: int) -> str:
    """How long to wait, as the Retry-After header says it, in words: "8 seconds", "2
    minutes" (rounded up: a person told a minute who comes back in 50 s is refused again)."""
    if seconds < 60:
        return plural(max(1, seconds), "second")
    return plural(-(-seconds // 60), "minute")


def too_many(exc: Exceeded, what: str) -> Problem:
    """429 problem+json with Retry-After; ``what`` completes "Too many ..."."""
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        f"Too many {what}; please try again in {wait_text(exc.retry_after)}.",
        headers={"Retry-After": str(exc.retry_after)},
    )


def signin_limits(settings: Settings, email: str, address: str) -> list[Limit]:
    """Per account and client address (people behind one care home's wifi each have their
    own), and per account from anywhere (many addresses guessing one account's password)."""
    return [
        Limit(
            bucket("signin-account-address", email, address), settings.signin_rate_per_minute, 60
        ),
        Limit(bucket("signin-account", email), settings.signin_per_account_per_hour, 3600),
    ]


async def check_signin(
    db: asyncpg.Connection, settings: Settings, email: str, address: str
) -> None:
    """Count a sign-in attempt (run it outside the request's transaction: a failed attempt
    rolls that back); raises Exceeded."""
    await hit(db, signin_limits(settings, email, address))
