"""Photo evidence through HTTP, with real camera photos and a real SeaweedFS."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
from typing import Any

import httpx
import pillow_heif
import pytest
from PIL import Image

from inspections.evidence.sweep import sweep
from service import db
from tests.conftest import FIXTURES
from tests.helpers import Api, assert_problem
from tests.scenes import (
    GPS_PHOTO,
    PHOTO_LAT,
    PHOTO_LON,
    PHOTO_RULE_CHECKLIST,
    Photos,
    answers,
    bucket_keys,
    scene_with_visit,
)

PHOTOS = FIXTURES / "photos"


async def fetch(url: str) -> bytes:
    async with httpx.AsyncClient() as c:
        r = await c.get(url)
        assert r.status_code == 200, r.text
        return r.content


async def test_geotagged_photo_on_site_with_clean_derivatives_and_exact_original(
    api: Api,
) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    original = GPS_PHOTO.read_bytes()
    r = await p.upload(ann, original, caption="Corridor", lat=51.5, lon=-0.12)
    # Acknowledged once stored (202), with the checks already made; derivatives follow.
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "processing" and r.json()["urls"] is None
    assert r.json()["location"]["check"] == "on_site"
    ev = await p.settled(ann, r)
    assert ev["status"] == "ready" and ev["content_type"] == "image/jpeg"
    assert ev["sha256"] == hashlib.sha256(original).hexdigest()
    assert ev["size_bytes"] == len(original)
    # EXIF GPS wins over the phone's own fix; the service sits where the photo was taken.
    loc = ev["location"]
    assert loc["source"] == "exif" and loc["check"] == "on_site"
    assert abs(loc["lat"] - PHOTO_LAT) < 1e-6 and abs(loc["lon"] - PHOTO_LON) < 1e-6
    assert loc["distance_m"] < 1
    # Taken in 2008 (camera clock read as UK time), far outside this visit's window.
    assert ev["taken_at"].startswith("2008-10-22T")
    assert ev["time_check"] == "outside_window"
    assert ev["urls"]["original"] is None

    for name in ("display", "thumb"):
        img = Image.open(io.BytesIO(await fetch(ev["urls"][name])))
        assert not img.getexif() and "exif" not in img.info and "xmp" not in img.info
        assert max(img.size) <= (2048 if name == "display" else 320)

    coord = p.scene.coord
    r = await api.client.get(f"/v1/evidence/{ev['id']}?original=true", headers=coord)
    assert await fetch(r.json()["urls"]["original"]) == original
    audit = (await api.client.get(f"/v1/audit?object_id={ev['id']}", headers=coord)).json()
    assert "evidence.original_access" in [e["action"] for e in audit["items"]]


async def test_off_site_and_device_location_fallback(api: Api) -> None:
    p = await scene_with_visit(api, lat=51.5074, lon=-0.1278)  # the service is in London
    ann = await api.login(p.scene.ann)
    r = await p.upload(ann, GPS_PHOTO.read_bytes())
    loc = r.json()["location"]
    assert loc["source"] == "exif" and loc["check"] == "off_site"
    assert 1_100_000 < loc["distance_m"] < 1_300_000  # Tuscany to London
    # A photo with no EXIF GPS: the phone's reported fix is used.
    plain = io.BytesIO()
    Image.open(GPS_PHOTO).save(plain, "PNG")
    r = await p.upload(ann, plain.getvalue(), lat=51.5075, lon=-0.1279, accuracy_m=10)
    assert r.status_code == 202, r.text
    loc = r.json()["location"]
    assert loc["source"] == "device" and loc["check"] == "on_site"
    assert r.json()["content_type"] == "image/png"
    # Neither: unverified.
    r = await p.upload(ann, _jpeg_without_exif())
    assert r.json()["location"]["source"] == "none"
    assert r.json()["location"]["check"] == "unverified"


async def test_retries_never_duplicate_and_same_bytes_are_recognised(api: Api) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    evidence_id = str(uuid.uuid4())
    first = await p.upload(ann, GPS_PHOTO.read_bytes(), evidence_id=evidence_id)
    assert first.status_code == 202
    await p.settled(ann, first)
    keys_after_first = await bucket_keys(api, p.scene.org)
    again = await p.upload(ann, GPS_PHOTO.read_bytes(), evidence_id=evidence_id)
    assert again.status_code == 200 and again.json()["id"] == evidence_id
    same_bytes = await p.upload(ann, GPS_PHOTO.read_bytes())
    assert same_bytes.status_code == 200
    assert same_bytes.json()["duplicate_of"] == evidence_id
    assert await api.conn.fetchval("select count(*) from evidence") == 1
    assert sorted(await bucket_keys(api, p.scene.org)) == sorted(keys_after_first)
    assert len(keys_after_first) == 3  # original, display, thumb
    listed = await api.client.get(f"/v1/visits/{p.visit['id']}/evidence", headers=ann)
    assert [e["id"] for e in listed.json()] == [evidence_id]
    # The upload is in the audit log once, with what it was; retries added no line.
    assert await upload_audit(api, p.scene.coord, evidence_id) == [
        {
            "visit_id": p.visit["id"],
            "sha256": hashlib.sha256(GPS_PHOTO.read_bytes()).hexdigest(),
            "location_check": "on_site",
        }
    ]


async def upload_audit(api: Api, coord: dict[str, str], evidence_id: str) -> list[Any]:
    """The summaries of the evidence.upload lines the audit log shows for this evidence."""
    r = await api.client.get(f"/v1/audit?object_id={evidence_id}", headers=coord)
    assert r.status_code == 200, r.text
    return [e["summary"] for e in r.json()["items"] if e["action"] == "evidence.upload"]


GRID_HEIC = FIXTURES / "heic" / "grid_tiles.heic"  # 4 x 3 HEVC tiles, as an iPhone writes


def _cut(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def _zero_tail(data: bytes, keep: float = 0.6) -> bytes:
    """Full length, but only the first part arrived: the rest reads as zeros."""
    return _cut(data, keep) + bytes(len(data) - int(len(data) * keep))


def _ff_run(data: bytes, at: float = 0.4) -> bytes:
    """16 KB of 0xFF over the JPEG's scan data (libjpeg only warns; rows decode grey)."""
    o = int(len(data) * at)
    return data[:o] + b"\xff" * 16384 + data[o + 16384 :]


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.open(GPS_PHOTO).save(buf, fmt)
    return buf.getvalue()


# Refused before the 202 (no full decode needed): the type, the pixel count, structure.
@pytest.mark.parametrize(
    ("make", "status", "kind"),
    [
        (lambda: b"Dear diary, today we visited Elm House.\n" * 50, 415, "photo-unsupported-type"),
        (lambda: GPS_PHOTO.read_bytes()[:60_000], 422, "photo-corrupt-image"),
        (lambda: _bomb_png(), 413, "photo-too-many-pixels"),
        (lambda: _cut(_encoded("PNG")), 422, "photo-corrupt-image"),
        (lambda: _cut(_encoded("WEBP")), 422, "photo-corrupt-image"),
        (lambda: _cut(GRID_HEIC.read_bytes()), 422, "photo-corrupt-image"),
        (lambda: _zero_tail(GRID_HEIC.read_bytes()), 422, "photo-corrupt-image"),
    ],
    ids=[
        "text-named-jpg",
        "truncated-jpeg",
        "decompression-bomb",
        "truncated-png",
        "truncated-webp",
        "truncated-grid-heic",
        "grid-heic-missing-tiles",
    ],
)
async def test_bad_files_are_refused_and_leave_nothing_behind(
    api: Api, make: Any, status: int, kind: str
) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    r = await p.upload(ann, make(), name="holiday.jpg")
    body = assert_problem(r, status, kind)
    assert body["detail"]
    assert await api.conn.fetchval("select count(*) from evidence") == 0
    assert await bucket_keys(api, p.scene.org) == []


# Damage only a full decode finds: acknowledged, then rejected with a reason the phone
# reads when it polls (it still has the photo, and sends it again); no objects remain.
@pytest.mark.parametrize(
    "make",
    [
        lambda: _ff_run((PHOTOS / "gps" / "DSCN0012.jpg").read_bytes()),
        lambda: _cut(GPS_PHOTO.read_bytes()) + b"\xff\xd9",
    ],
    ids=["jpeg-ff-run-in-scan-data", "jpeg-cut-then-eoi"],
)
async def test_damage_found_after_the_202_rejects_the_photo_with_a_reason(
    api: Api, make: Any
) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    r = await p.upload(ann, make(), name="holiday.jpg")
    assert r.status_code == 202, r.text
    ev = await p.settled(ann, r)
    assert ev["status"] == "rejected" and ev["urls"] is None
    assert "damaged or incomplete" in ev["rejected_reason"]
    assert "send it again" in ev["rejected_reason"]
    assert await bucket_keys(api, p.scene.org) == []
    assert await api.conn.fetchval("select count(*) from evidence_jobs") == 0
    # The same evidence id sent again answers what became of it, never a second copy.
    again = await p.upload(ann, make(), evidence_id=ev["id"])
    assert again.status_code == 200 and again.json()["status"] == "rejected"
    # Sent again whole, as a new photo: taken.
    await p.upload_ready(ann, (PHOTOS / "gps" / "DSCN0012.jpg").read_bytes())


async def test_every_real_camera_photo_is_accepted(api: Api) -> None:
    # The integrity checks must not refuse sound photos: the invalid/ ones have malformed
    # EXIF but whole pixels.
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    photos = sorted(PHOTOS.glob("*/*.jpg")) + [GRID_HEIC]
    for photo in photos:
        r = await p.upload(ann, photo.read_bytes(), name=photo.name)
        assert r.status_code in (200, 202), (photo.name, r.text)
        assert (await p.settled(ann, r))["status"] == "ready", photo.name
    distinct = {hashlib.sha256(photo.read_bytes()).digest() for photo in photos}
    assert await api.conn.fetchval("select count(*) from evidence") == len(distinct)


async def test_who_may_add_and_see_evidence(api: Api) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    ev = await p.upload_ready(ann, GPS_PHOTO.read_bytes())
    outsider = await api.login(await api.cleared_citizen(p.scene.org))
    assert_problem(await p.upload(outsider, GPS_PHOTO.read_bytes()), 403)
    assert_problem(await api.client.get(f"/v1/evidence/{ev['id']}", headers=outsider), 403)
    scrutiny = await api.login(await api.user(p.scene.org, "scrutiny_member"))
    r = await api.client.get(f"/v1/evidence/{ev['id']}", headers=scrutiny)
    assert r.status_code == 200 and r.json()["urls"]["display"]
    r = await api.client.get(f"/v1/evidence/{ev['id']}?original=true", headers=scrutiny)
    assert "coordinators" in assert_problem(r, 403)["detail"]
    stranger = await api.login(await api.user(await api.org("Other"), "coordinator"))
    assert_problem(await api.client.get(f"/v1/evidence/{ev['id']}", headers=stranger), 404)
    # Cancelled visits take no more evidence.
    await api.client.post(
        f"/v1/visits/{p.visit['id']}/cancel", headers=p.scene.coord, json={"reason": "flu outbreak"}
    )
    assert_problem(await p.upload(ann, _jpeg_without_exif()), 409, "visit-closed")
    # Soft delete: coordinator only, audited, then gone from view.
    assert_problem(await api.client.delete(f"/v1/evidence/{ev['id']}?reason=x", headers=ann), 403)
    r = await api.client.delete(f"/v1/evidence/{ev['id']}?reason=blurred", headers=p.scene.coord)
    assert r.status_code == 204
    assert_problem(await api.client.get(f"/v1/evidence/{ev['id']}", headers=p.scene.coord), 404)
    assert await api.conn.fetchval("select delete_reason from evidence") == "blurred"


async def test_presigned_upload_round_trip(api: Api) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    evidence_id = str(uuid.uuid4())
    body = {"evidence_id": evidence_id, "visit_id": p.visit["id"], "size_bytes": 200_000}
    r = await api.client.post("/v1/evidence/uploads", headers=ann, json=body)
    assert r.status_code == 201, r.text
    upload = r.json()["upload"]
    r = await api.client.post(f"/v1/evidence/{evidence_id}/complete", headers=ann)
    assert_problem(r, 409, "upload-missing")
    # The phone sends the bytes straight to the store.
    async with httpx.AsyncClient() as store:
        sent = await store.post(
            upload["url"],
            data=upload["fields"],
            files={"file": ("x.jpg", GPS_PHOTO.read_bytes(), "text/plain")},
        )
        assert sent.status_code in (200, 204), sent.text
    r = await api.client.post(f"/v1/evidence/{evidence_id}/complete", headers=ann)
    assert r.status_code == 202, r.text
    assert r.json()["content_type"] == "image/jpeg"  # not text/plain
    ev = await p.settled(ann, r)
    assert ev["status"] == "ready" and ev["location"]["check"] == "on_site"
    again = await api.client.post(f"/v1/evidence/{evidence_id}/complete", headers=ann)
    assert again.status_code == 200 and again.json()["id"] == evidence_id
    [line] = await upload_audit(api, p.scene.coord, evidence_id)
    assert line["location_check"] == "on_site"
    keys = await bucket_keys(api, p.scene.org)
    assert len(keys) == 3 and not any("/incoming/" in k for k in keys)
    r = await api.client.post("/v1/evidence/uploads", headers=ann, json=body)
    assert r.status_code == 200 and r.json()["status"] == "ready"
    too_big = {**body, "evidence_id": str(uuid.uuid4()), "size_bytes": 10**9}
    assert_problem(await api.client.post("/v1/evidence/uploads", headers=ann, json=too_big), 413)


async def test_presigned_upload_of_garbage_is_rejected_and_removed(api: Api) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    evidence_id = str(uuid.uuid4())
    r = await api.client.post(
        "/v1/evidence/uploads",
        headers=ann,
        json={"evidence_id": evidence_id, "visit_id": p.visit["id"]},
    )
    upload = r.json()["upload"]
    async with httpx.AsyncClient() as store:
        await store.post(
            upload["url"],
            data=upload["fields"],
            files={"file": ("x.jpg", b"not a photo at all", "image/jpeg")},
        )
    r = await api.client.post(f"/v1/evidence/{evidence_id}/complete", headers=ann)
    assert_problem(r, 415, "photo-unsupported-type")
    assert await bucket_keys(api, p.scene.org) == []
    row = await api.conn.fetchrow("select status, rejected_reason from evidence")
    assert row["status"] == "rejected" and "JPEG" in row["rejected_reason"]


async def test_heic_from_a_phone(api: Api) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    src = Image.open(GPS_PHOTO)
    buf = io.BytesIO()
    pillow_heif.from_pillow(src).save(buf, quality=80, exif=src.info["exif"])
    r = await p.upload(ann, buf.getvalue(), name="IMG_0001.HEIC")
    assert r.status_code == 202, r.text
    ev = await p.settled(ann, r)
    assert ev["status"] == "ready"
    assert ev["content_type"] in ("image/heic", "image/heif")
    assert ev["location"]["source"] == "exif" and ev["location"]["check"] == "on_site"


async def test_portrait_photo_comes_out_upright(api: Api) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    sigs = {}
    for n in (1, 6):
        ev = await p.upload_ready(ann, (PHOTOS / "orientation" / f"portrait_{n}.jpg").read_bytes())
        assert ev["height"] > ev["width"]
        img = Image.open(io.BytesIO(await fetch(ev["urls"]["display"])))
        assert img.height > img.width
        sigs[n] = list(img.convert("L").resize((16, 16)).tobytes())
    diff = sum(abs(a - b) for a, b in zip(sigs[1], sigs[6], strict=True)) / 256
    assert diff < 12


async def test_final_submission_needs_the_photo_its_rule_requires(api: Api) -> None:
    p = await scene_with_visit(api, checklist=PHOTO_RULE_CHECKLIST)
    ann = await api.login(p.scene.ann)
    sub = str(uuid.uuid4())
    url = f"/v1/visits/{p.visit['id']}/submissions/{sub}"
    body = {"state": "final", "answers": [{"question_key": "clean", "value": "fail"}]}
    r = await api.client.put(url, headers=ann, json=body)
    err = assert_problem(r, 422)["errors"][0]
    assert err["field"] == "$.answers[0]" and "'clean' needs a photo" in err["reason"]
    r = await p.upload(ann, GPS_PHOTO.read_bytes(), submission_id=sub, question_key="clean")
    assert r.status_code == 202
    assert (await api.client.put(url, headers=ann, json=body)).status_code == 201
    # A passing answer needs no photo.
    bob = await api.login(p.scene.bob)
    r = await api.client.put(
        f"/v1/visits/{p.visit['id']}/submissions/{uuid.uuid4()}",
        headers=bob,
        json={"state": "final", "answers": [{"question_key": "clean", "value": "pass"}]},
    )
    assert r.status_code == 201


async def test_sweeper_removes_strays_and_stuck_uploads_only(api: Api, settings: Any) -> None:
    p = await scene_with_visit(api)
    ann = await api.login(p.scene.ann)
    kept = await p.upload_ready(ann, GPS_PHOTO.read_bytes())
    await api.client.post(
        "/v1/evidence/uploads",
        headers=ann,
        json={"evidence_id": str(uuid.uuid4()), "visit_id": p.visit["id"]},
    )
    await api.conn.execute(
        "update evidence set upload_expires_at = now() - interval '2 hours' "
        "where status = 'uploading'"
    )
    state = api.client.app.state
    stray = f"orgs/{p.scene.org}/derivatives/{uuid.uuid4()}/display.jpg"
    await state.store.call("put_object", Bucket=state.store.bucket, Key=stray, Body=b"x")
    before = await bucket_keys(api, p.scene.org)
    pool = await db.create_pool(settings.database_url, 1, 2)  # the app's pool is on its loop
    try:
        report = await sweep(pool, state.store, dt.timedelta(0), prefix=f"orgs/{p.scene.org}/")
    finally:
        await pool.close()
    assert report.rows_removed == 1 and report.objects_removed == 1
    after = await bucket_keys(api, p.scene.org)
    assert stray not in after and set(after) == set(before) - {stray}
    assert await api.conn.fetchval("select count(*) from evidence") == 1
    r = await api.client.get(f"/v1/evidence/{kept['id']}", headers=ann)
    assert await fetch(r.json()["urls"]["thumb"])


def _jpeg_without_exif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 140, 160)).save(buf, "JPEG")
    return buf.getvalue()


def _bomb_png() -> bytes:
    """A small file that claims 30000 x 30000 pixels (900 MP)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 30001 * 10)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ------------------------------------------------------------ the visit's door (issue 11)


async def _final(api: Api, p: Photos, who: dict[str, Any]) -> None:
    h = await api.login(who)
    r = await api.client.put(
        f"/v1/visits/{p.visit['id']}/submissions/{uuid.uuid4()}",
        headers=h,
        json={"state": "final", "answers": answers()},
    )
    assert r.status_code == 201, r.text


async def _presigned(api: Api, p: Photos, who: dict[str, str], content: bytes) -> str:
    """Start a direct upload and put the bytes in the store; returns the evidence id."""
    evidence_id = str(uuid.uuid4())
    r = await api.client.post(
        "/v1/evidence/uploads",
        headers=who,
        json={"evidence_id": evidence_id, "visit_id": p.visit["id"]},
    )
    assert r.status_code == 201, r.text
    upload = r.json()["upload"]
    async with httpx.AsyncClient() as store:
        sent = await store.post(
            upload["url"], data=upload["fields"], files={"file": ("x.jpg", content)}
        )
        assert sent.status_code in (200, 204), sent.text
    return evidence_id


def _finding_url(p: Photos) -> str:
    return f"/v1/visits/{p.visit['id']}/findings/{uuid.uuid4()}"


NAMES = {"title": "Doors have no names", "severity": "minor", "recommendation": "Name them."}


@pytest.mark.parametrize("order", ["answers-then-photos", "photos-then-answers"])
async def test_the_teams_photos_and_findings_are_taken_until_the_door_closes(
    api: Api, order: str
) -> None:
    p = await scene_with_visit(api)
    s = p.scene
    ann, pro = await api.login(s.ann), await api.login(s.pro)
    photos = [PHOTOS / "gps" / f"DSCN00{n}.jpg" for n in (12, 21, 25, 27)]
    if order == "photos-then-answers":
        await p.upload_ready(ann, photos[0].read_bytes())
    for who in (s.ann, s.bob, s.pro):  # the last member's final submission...
        await _final(api, p, who)
    v = (await api.client.get(f"/v1/visits/{p.visit['id']}", headers=s.coord)).json()
    assert v["status"] == "submitted" and v["closed_at"] is None
    # ...then the photos and findings the phone still had queued: all taken.
    if order == "answers-then-photos":
        await p.upload_ready(ann, photos[0].read_bytes())
    await p.upload_ready(pro, photos[1].read_bytes())
    direct = await _presigned(api, p, pro, photos[2].read_bytes())
    r = await api.client.post(f"/v1/evidence/{direct}/complete", headers=pro)
    assert r.status_code == 202, r.text
    assert (await p.settled(pro, r))["status"] == "ready"
    assert (await api.client.put(_finding_url(p), headers=pro, json=NAMES)).status_code == 201
    late = await _presigned(api, p, pro, photos[3].read_bytes())  # bytes in, not completed

    # A coordinator closes the visit: the door shuts for the team.
    r = await api.client.post(f"/v1/visits/{p.visit['id']}/close", headers=s.coord)
    assert r.status_code == 200 and r.json()["closed_at"], r.text
    body = assert_problem(await p.upload(pro, _jpeg_without_exif()), 409, "visit-closed")
    assert "coordinator closed" in body["detail"]
    r = await api.client.post(f"/v1/evidence/{late}/complete", headers=pro)
    assert_problem(r, 409, "visit-closed")
    r = await api.client.put(_finding_url(p), headers=pro, json=NAMES)
    assert_problem(r, 409, "visit-closed")
    # Safeguarding concerns are always taken; the coordinator still reviews findings.
    concern = {"title": "Bruising on an arm", "severity": "safeguarding"}
    assert (await api.client.put(_finding_url(p), headers=pro, json=concern)).status_code == 201
    assert (await api.client.put(_finding_url(p), headers=s.coord, json=NAMES)).status_code == 201
    ready = await api.conn.fetchval("select count(*) from evidence where status = 'ready'")
    assert ready == 3


async def test_sending_the_report_closes_the_door(api: Api) -> None:
    p = await scene_with_visit(api)
    s = p.scene
    ann = await api.login(s.ann)
    for who in (s.ann, s.bob, s.pro):
        await _final(api, p, who)
    assert (await p.upload(ann, GPS_PHOTO.read_bytes())).status_code == 202
    r = await api.client.put(
        f"/v1/visits/{p.visit['id']}/report", headers=s.coord, json={"summary": "Warm."}
    )
    assert r.status_code == 201, r.text
    assert (await api.client.post(f"/v1/reports/{r.json()['id']}/send", headers=s.coord)).is_success
    body = assert_problem(await p.upload(ann, _jpeg_without_exif()), 409, "visit-closed")
    assert "report has gone to the service" in body["detail"]
    assert_problem(await api.client.put(_finding_url(p), headers=ann, json=NAMES), 409)


async def test_the_phone_contract_says_when_the_door_closes(api: Api) -> None:
    doc = (await api.client.get("/schema/openapi.json")).json()["paths"]
    for path, method in (
        ("/v1/evidence", "post"),
        ("/v1/evidence/uploads", "post"),
        ("/v1/evidence/{evidence_id}/complete", "post"),
        ("/v1/visits/{visit_id}/findings/{finding_id}", "put"),
    ):
        text = doc[path][method]["description"]
        assert "coordinator closes the visit" in text and "report is sent" in text, path
