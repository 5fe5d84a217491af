"""Invites: made and emailed by a coordinator, sent again, and accepted (API or page).

The code is a bearer secret: only its SHA-256 is stored, it is shown once to the
coordinator who made it and emailed to the invitee; sending again makes a new code (the
old link stops working), since the old one cannot be read back. Accepting is one function
used by ``POST /v1/invites/{code}/accept`` and by the page at ``/invites/{code}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import asyncpg
import msgspec
from argon2 import PasswordHasher

from inspections.accounts import queries as q
from inspections.accounts.mail import INVITE_SENT, enqueue_email, link_base, one_line, when
from inspections.accounts.password_rule import require_good_password
from inspections.audit.log import audit
from service.auth import Principal
from service.errors import Problem, conflict, not_found
from service.settings import Settings
from service.state import app_state

ROLE_WORDS = {
    "citizen_inspector": "citizen inspector",
    "professional_inspector": "professional inspector",
    "coordinator": "coordinator",
    "scrutiny_member": "scrutiny committee member",
    "service_manager": "service manager",
    "safeguarding_lead": "safeguarding lead",
}
INSPECTORS = frozenset({"citizen_inspector", "professional_inspector"})
# What each role does, for the email and the page: a volunteer may not know the words.
ROLE_DOING = {
    "citizen_inspector": "visit services with the team and give the view of people who use them",
    "professional_inspector": "visit services with the team and give the professional view",
    "coordinator": "organise visits and invite people",
    "scrutiny_member": "read scorecards and reports for your committee",
    "service_manager": "read what inspectors found about your service and answer it",
    "safeguarding_lead": "hear about safeguarding concerns and handle them",
}

InviteStatus = Literal["open", "accepted", "expired"]
# Said to whoever accepts: never which organisation the existing account is with.
EMAIL_TAKEN = (
    "An account already uses this email address, and one address can have only one account. "
    "Sign in with it, or ask the person who invited you to invite a different address."
)


class InviteFacts(msgspec.Struct, frozen=True):
    """What the email and the page tell the invitee."""

    id: UUID
    organisation_id: UUID
    organisation: str
    inviter: str
    email: str
    roles: list[str]
    expires_at: dt.datetime
    status: InviteStatus

    @property
    def roles_in_words(self) -> str:
        return roles_in_words(self.roles)

    @property
    def inspector(self) -> bool:
        return bool(INSPECTORS.intersection(self.roles))

    @property
    def doing(self) -> list[str]:
        return [ROLE_DOING[r] for r in self.roles if r in ROLE_DOING]


def roles_in_words(roles: list[str]) -> str:
    """["citizen_inspector", "coordinator"] -> "citizen inspector and coordinator"."""
    words = [ROLE_WORDS.get(r, r.replace("_", " ")) for r in roles]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def with_article(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def invite_link(settings: Settings, code: str) -> str:
    return f"{link_base(settings)}/invites/{code}"


_FACTS_SQL = """
    select i.id, i.organisation_id, o.name as organisation,
           coalesce(nullif(u.display_name, ''), 'Your coordinator') as inviter,
           i.email, i.roles, i.expires_at,
           case when i.accepted_at is not null then 'accepted'
                when i.expires_at <= now() then 'expired' else 'open' end as status
      from invites i
      join organisations o on o.id = i.organisation_id
      left join users u on u.id = i.created_by
"""


def _facts(row: asyncpg.Record) -> InviteFacts:
    return InviteFacts(**dict(row))


async def facts_by_code(db: asyncpg.Connection, code: str) -> InviteFacts | None:
    row = await db.fetchrow(_FACTS_SQL + " where i.code_hash = $1", q.digest(code))
    return _facts(row) if row else None


def invite_email(settings: Settings, facts: InviteFacts, code: str) -> tuple[str, str]:
    """Subject and text: who invited them, where, as what, what to do, until when."""
    as_what = with_article(facts.roles_in_words)
    doing = "; ".join(facts.doing)
    app = (
        "\nAfter that, sign in on the Co-assessment app on your phone with this email "
        "address and your password.\n"
        if facts.inspector
        else "\nAfter that, sign in on the website with this email address and your password.\n"
    )
    subject = f"{one_line(facts.inviter)} invited you to join {one_line(facts.organisation)}"
    text = (
        "Hello,\n\n"
        f"{facts.inviter} has invited you to join {facts.organisation} on Co-assessment, "
        f"as {as_what}.\n"
        + (f"As {as_what} you will {doing}.\n" if doing else "")
        + "\nTo accept, open this link, then choose the name others will see and a password:\n\n"
        f"{invite_link(settings, code)}\n"
        f"{app}\n"
        f"The link works once, until {when(settings, facts.expires_at)}. If it has expired, "
        f"ask {facts.inviter} to send you a new invite.\n\n"
        "If you were not expecting this email, you can ignore it: no account is made unless "
        "you open the link and accept.\n"
    )
    return subject, text


async def _send(db: asyncpg.Connection, settings: Settings, invite_id: UUID, code: str) -> int:
    """Record a send and queue the email; the send number keeps each email its own."""
    sent = await db.fetchval(
        """update invites set sent_count = sent_count + 1, last_sent_at = now()
            where id = $1 returning sent_count""",
        invite_id,
    )
    assert sent is not None  # the invite was just made or found
    row = await db.fetchrow(_FACTS_SQL + " where i.id = $1", invite_id)
    assert row is not None  # the invite was just made or found
    facts = _facts(row)
    subject, text = invite_email(settings, facts, code)
    await enqueue_email(
        db,
        facts.organisation_id,
        INVITE_SENT,
        f"{INVITE_SENT}:{invite_id}:{sent}",
        facts.email,
        subject,
        text,
        {"invite_id": str(invite_id), "send": sent},
    )
    return sent


async def create(
    db: asyncpg.Connection,
    settings: Settings,
    request: Any,
    caller: Principal,
    email: str,
    roles: Sequence[str],
) -> tuple[asyncpg.Record, str]:
    """A new invite, emailed. Returns its row and the code (shown once to its maker).

    Someone of the caller's own organisation with this email is explained (409). Someone of
    another organisation is not: that would tell this coordinator who uses the service
    elsewhere. Their invite is made and emailed like any other; accepting it is refused
    (one email, one account), which only the code's holder learns: the address's owner, who
    can find out anyway (password reset). See README, "Invites and other organisations".
    """
    if await db.fetchval(
        "select 1 from users where lower(email) = lower($1) and organisation_id = $2",
        email,
        caller.organisation_id,
    ):
        raise conflict(
            "Someone in your organisation already has an account with this email address.",
            "email-taken",
        )
    code, code_hash = q.new_secret()
    row = await db.fetchrow(
        """insert into invites (organisation_id, email, roles, code_hash, created_by, expires_at)
           values ($1, $2, $3, $4, $5, now() + make_interval(days => $6))
           returning id, email, roles, expires_at""",
        caller.organisation_id,
        email,
        list(dict.fromkeys(roles)),
        code_hash,
        caller.user_id,
        settings.invite_ttl_days,
    )
    assert row is not None  # insert ... returning: always a row
    await _send(db, settings, row["id"], code)
    await audit(
        db,
        request,
        "invite.create",
        "invite",
        row["id"],
        # By id: the invite row holds the address (erasure anonymises it there).
        {"roles": row["roles"], "emailed": True},
    )
    return row, code


async def resend(
    db: asyncpg.Connection, settings: Settings, request: Any, caller: Principal, invite_id: UUID
) -> None:
    """Email an open invite again with a new code (the earlier link stops working)."""
    row = await db.fetchrow(
        """select accepted_at, expires_at <= now() as expired, expires_at
             from invites where id = $1 and organisation_id = $2 for update""",
        invite_id,
        caller.organisation_id,
    )
    if row is None:
        raise not_found("invite")
    if row["accepted_at"] is not None:
        raise conflict(
            "This invite was accepted: the person has an account. If they forgot their "
            "password, they can reset it from the sign-in page.",
            "invite-accepted",
        )
    if row["expired"]:
        raise Problem(
            410,
            "invite-expired",
            "Invite expired",
            "This invite has expired; invite the person again with POST /v1/invites.",
        )
    code, code_hash = q.new_secret()
    await db.execute("update invites set code_hash = $2 where id = $1", invite_id, code_hash)
    sent = await _send(db, settings, invite_id, code)
    await audit(db, request, "invite.resend", "invite", invite_id, {"send": sent})


async def accept(
    db: asyncpg.Connection,
    hasher: PasswordHasher,
    request: Any,
    code: str,
    display_name: str,
    password: str,
) -> asyncpg.Record:
    """Make the invitee's account from a valid code; the API and the page both call this.

    Raises Problem: 404 invite-not-found, 410 invite-used / invite-expired, 409 email-taken.
    Runs in a savepoint, so a refusal after the claim undoes it even when the caller
    catches the Problem and goes on (the page does).
    """
    async with db.transaction():
        # Claim atomically, so two taps on the same link cannot make two accounts.
        invite = await db.fetchrow(
            """update invites set accepted_at = now()
                where code_hash = $1 and accepted_at is null and expires_at > now()
            returning id, organisation_id, email, roles""",
            q.digest(code),
        )
        if invite is None:
            raise closed_problem(await facts_by_code(db, code))
        if await db.fetchval("select 1 from users where lower(email) = lower($1)", invite["email"]):
            raise conflict(EMAIL_TAKEN, "email-taken")
        require_good_password(password, "$.password")
        password_hash = await asyncio.to_thread(hasher.hash, password)
        try:
            user = await db.fetchrow(
                f"""insert into users (organisation_id, email, display_name, password_hash, roles,
                                        privacy_notice_version, privacy_accepted_at)
                    values ($1, $2, $3, $4, $5, $6, now()) returning {q.USER_COLS}""",
                invite["organisation_id"],
                invite["email"],
                display_name,
                password_hash,
                invite["roles"],
                # Accepting the invite is accepting the notice it showed (the page and the
                # API both name this version and link to /privacy).
                app_state(request.app).settings.privacy_notice_version,
            )
        except asyncpg.UniqueViolationError:  # the same email accepted elsewhere just now
            raise conflict(EMAIL_TAKEN, "email-taken") from None
        assert user is not None  # insert ... returning: always a row
        await db.execute(
            "update invites set accepted_user_id = $2 where id = $1", invite["id"], user["id"]
        )
        await audit(
            db,
            request,
            "invite.accept",
            "user",
            user["id"],
            {
                "invite_id": str(invite["id"]),
                "privacy_notice_version": user["privacy_notice_version"],
            },
            organisation_id=user["organisation_id"],
            actor_id=user["id"],
        )
    return user


def closed_problem(facts: InviteFacts | None) -> Problem:
    """Why a code cannot be used (unknown, used, expired)."""
    if facts is None:
        return Problem(404, "invite-not-found", "Invite not found", "No such invite code.")
    if facts.status == "accepted":
        return Problem(
            410,
            "invite-used",
            "Invite already used",
            "This invite has already been used; sign in, or ask for a new invite.",
        )
    return Problem(
        410,
        "invite-expired",
        "Invite expired",
        "This invite has expired; ask your coordinator for a new one.",
    )
