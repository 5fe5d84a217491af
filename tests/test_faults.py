"""Faults against a real server process: an upload cut off half-way leaves nothing behind."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from pathlib import Path

import httpx
import msgspec

from tests.helpers import Api
from tests.test_evidence import GPS_PHOTO, bucket_keys, scene_with_visit


async def test_upload_cut_off_half_way_leaves_no_row_object_or_temp_file(
    api: Api, live_server: tuple[str, Path]
) -> None:
    base, tmp = live_server
    p = await scene_with_visit(api)
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post(
            "/v1/auth/token",
            json={
                "email": p.scene.ann["email"],
                "password": "correct horse battery",
                "device": "phone",
            },
        )
        token = r.json()["access_token"]
    photo = GPS_PHOTO.read_bytes()
    boundary = "----cutoff" + uuid.uuid4().hex
    meta = msgspec.json.encode({"evidence_id": str(uuid.uuid4()), "visit_id": p.visit["id"]})
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n'
        f"Content-Type: application/json\r\n\r\n".encode()
        + meta
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST /v1/evidence HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    def send_half_and_hang_up() -> list[str]:
        with socket.create_connection((host, int(port))) as s:
            s.sendall(head + body[: len(body) // 2])
            time.sleep(0.3)  # the server is now streaming the photo to a temp file
            return [f.name for f in tmp.iterdir() if f.name.startswith("evidence-")]

    during = await asyncio.to_thread(send_half_and_hang_up)
    assert len(during) == 1  # the half-sent photo was being received
    await asyncio.sleep(0.5)
    assert await api.conn.fetchval("select count(*) from evidence") == 0
    assert await bucket_keys(api, p.scene.org) == []
    assert [f.name for f in tmp.iterdir() if f.name.startswith("evidence-")] == []
    # The server is fine and the same upload, sent whole, works.
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post(
            "/v1/evidence",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
            content=body,
        )
    assert r.status_code == 201, r.text


async def test_slow_uploads_do_not_starve_the_database_pool(
    api: Api, live_server: tuple[str, Path]
) -> None:
    """Phones on bad networks: a dozen uploads stuck half-way (more than the pool holds)."""
    base, _ = live_server
    p = await scene_with_visit(api)
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post(
            "/v1/auth/token",
            json={
                "email": p.scene.ann["email"],
                "password": "correct horse battery",
                "device": "phone",
            },
        )
        token = r.json()["access_token"]
    host, port = base.removeprefix("http://").split(":")
    boundary = "----slow" + uuid.uuid4().hex
    head = (
        f"POST /v1/evidence HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: 5000000\r\n\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="p.jpg"\r\n\r\n'
    ).encode() + GPS_PHOTO.read_bytes()[:50_000]
    socks = [socket.create_connection((host, int(port))) for _ in range(12)]
    try:
        for s in socks:
            s.sendall(head)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=base, timeout=3) as c:
            started = time.monotonic()
            r = await c.get("/v1/me/visits", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and time.monotonic() - started < 1
    finally:
        for s in socks:
            s.close()
