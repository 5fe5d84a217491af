"""Photos acknowledged once stored (202) and processed from a durable queue in PostgreSQL.

Conditions are waited for (polling the evidence), never durations.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from inspections.evidence.jobs import CLAIM_SQL
from inspections.evidence.sweep import sweep
from service import db
from service.app import create_app
from service.settings import Settings
from tests.conftest import (
    PHOTOS,
    app_api,
    make_settings,
    start_live_server,
    stop_live_server,
)
from tests.helpers import Api, assert_problem
from tests.scenes import (
    GPS_PHOTO,
    PHOTO_RULE_CHECKLIST,
    Photos,
    bucket_keys,
    scene_with_visit,
    settled,
)

OTHER_PHOTOS = [PHOTOS / "gps" / f"DSCN00{n}.jpg" for n in (12, 21, 25, 27)]


@pytest.fixture
async def paused(database_url: str, seaweed: Any) -> AsyncIterator[Api]:
    """The app with its photo worker off (PHOTO_JOB_INTERVAL_S=0) and room for 2 queued
    photos: what is acknowledged stays 'processing' until a worker runs."""
    st = make_settings(database_url, seaweed, photo_job_interval_s=0, photo_queue_max=2)
    async with app_api(st) as api:
        yield api


async def test_upload_is_answered_once_stored_and_ready_when_processed(
    paused: Api, settings: Settings
) -> None:
    p = await scene_with_visit(paused)
    ann = await paused.login(p.scene.ann)
    r = await p.upload(ann, GPS_PHOTO.read_bytes())
    assert r.status_code == 202, r.text
    ev = r.json()
    assert ev["status"] == "processing" and ev["urls"] is None
    assert r.headers["location"] == ev["poll"] == f"/v1/evidence/{ev['id']}"
    # What the phone needs to know at once is known: type, size, where and when.
    assert ev["content_type"] == "image/jpeg" and ev["width"] and ev["height"]
    assert ev["location"]["source"] == "exif"
    # The original is safely stored and the job is queued, in the database.
    keys = await bucket_keys(paused, p.scene.org)
    assert len(keys) == 1 and "/originals/" in keys[0]
    assert await paused.conn.fetchval("select count(*) from evidence_jobs") == 1
    # Polling says processing; the same upload again answers the same, never a second copy.
    got = await paused.client.get(ev["poll"], headers=ann)
    assert got.status_code == 200 and got.json()["status"] == "processing"
    again = await p.upload(ann, GPS_PHOTO.read_bytes(), evidence_id=ev["id"])
    assert again.status_code == 202 and again.json()["id"] == ev["id"]
    assert await paused.conn.fetchval("select count(*) from evidence") == 1

    # A process with a worker (any process of the app) picks the queue up.
    async with AsyncTestClient(app=create_app(settings)) as c:
        done = await settled(Api(c, paused.conn), ann, r)
    assert done["status"] == "ready" and done["urls"]["display"] and done["urls"]["thumb"]
    assert await paused.conn.fetchval("select count(*) from evidence_jobs") == 0
    assert len(await bucket_keys(paused, p.scene.org)) == 3


async def test_a_long_queue_answers_503_with_retry_after(paused: Api, settings: Settings) -> None:
    p = await scene_with_visit(paused)
    ann = await paused.login(p.scene.ann)
    for photo in OTHER_PHOTOS[:2]:
        assert (await p.upload(ann, photo.read_bytes())).status_code == 202
    r = await p.upload(ann, OTHER_PHOTOS[2].read_bytes())
    body = assert_problem(r, 503, "photo-queue-full")
    assert int(r.headers["retry-after"]) >= 1
    assert "2 photos are waiting" in body["detail"]
    # Refused before it was read: nothing stored for it.
    assert await paused.conn.fetchval("select count(*) from evidence") == 2
    assert len(await bucket_keys(paused, p.scene.org)) == 2
    # Once the queue drains, the same photo is taken.
    async with AsyncTestClient(app=create_app(settings)) as c:
        worker = Api(c, paused.conn)
        ids = await paused.conn.fetch("select id from evidence")
        for row in ids:
            got = await c.get(f"/v1/evidence/{row['id']}", headers=ann)
            assert (await settled(worker, ann, got))["status"] == "ready"
    assert (await p.upload(ann, OTHER_PHOTOS[2].read_bytes())).status_code == 202


async def test_final_submission_counts_a_stored_photo_still_processing(
    paused: Api, settings: Settings
) -> None:
    p = await scene_with_visit(paused, checklist=PHOTO_RULE_CHECKLIST)
    ann = await paused.login(p.scene.ann)
    sub = str(uuid.uuid4())
    url = f"/v1/visits/{p.visit['id']}/submissions/{sub}"
    body = {"state": "final", "answers": [{"question_key": "clean", "value": "fail"}]}
    r = await p.upload(ann, GPS_PHOTO.read_bytes(), submission_id=sub, question_key="clean")
    assert r.status_code == 202 and r.json()["status"] == "processing"
    r = await paused.client.put(url, headers=ann, json=body)
    assert r.status_code == 201, r.text
    # A queued photo is stored, not stuck: the sweeper leaves it (and its original).
    state = paused.client.app.state
    pool = await db.create_pool(settings.database_url, 1, 2)
    try:
        report = await sweep(pool, state.store, dt.timedelta(0), prefix=f"orgs/{p.scene.org}/")
    finally:
        await pool.close()
    assert report.rows_removed == 0 and report.objects_removed == 0
    status = await paused.conn.fetchval("select status from evidence")
    assert status == "processing"


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


async def test_a_photo_acknowledged_before_a_kill_9_is_processed_after_restart(
    paused: Api, settings: Settings, seaweed: Any, tmp_path: Path
) -> None:
    api = paused  # seeds and reads the database; no worker of its own
    # The first server acknowledges and then dies (-9) before any worker touched the job.
    paused = make_settings(settings.database_url, seaweed, photo_job_interval_s=0)
    proc, base = start_live_server(paused, tmp_path)
    try:
        p: Photos = await scene_with_visit(api)
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            token = (
                await c.post(
                    "/v1/auth/token",
                    json={
                        "email": p.scene.ann["email"],
                        "password": "correct horse battery",
                        "device": "phone",
                    },
                )
            ).json()["access_token"]
            ann = {"Authorization": f"Bearer {token}"}
            ids = []
            for photo in (GPS_PHOTO, OTHER_PHOTOS[0]):
                form = _photo_form(p.visit["id"], photo.read_bytes())
                r = await c.post("/v1/evidence", headers=ann, files=form)
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
        for pid in _descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            stop_live_server(proc)
    # The second photo was mid-job in a process that died: claimed, its lease running.
    claimed = await api.conn.fetchrow(CLAIM_SQL, 1.0, "dead-host:1")
    assert claimed is not None
    rows = await api.conn.fetch("select evidence_id, attempts from evidence_jobs")
    assert len(rows) == 2

    # A new server (the same settings, its worker on) processes both.
    proc, base = start_live_server(settings, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as c, asyncio.timeout(180):
            for evidence_id in ids:
                while True:
                    got = await c.get(f"/v1/evidence/{evidence_id}", headers=ann)
                    assert got.status_code == 200, got.text
                    if got.json()["status"] != "processing":
                        break
                    await asyncio.sleep(0.05)  # between polls; the loop ends on the condition
                assert got.json()["status"] == "ready" and got.json()["urls"]["display"]
    finally:
        stop_live_server(proc)
    assert await api.conn.fetchval("select count(*) from evidence_jobs") == 0


def _photo_form(visit_id: str, content: bytes) -> dict[str, Any]:
    """The multipart parts of a phone's upload of ``content`` to the visit."""
    meta = {"evidence_id": str(uuid.uuid4()), "visit_id": visit_id}
    return {
        "metadata": (None, msgspec.json.encode(meta), "application/json"),
        "file": ("photo.jpg", content, "image/jpeg"),
    }


async def _hold_upload(base: str, headers: dict[str, str], visit_id: str, photo: bytes) -> Any:
    """A phone on a slow network: its upload's headers and half its body sent, the rest
    held back. Returns (send the rest and read the status)."""
    request = httpx.Request(
        "POST", base + "/v1/evidence", headers=headers, files=_photo_form(visit_id, photo)
    )
    body = request.read()
    host, port = request.url.host, request.url.port
    reader, writer = await asyncio.open_connection(host, port)
    head = ["POST /v1/evidence HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body[: len(body) // 2])
    await writer.drain()

    async def finish() -> int:
        writer.write(body[len(body) // 2 :])
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        writer.close()
        return status

    return finish


async def _status(api: Api, headers: dict[str, str], evidence_id: str, base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        r = await c.get(f"/v1/evidence/{evidence_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["status"]


async def _until_ready(api: Api, headers: dict[str, str], evidence_id: str, base: str) -> None:
    async with asyncio.timeout(120):  # a bound on the condition, not a duration
        while True:
            if await _status(api, headers, evidence_id, base) == "ready":
                return
            await asyncio.sleep(0.05)  # between polls; the loop ends on the condition


async def _until_receiving(folder: Path) -> None:
    """The held upload has reached the server's handler: its temp file exists."""
    async with asyncio.timeout(120):
        while True:
            if await asyncio.to_thread(lambda: any(folder.glob("evidence-*.upload"))):
                return
            await asyncio.sleep(0.02)  # between looks; the loop ends on the condition


async def test_uploads_come_first(database_url: str, seaweed: Any) -> None:
    """While an upload is being received, the photo workers claim nothing (PHOTO_DEFER_MAX_S,
    here longer than the test); when it ends, they go on."""
    st = make_settings(database_url, seaweed, photo_defer_max_s=600)
    async with app_api(st) as api:
        jobs, portal = api.client.app.state.photo_jobs, api.client.blocking_portal
        p = await scene_with_visit(api)
        ann = await api.login(p.scene.ann)
        receiving = jobs.receiving()
        portal.call(receiving.__enter__)  # in the app's loop, as the upload route does
        try:
            r = await p.upload(ann, GPS_PHOTO.read_bytes())
            assert r.status_code == 202, r.text
            async with asyncio.timeout(120):  # a bound on the condition, not a duration
                while True:  # until a worker woke for the photo and is waiting
                    if jobs.deferred:
                        break
                    await asyncio.sleep(0.02)
            # Deferred, not claimed: still processing, no attempt made.
            assert (await api.client.get(r.json()["poll"], headers=ann)).json()[
                "status"
            ] == "processing"
            assert await api.conn.fetchval("select attempts from evidence_jobs") == 0
        finally:
            portal.call(receiving.__exit__, None, None, None)
        assert (await settled(api, ann, r))["status"] == "ready"


async def test_uploads_never_stall_the_queue(
    paused: Api, settings: Settings, seaweed: Any, tmp_path: Path
) -> None:
    """A real phone's upload held half-sent for longer than PHOTO_DEFER_MAX_S: the photo
    acknowledged meanwhile is processed anyway, and the held one when it arrives."""
    api = paused  # seeds the database; no worker of its own
    live = make_settings(settings.database_url, seaweed, photo_defer_max_s=0.05)
    proc, base = start_live_server(live, tmp_path)
    try:
        p: Photos = await scene_with_visit(api)
        ann = await api.login(p.scene.ann)
        finish = await _hold_upload(base, ann, p.visit["id"], OTHER_PHOTOS[1].read_bytes())
        await _until_receiving(tmp_path / "coassess-uploads")
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            form = _photo_form(p.visit["id"], GPS_PHOTO.read_bytes())
            r = await c.post("/v1/evidence", headers=ann, files=form)
        assert r.status_code == 202, r.text
        await _until_ready(api, ann, r.json()["id"], base)  # while the other is still held
        assert await finish() == 202
        ids = await api.conn.fetch(
            "select id from evidence where visit_id = $1", uuid.UUID(p.visit["id"])
        )
        assert len(ids) == 2
        for row in ids:
            await _until_ready(api, ann, str(row["id"]), base)
    finally:
        stop_live_server(proc)
