"""Subject access: everything held about one person, as a .zip of ``person.json`` and
their photos (the original when still held, and the display copy).

``person.json`` holds whole rows (``to_jsonb``), so a column added later is exported
without a change here; only the password hash is left out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import zipfile
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from inspections.audit.log import record
from inspections.privacy.schemas import Acting
from service.errors import not_found
from service.storage import ObjectStore

# One query per section of person.json; $1 is the person, $2 their organisation.
SECTIONS: dict[str, str] = {
    "training_records": "select * from training_records where user_id = $1",
    "devices": "select id, name, created_at, last_seen_at, revoked_at, revoked_reason "
    "from devices where user_id = $1",
    "visits": """select m.*, v.starts_at, v.ends_at, s.name service_name
                   from visit_members m join visits v on v.id = m.visit_id
                   join services s on s.id = v.service_id where m.user_id = $1""",
    "submissions": """select s.*, (select coalesce(jsonb_agg(to_jsonb(a) order by a.position),
                                                  '[]') from answers a
                                    where a.submission_id = s.id) answers
                        from submissions s where s.user_id = $1""",
    "photos": "select * from evidence where uploaded_by = $1",
    "findings_raised": "select * from findings where raised_by = $1",
    "finding_updates": "select * from finding_updates where actor_id = $1",
    "report_comments": "select * from report_comments where author_id = $1",
    "invites": """select id, email, roles, created_at, expires_at, accepted_at, sent_count
                    from invites where accepted_user_id = $1
                       or lower(email) = (select lower(email) from users where id = $1)""",
    # Not the bodies: a live invite or reset link must not reach whoever exports.
    "emails_sent_to_them": """select id, event, subject, created_at, delivered_at,
                                     failed_at
                                from outbox where channel = 'email' and organisation_id = $2
                                 and lower(recipient) = (select lower(email) from users
                                                          where id = $1)""",
    "service_manager_of": """select sm.*, s.name service_name from service_managers sm
                               join services s on s.id = sm.service_id where sm.user_id = $1""",
    "audit_log": """select * from audit_log where organisation_id = $2
                      and (actor_id = $1 or (object_type = 'user' and object_id = $1::text))
                    order by id""",
}


async def _rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[Any]:
    raw = await conn.fetchval(
        f"select coalesce(jsonb_agg(to_jsonb(t)), '[]') from ({sql}) t", *args
    )
    return msgspec.json.decode(raw) if isinstance(raw, str) else (raw or [])


def _copy_into(z: zipfile.ZipFile, name: str, store: ObjectStore, key: str) -> None:
    """One stored object into the archive, streamed (a photo is never wholly in memory)."""
    body = store.client.get_object(Bucket=store.bucket, Key=key)["Body"]
    with body, z.open(zipfile.ZipInfo(name), "w", force_zip64=True) as out:
        shutil.copyfileobj(body, out, 1 << 20)


async def export_person(
    conn: asyncpg.Connection, store: ObjectStore, user_id: UUID, target: Path, by: Acting
) -> int:
    """Write the .zip of ``user_id`` of ``by.organisation_id`` (404 for anyone else's) to
    ``target`` (a file the caller owns); returns its size. Audited in ``conn``'s transaction
    (the caller's)."""
    organisation_id = by.organisation_id
    person = await _rows(
        conn,
        """select id, organisation_id, email, display_name, roles, active, created_at,
                  updated_at, erased_at from users where id = $1 and organisation_id = $2""",
        user_id,
        organisation_id,
    )
    if not person:
        raise not_found("user")
    data: dict[str, Any] = {
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "person": person[0],
    }
    # Each section's SQL names the person ($1); some also the organisation ($2).
    for name, sql in SECTIONS.items():
        args = (user_id, organisation_id) if "$2" in sql else (user_id,)
        data[name] = await _rows(conn, sql, *args)
    photos = [
        (f"photos/{p['id']}/{label}{ext}", key)
        for p in data["photos"]
        for label, key, ext in (
            ("original", p.get("original_key"), _ext(p.get("content_type"))),
            ("display", p.get("display_key"), ".jpg"),
        )
        if key
    ]

    def build() -> int:
        # Photos are stored as they are (already compressed); person.json is deflated.
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as z:
            z.writestr(
                "person.json",
                msgspec.json.format(msgspec.json.encode(data)),
                compress_type=zipfile.ZIP_DEFLATED,
            )
            for name, key in photos:
                _copy_into(z, name, store, key)
        return target.stat().st_size

    size = await asyncio.to_thread(build)
    await record(
        conn,
        organisation_id,
        by.actor_id,
        "user.export",
        "user",
        user_id,
        {"via": by.via, "photos": len(photos), "bytes": size},
        by.request_id,
    )
    return size


def _ext(content_type: str | None) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/heic": ".heic"}.get(
        content_type or "", ""
    )
