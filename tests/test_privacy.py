"""UK GDPR end to end against the real database and store: the retention schedule deletes
what is past it (the clock is a parameter, never a sleep), erasing a volunteer anonymises
them without changing a scorecard and leaves nothing of their photos' originals in the
store, and a subject access export holds their data and photos. Coordinators of other
organisations get 404, citizens 403."""

from __future__ import annotations

import asyncio
import datetime as dt
import glob
import io
import json
import os
import sys
import tempfile
import zipfile
from typing import Any

from inspections.privacy.retention import run_retention
from inspections.privacy.schemas import RetentionReport
from service.db import create_pool
from service.settings import Settings
from service.storage import ObjectStore
from tests.conftest import ROOT
from tests.helpers import Api, assert_problem, browser_as, form_post, text_of
from tests.scenes import (
    CONCERN,
    GPS_PHOTO,
    Findings,
    Photos,
    answers,
    bucket_keys,
    scene_with_visit,
    seeded,
)

DAY = dt.timedelta(days=1)
PHOTO = GPS_PHOTO.read_bytes()
OTHER_PHOTO = GPS_PHOTO.with_name("DSCN0012.jpg").read_bytes()


def _org_counts(report: Any, org: str) -> dict[str, int]:
    return {
        k.kind: k.count for o in report.organisations if o.organisation_id == org for k in o.kinds
    }


async def _job(api: Api, now: dt.datetime) -> RetentionReport:
    """Run the job as if it were ``now``, on this test's loop: its own pool and store
    client, as the CLI has (the app's belong to the test client's loop)."""
    settings = api.client.app.state.settings
    pool = await create_pool(settings.database_url, 1, 2)
    store = ObjectStore(
        settings.s3_endpoint_url,
        settings.s3_bucket,
        settings.s3_region,
        settings.s3_access_key,
        settings.s3_secret_key,
    )
    try:
        report = await run_retention(pool, store, now)
    finally:
        await pool.close()
        store.close()
    assert not report.skipped_locked
    return report


async def _run(api: Api, org: str, now: dt.datetime) -> dict[str, int]:
    """This organisation's counts by kind, from a run as if it were ``now``."""
    return _org_counts(await _job(api, now), org)


async def _photo(p: Photos, who: dict[str, Any], photo: bytes = PHOTO) -> dict[str, Any]:
    return await p.upload_ready(await p.api.login(who), photo)


async def test_retention_deletes_originals_first_then_derivatives_and_the_rest(
    api: Api,
) -> None:
    p = await scene_with_visit(api)
    s, org = p.scene, p.scene.org
    ann = await api.login(p.scene.ann)
    ev = await _photo(p, s.ann)
    r = await api.client.put(
        f"/v1/visits/{p.visit['id']}/submissions/{ev['id'][:8]}-0000-4000-8000-000000000000",
        headers=ann,
        json={"state": "draft", "answers": answers()},  # "kind staff" as a comment
    )
    assert r.status_code == 201, r.text
    # A phone signed out: its device is revoked, kept a while, then deleted.
    old = await api.sign_in(s.ann, device="old phone")
    r = await api.client.post(
        "/v1/auth/logout",
        headers={"Authorization": f"Bearer {old['access_token']}"},
        json={"refresh_token": old["refresh_token"]},
    )
    assert r.status_code == 204, r.text
    keys = await bucket_keys(api, org)
    assert any("/originals/" in k for k in keys) and any("/derivatives/" in k for k in keys)
    now = dt.datetime.now(dt.UTC)

    # Tomorrow nothing is past its period but the sign-in bits.
    first = await _run(api, org, now + DAY)
    assert first["photo_originals"] == 0 and first["photo_derivatives"] == 0
    assert await bucket_keys(api, org) == keys

    # After 90 days the original (with its GPS) is gone from the store; the display copy
    # stays, and the coordinator still sees that it was taken on site, not where.
    later = await _run(api, org, now + 91 * DAY)
    assert later["photo_originals"] == 1 and later["revoked_devices"] == 1
    left = await bucket_keys(api, org)
    assert left and not any("/originals/" in k for k in left)
    got = (await api.client.get(f"/v1/evidence/{ev['id']}", headers=s.coord)).json()
    assert got["location"]["check"] == "on_site" and got["location"]["lat"] is None
    assert got["urls"]["display"]
    devices = await api.conn.fetch(
        "select name, revoked_at from devices where user_id = $1", _uuid(s.ann["id"])
    )
    assert devices and all(d["name"] != "old phone" for d in devices)  # revoked: deleted
    assert all(d["revoked_at"] is None for d in devices)

    # After six years the derivatives go too (nothing of the photo is left in the store),
    # comments are cleared, and the audit log keeps only what is younger than its period.
    last = await _run(api, org, now + 2191 * DAY)
    assert last["photo_derivatives"] == 1 and last["submissions"] == 1
    assert await bucket_keys(api, org) == []
    comments = await api.conn.fetch(
        "select comment from answers where organisation_id = $1", _uuid(org)
    )
    assert comments and all(c["comment"] is None for c in comments)
    audit = (await api.client.get("/v1/audit?limit=200", headers=s.coord)).json()["items"]
    assert audit and all(a["action"].startswith("retention.") for a in audit)
    by_kind = {a["action"]: a["summary"] for a in audit}
    assert by_kind["retention.photo_derivatives"]["count"] == 1
    assert by_kind["retention.audit"]["count"] > 0  # the earlier rows, past six years
    assert len(audit) == len(by_kind)  # one row per kind for this run


async def test_email_links_are_cleared_once_sent_and_rows_deleted_later(api: Api) -> None:
    org = await api.org()
    coord = await api.login(await api.user(org, "coordinator"))
    await api.invite(coord, "new.volunteer@example.org", "citizen_inspector")
    # Sent (the delivery worker's part is tested in test_invites_email.py).
    await api.conn.execute(
        "update outbox set delivered_at = now() where organisation_id = $1", _uuid(org)
    )
    # The log names the invite by id; the address is only in the invite (and the email).
    log = (await api.client.get("/v1/audit?action=invite.create", headers=coord)).json()
    assert log["items"] and "new.volunteer@example.org" not in json.dumps(log)
    body = await api.conn.fetchval("select body from outbox where organisation_id = $1", _uuid(org))
    assert "/invites/" in body  # the link that claims the account
    counts = await _run(api, org, dt.datetime.now(dt.UTC) + 2 * DAY)
    assert counts["outbox_email_bodies"] == 1
    assert (
        await api.conn.fetchval("select body from outbox where organisation_id = $1", _uuid(org))
        == ""
    )
    # Months later the sent email's row and the never-accepted invite (an address) are gone.
    counts = await _run(api, org, dt.datetime.now(dt.UTC) + 120 * DAY)
    assert counts["outbox"] == 1 and counts["expired_invites"] == 1
    assert (await api.client.get("/v1/invites", headers=coord)).json()["items"] == []
    assert (await api.client.get("/v1/notifications", headers=coord)).json()["items"] == []


async def test_the_schedule_is_an_organisation_setting(api: Api) -> None:
    p = await scene_with_visit(api)
    s = p.scene
    url = "/v1/organisation/retention-settings"
    got = (await api.client.get(url, headers=s.coord)).json()
    assert got["photo_originals_days"] == 90 and got["keep_erased_evidence"] is True
    r = await api.client.patch(url, headers=s.coord, json={"photo_originals_days": 7})
    assert r.status_code == 200 and r.json()["photo_originals_days"] == 7
    assert_problem(
        await api.client.patch(url, headers=s.coord, json={"photo_derivatives_days": 3}), 422
    )
    assert_problem(await api.client.patch(url, headers=s.coord, json={"audit_days": 0}), 422)
    assert_problem(await api.client.get(url, headers=await api.login(s.ann)), 403)
    await _photo(p, s.ann)
    assert (await _run(api, s.org, dt.datetime.now(dt.UTC) + 8 * DAY))["photo_originals"] == 1
    assert not any("/originals/" in k for k in await bucket_keys(api, s.org))


async def test_erasing_a_volunteer_keeps_the_scorecard_and_deletes_their_originals(
    api: Api,
) -> None:
    s, visits = await seeded(api)
    p = Photos(api, s, {"id": visits[-1]})
    ann_photo = await _photo(p, s.ann)
    bob_photo = await _photo(p, s.bob, OTHER_PHOTO)
    card_url = f"/v1/services/{s.service['id']}/scorecard"
    before = (await api.client.get(card_url, headers=s.coord)).json()
    ann_original = await api.conn.fetchval(
        "select original_key from evidence where id = $1", _uuid(ann_photo["id"])
    )
    assert ann_original in await bucket_keys(api, s.org)

    # Another organisation's coordinator: as if Ann did not exist. A citizen: refused.
    other = await api.login(await api.user(await api.org("Elsewhere"), "coordinator"))
    assert_problem(await api.client.post(f"/v1/users/{s.ann['id']}/erase", headers=other), 404)
    assert_problem(await api.client.get(f"/v1/users/{s.ann['id']}/export", headers=other), 404)
    bob = await api.login(s.bob)
    assert_problem(await api.client.post(f"/v1/users/{s.ann['id']}/erase", headers=bob), 403)
    assert_problem(await api.client.get(f"/v1/users/{s.ann['id']}/export", headers=bob), 403)

    upcoming = (await s.visit()).json()  # next week's team includes Ann
    r = await api.client.post(f"/v1/users/{s.ann['id']}/erase", headers=s.coord)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["upcoming_visits_left"] == 1
    team = (await api.client.get(f"/v1/visits/{upcoming['id']}", headers=s.coord)).json()
    assert s.ann["id"] not in json.dumps(team)
    assert done["originals_deleted"] == 1 and done["training_records_deleted"] == 2
    assert done["submissions_kept"] == 3 and done["derivatives_deleted"] == 0

    after = (await api.client.get(card_url, headers=s.coord)).json()
    # Identical but for the period, which is counted back from the moment of asking.
    for card in (before, after):
        del card["period_from"], card["period_to"]
    assert after == before
    person = (await api.client.get(f"/v1/users/{s.ann['id']}", headers=s.coord)).json()
    assert person["display_name"] == "A citizen inspector"
    assert s.ann["email"] not in json.dumps(person) and person["active"] is False
    assert person["training"] == [] and person.get("devices", []) == []
    # Her sign-in no longer works; her original is gone from the store, Bob's is not.
    r = await api.client.post(
        "/v1/auth/token",
        json={"email": s.ann["email"], "password": "correct horse battery", "device": "x"},
    )
    assert r.status_code == 401
    keys = await bucket_keys(api, s.org)
    assert ann_original not in keys
    assert (
        await api.conn.fetchval(
            "select original_key from evidence where id = $1", _uuid(bob_photo["id"])
        )
        in keys
    )
    kept = (await api.client.get(f"/v1/evidence/{ann_photo['id']}", headers=s.coord)).json()
    assert kept["urls"]["display"] and kept["location"]["lat"] is None  # evidence kept
    # The log names her by id: nothing in it holds her email or her name.
    log = await api.conn.fetchval(
        "select string_agg(summary::text, ' ') from audit_log where organisation_id = $1",
        _uuid(s.org),
    )
    assert s.ann["email"] not in log and "Ann" not in log
    erase = (await api.client.get("/v1/audit?action=user.erase", headers=s.coord)).json()
    assert erase["items"][0]["object_id"] == s.ann["id"]
    assert_problem(await api.client.post(f"/v1/users/{s.ann['id']}/erase", headers=s.coord), 409)
    revive = await api.client.patch(
        f"/v1/users/{s.ann['id']}", headers=s.coord, json={"active": True}
    )
    assert_problem(revive, 409)


async def test_an_organisation_that_keeps_no_evidence_loses_the_photos_too(api: Api) -> None:
    s, visits = await seeded(api)
    await api.client.patch(
        "/v1/organisation/retention-settings",
        headers=s.coord,
        json={"keep_erased_evidence": False},
    )
    await _photo(Photos(api, s, {"id": visits[-1]}), s.ann)
    r = await api.client.post(f"/v1/users/{s.ann['id']}/erase", headers=s.coord)
    assert r.status_code == 200 and r.json()["derivatives_deleted"] == 1
    assert await bucket_keys(api, s.org) == []


async def test_subject_access_export_holds_their_data_and_photos(api: Api) -> None:
    s, visits = await seeded(api)
    ev = await _photo(Photos(api, s, {"id": visits[-1]}), s.ann)
    r = await api.client.get(f"/v1/users/{s.ann['id']}/export", headers=s.coord)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    data = json.loads(z.read("person.json"))
    assert data["person"]["email"] == s.ann["email"]
    assert len(data["submissions"]) == 3 and data["submissions"][0]["answers"]
    assert len(data["training_records"]) == 2 and data["devices"]
    assert [p["id"] for p in data["photos"]] == [ev["id"]]
    assert data["photos"][0]["exif_lat"] is not None  # what is held, GPS included
    assert "password_hash" not in data["person"]
    assert z.read(f"photos/{ev['id']}/original.jpg") == PHOTO
    assert z.read(f"photos/{ev['id']}/display.jpg")[:2] == b"\xff\xd8"
    # The temporary file it was sent from is gone (erasure would not reach it).
    assert not glob.glob(os.path.join(tempfile.gettempdir(), "coassess-export-*"))
    audit = (await api.client.get("/v1/audit?action=user.export", headers=s.coord)).json()
    assert audit["items"][0]["object_id"] == s.ann["id"]


async def test_the_person_data_screen_downloads_and_erases(api: Api) -> None:
    s, visits = await seeded(api)
    ev = await _photo(Photos(api, s, {"id": visits[-1]}), s.ann)
    other = await api.user(await api.org("Elsewhere"), "coordinator")
    await browser_as(api, other)
    assert (await api.client.get(f"/people/{s.ann['id']}/data")).status_code == 404
    await browser_as(api, await api.user(s.org, "coordinator", name="Cora"))
    person = await api.client.get(f"/people/{s.ann['id']}")
    assert f'href="/people/{s.ann["id"]}/data"' in person.text  # linked from their page
    page = await api.client.get(f"/people/{s.ann['id']}/data")
    assert page.status_code == 200, page.text
    words = text_of(page.text)
    assert "Submissions 3" in words and "Download their data (.zip)" in words

    r = await form_post(api.client, f"/people/{s.ann['id']}/data/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert "person.json" in names and f"photos/{ev['id']}/original.jpg" in names

    r = await form_post(api.client, f"/people/{s.ann['id']}/data/erase", {"confirm": "yes"})
    assert r.status_code == 422 and "Type ERASE to confirm" in r.text  # nothing erased
    assert (
        await api.conn.fetchval("select erased_at from users where id = $1", _uuid(s.ann["id"]))
        is None
    )
    r = await form_post(api.client, f"/people/{s.ann['id']}/data/erase", {"confirm": "ERASE"})
    assert r.status_code == 200 and r.url.path == f"/people/{s.ann['id']}/data"  # 303 followed
    words = text_of(r.text)
    assert "Data held about A citizen inspector" in words and "Erased" in words
    assert "Erase this person" not in words


def _uuid(v: str) -> Any:
    import uuid

    return uuid.UUID(v)


async def _cli(settings: Settings, *args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "S3_BUCKET": settings.s3_bucket,
        "S3_ACCESS_KEY": settings.s3_access_key or "",
        "S3_SECRET_KEY": settings.s3_secret_key or "",
        "LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", *args,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def test_the_commands_export_erase_and_run_retention(
    api: Api, settings: Settings, tmp_path: Any
) -> None:
    s, visits = await seeded(api)
    ev = await _photo(Photos(api, s, {"id": visits[-1]}), s.ann)
    out = tmp_path / "ann.zip"
    done = await _cli(settings, "export", "--user", s.ann["id"], "--out", str(out))
    assert done["file"] == str(out) and out.stat().st_mode & 0o077 == 0  # owner only
    z = zipfile.ZipFile(out)
    assert json.loads(z.read("person.json"))["person"]["email"] == s.ann["email"]
    assert f"photos/{ev['id']}/original.jpg" in z.namelist()

    erased = await _cli(settings, "erase", "--user", s.ann["id"])
    assert erased["originals_deleted"] == 1 and erased["objects_deleted"] == 1
    assert not any("/originals/" in k for k in await bucket_keys(api, s.org))
    name = await api.conn.fetchval(
        "select display_name from users where id = $1", _uuid(s.ann["id"])
    )
    assert name == "A citizen inspector"

    report = await _cli(settings, "retention")
    mine = [o for o in report["organisations"] if o["organisation_id"] == s.org]
    assert len(mine) == 1 and {k["kind"] for k in mine[0]["kinds"]} >= {
        "photo_originals", "photo_derivatives", "submissions", "audit"
    }  # fmt: skip
    actions = [
        a["action"]
        for a in (await api.client.get("/v1/audit?limit=200", headers=s.coord)).json()["items"]
    ]
    assert "user.export" in actions and "user.erase" in actions
    assert "retention.photo_originals" in actions


async def test_closed_concerns_lose_what_they_said_about_people_after_their_period(
    api: Api,
) -> None:
    f = await Findings(api).build()
    r = await f.raise_(f.ann, **CONCERN)
    assert r.status_code in (200, 201), r.text
    cid = r.json()["id"]
    await f.update(f.lead, cid, type="acknowledge")
    await f.update(f.lead, cid, type="refer", reference="LA-2025-0042")
    note = "Mrs A.'s daughter was told; the carer named was moved to nights."
    assert (await f.update(f.coord, cid, type="close", note=note)).json()["status"] == "closed"
    now = dt.datetime.now(dt.UTC)

    assert (await _run(api, f.s.org, now + 365 * DAY))["findings"] == 0  # not yet
    assert note in json.dumps((await f.get(f.coord, cid)).json())
    assert (await _run(api, f.s.org, now + 2191 * DAY))["findings"] == 1
    kept = (await f.get(f.coord, cid)).json()
    assert kept["status"] == "closed" and kept["safeguarding_reference"] == "LA-2025-0042"
    assert "Mrs A" not in json.dumps(kept)


async def test_sign_in_counters_go_a_day_after_their_window(api: Api) -> None:
    org = await api.org()
    user = await api.user(org, "citizen_inspector")
    r = await api.client.post(
        "/v1/auth/token", json={"email": user["email"], "password": "wrong", "device": "x"}
    )
    assert r.status_code == 401
    assert await api.conn.fetchval("select count(*) from rate_limits") > 0
    report = await _job(api, dt.datetime.now(dt.UTC) + 3 * DAY)
    assert report.signin_attempts_deleted > 0
    assert await api.conn.fetchval("select count(*) from rate_limits") == 0
