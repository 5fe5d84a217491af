"""Erasing a person who leaves, by anonymisation.

Their row stays (submissions, photos, findings and the audit log point at it by id) but
nothing in it identifies them: the email becomes ``erased-<id>@erased.invalid``, the name
"A citizen inspector" (or their role's words), the password unusable. Devices, refresh
tokens, training records, reset links and emails to them are deleted; invites to their
address are anonymised. Their submissions stay, so scorecards do not change.

Photos: the originals (GPS, camera metadata) are deleted from the store. The derivatives
carry no metadata and are the evidence behind published findings, so they are kept when
the organisation keeps evidence (RetentionSettings.keep_erased_evidence, the default) and
deleted with the rest otherwise; either way the retention schedule deletes them later.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from inspections.audit.log import record
from inspections.org_settings import read_section
from inspections.privacy import store as objects
from inspections.privacy.schemas import Acting, Erasure, RetentionSettings
from service.errors import DomainError, not_found
from service.storage import ObjectStore

# What an erased person is called wherever their name used to show.
ROLE_WORDS = [
    ("citizen_inspector", "A citizen inspector"),
    ("professional_inspector", "A professional inspector"),
    ("service_manager", "A service manager"),
    ("coordinator", "A coordinator"),
    ("scrutiny_member", "A scrutiny member"),
]


def erased_name(roles: list[str]) -> str:
    return next((words for role, words in ROLE_WORDS if role in roles), "A former member")


async def erase_person(
    conn: asyncpg.Connection, store: ObjectStore, user_id: UUID, by: Acting
) -> Erasure:
    """Erase ``user_id`` of ``by.organisation_id`` (404 for anyone else's). ``conn`` must
    not be in a transaction: the rows commit first, then the store's objects are deleted (if
    that fails, no row names them and the orphan sweep removes them)."""
    organisation_id, actor_id = by.organisation_id, by.actor_id
    async with conn.transaction():
        user = await conn.fetchrow(
            """select id, email, roles, erased_at from users
                where id = $1 and organisation_id = $2 for update""",
            user_id,
            organisation_id,
        )
        if user is None:
            raise not_found("user")
        if user["erased_at"] is not None:
            raise DomainError(409, "already-erased", "Already erased", "This person was erased.")
        if user_id == actor_id:
            raise DomainError(
                409, "self-erasure", "Cannot erase yourself", "Ask another coordinator."
            )
        schedule = await read_section(conn, organisation_id, "retention", RetentionSettings)
        email = user["email"]
        await conn.execute(
            """delete from refresh_tokens
                where device_id in (select id from devices where user_id = $1)""",
            user_id,
        )
        devices = objects_count(
            await conn.execute("delete from devices where user_id = $1", user_id)
        )
        training = objects_count(
            await conn.execute("delete from training_records where user_id = $1", user_id)
        )
        await conn.execute("delete from password_resets where user_id = $1", user_id)
        anonymous = f"erased-{user_id}@erased.invalid"
        await conn.execute(
            """update invites set email = $3
                where organisation_id = $1
                  and (accepted_user_id = $2 or lower(email) = lower($4))""",
            organisation_id,
            user_id,
            anonymous,
            email,
        )
        await conn.execute(
            """delete from outbox where organisation_id = $1 and channel = 'email'
                  and lower(recipient) = lower($2)""",
            organisation_id,
            email,
        )
        # Off the teams of visits still to come (not where they lead: the coordinator
        # chooses a new lead first, as for anyone leaving a team).
        left = objects_count(
            await conn.execute(
                """delete from visit_members m using visits v
                    where m.user_id = $1 and v.id = m.visit_id and not m.is_lead
                      and v.status = 'planned' and v.starts_at > now()
                      and not exists (select 1 from submissions s
                                       where s.visit_id = v.id and s.user_id = $1)
                      and not exists (select 1 from evidence e
                                       where e.visit_id = v.id and e.uploaded_by = $1)""",
                user_id,
            )
        )
        submissions = objects_count(
            await conn.execute("update submissions set device = null where user_id = $1", user_id)
        )
        photos = await conn.fetchval(
            "select count(*) from evidence where uploaded_by = $1", user_id
        )
        assert photos is not None  # a count always answers
        rows = await conn.fetch(
            f"""with old as (select id, original_key from evidence
                              where uploaded_by = $1 and original_key is not null for update)
                update evidence e set {objects.STRIP_ORIGINAL} from old where e.id = old.id
                returning old.original_key""",
            user_id,
        )
        keys = [r["original_key"] for r in rows]
        originals = len(rows)
        derivatives = 0
        if not schedule.keep_erased_evidence:
            rows = await conn.fetch(
                """with old as (select id, display_key, thumb_key from evidence
                                 where uploaded_by = $1
                                   and (display_key is not null or thumb_key is not null)
                                 for update)
                   update evidence e set display_key = null, thumb_key = null, caption = null,
                          deleted_at = coalesce(e.deleted_at, now()),
                          delete_reason = coalesce(e.delete_reason, 'erasure'),
                          updated_at = now()
                     from old where e.id = old.id
                   returning old.display_key, old.thumb_key""",
                user_id,
            )
            keys += [k for r in rows for k in r.values()]
            derivatives = len(rows)
        await conn.execute(
            """update users set email = $2, display_name = $3, password_hash = '!erased',
                      active = false, erased_at = now(), updated_at = now()
                where id = $1""",
            user_id,
            anonymous,
            erased_name(list(user["roles"])),
        )
        report = Erasure(
            user_id=str(user_id),
            devices_deleted=devices,
            training_records_deleted=training,
            submissions_kept=submissions,
            upcoming_visits_left=left,
            photos=photos,
            originals_deleted=originals,
            derivatives_deleted=derivatives,
            objects_deleted=0,
        )
        # By id and counts only: the log never needs editing to erase someone.
        await record(
            conn,
            organisation_id,
            actor_id,
            "user.erase",
            "user",
            user_id,
            {
                "via": by.via,
                "devices_deleted": devices,
                "training_records_deleted": training,
                "upcoming_visits_left": left,
                "originals_deleted": originals,
                "derivatives_deleted": derivatives,
                "kept_evidence": schedule.keep_erased_evidence,
            },
            by.request_id,
        )
    report.objects_deleted = await objects.delete_keys(
        store, await objects.unreferenced(conn, keys)
    )
    return report


def objects_count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])
