"""Faults against a real server process: an upload cut off half-way leaves nothing behind;
a server killed with -9 mid-upload leaves no processes and, once a server starts again on
the same folder, no temp files. Conditions are waited for, never durations."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec

from service.settings import Settings
from tests.conftest import make_settings, start_live_server, stop_live_server
from tests.helpers import Api
from tests.scenes import GPS_PHOTO, bucket_keys, scene_with_visit

DEADLINE_S = 120  # a bound on waiting for a condition, never a duration waited


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while not (result := condition()):
        assert time.monotonic() < deadline, f"still not {what} after {DEADLINE_S} s"
        time.sleep(0.05)  # a pause between looks, not a wait for something
    return result


def temp_files(folder: Path) -> list[str]:
    """Photos being received (evidence-<pid>-<random>.upload), anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("evidence-*.upload"))


async def _token(base: str, email: str) -> str:
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post(
            "/v1/auth/token",
            json={"email": email, "password": "correct horse battery", "device": "phone"},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _multipart(visit_id: str, photo: bytes) -> tuple[str, bytes]:
    boundary = "----fault" + uuid.uuid4().hex
    meta = msgspec.json.encode({"evidence_id": str(uuid.uuid4()), "visit_id": visit_id})
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n'
        f"Content-Type: application/json\r\n\r\n".encode()
        + meta
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return boundary, body


async def _ready_to_upload(api: Api, base: str) -> tuple[Any, str, str, bytes]:
    """A visit, Ann's token, and a whole photo upload's boundary and body."""
    p = await scene_with_visit(api)
    token = await _token(base, p.scene.ann["email"])
    boundary, body = _multipart(p.visit["id"], GPS_PHOTO.read_bytes())
    return p, token, boundary, body


async def _upload(c: httpx.AsyncClient, token: str, boundary: str, body: bytes) -> httpx.Response:
    """The whole upload, as a phone sends it."""
    r = await c.post(
        "/v1/evidence",
        headers={
            **_bearer(token),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        content=body,
    )
    assert r.status_code in (201, 202), r.text
    return r


def _head(base: str, token: str, boundary: str, length: int) -> bytes:
    host = base.removeprefix("http://")
    return (
        f"POST /v1/evidence HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


async def test_upload_cut_off_half_way_leaves_no_row_object_or_temp_file(
    api: Api, live_server: tuple[str, Path]
) -> None:
    base, tmp = live_server
    p, token, boundary, body = await _ready_to_upload(api, base)

    def send_half_and_hang_up() -> list[str]:
        with _connect(base) as s:
            s.sendall(_head(base, token, boundary, len(body)) + body[: len(body) // 2])
            # The server is streaming the photo to a temp file (in the upload folder).
            return wait_for(lambda: temp_files(tmp), "receiving")

    during = await asyncio.to_thread(send_half_and_hang_up)
    assert len(during) == 1
    assert during[0].startswith("evidence-")
    await asyncio.to_thread(wait_for, lambda: not temp_files(tmp), "removed after the hang-up")
    assert await api.conn.fetchval("select count(*) from evidence") == 0
    assert await bucket_keys(api, p.scene.org) == []
    # The server is fine and the same upload, sent whole, works.
    async with httpx.AsyncClient(base_url=base) as c:
        await _upload(c, token, boundary, body)


async def test_slow_uploads_do_not_starve_the_database_pool(
    api: Api, live_server: tuple[str, Path]
) -> None:
    """Phones on bad networks: a dozen uploads stuck half-way (more than the pool holds)."""
    base, tmp = live_server
    p, token, boundary, body = await _ready_to_upload(api, base)
    socks = [_connect(base) for _ in range(12)]
    try:
        for s in socks:
            s.sendall(_head(base, token, boundary, len(body)) + body[:50_000])
        await asyncio.to_thread(
            wait_for, lambda: len(temp_files(tmp)) == len(socks), "receiving all 12"
        )
        # Were a connection held per upload, this would wait for one forever (no timeout
        # on the pool): the generous client timeout turns that into a failure.
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            r = await c.get("/v1/me/visits", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
    finally:
        for s in socks:
            s.close()


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process we can see."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            out[int(entry.name)] = (int(fields[1]), fields[0])
    return out


def _descendants(root: int) -> set[int]:
    procs = _processes()
    found, todo = set(), [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, _) in procs.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those still running (a zombie is dead: it only waits to be reaped)."""
    procs = _processes()
    return {pid for pid in pids if pid in procs and procs[pid][1] != "Z"}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def test_kill_9_mid_upload_leaves_no_processes_and_no_temp_files(
    settings: Settings, seaweed: Any, tmp_path: Path
) -> None:
    uploads = tmp_path / "uploads"
    live = make_settings(settings.database_url, seaweed, upload_tmp_dir=str(uploads))
    proc, base = start_live_server(live, tmp_path)
    conn = await asyncpg.connect(settings.database_url)
    try:
        # Everything through the live server (an app in this process would take its jobs).
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            live_api = Api(client, conn)  # type: ignore[arg-type]
            p, token, boundary, body = await _ready_to_upload(live_api, base)
        # One whole upload first, so the photo-decoding processes exist.
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            r = await _upload(c, token, boundary, body)
            # Decoded now (201) or soon (202: queued).
            deadline, evidence = time.monotonic() + DEADLINE_S, r.json()
            while evidence["status"] != "ready":
                assert evidence["status"] == "processing" and time.monotonic() < deadline, evidence
                await asyncio.sleep(0.1)  # a pause between looks
                got = await c.get(f"/v1/evidence/{evidence['id']}", headers=_bearer(token))
                evidence = got.json()
        workers = {pid for pid, (ppid, _) in _processes().items() if ppid == proc.pid}
        assert workers
        helpers = _descendants(proc.pid) - workers
        assert any("forkserver" in _cmdline(pid) for pid in helpers), helpers
        # Uploads streaming slowly from phones, received into temp files...
        socks = [_connect(base) for _ in range(4)]
        try:
            for s in socks:
                boundary, body = _multipart(p.visit["id"], GPS_PHOTO.read_bytes())
                s.sendall(_head(base, token, boundary, len(body)) + body[: len(body) // 2])
            await asyncio.to_thread(
                wait_for, lambda: len(temp_files(uploads)) == len(socks), "receiving all 4"
            )
            helpers = _descendants(proc.pid) - workers
            # ... when the server is killed: its workers and the granian master, -9.
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()
        finally:
            for s in socks:
                s.close()
    finally:
        await conn.close()
        if proc.poll() is None:
            stop_live_server(proc)

    # Nothing the app started outlives it: decoding processes, their forkserver...
    await asyncio.to_thread(
        wait_for, lambda: not _alive(helpers | workers), "ended with the killed server"
    )
    # ... and the half-received photos (originals with GPS) are in the app's own folder,
    # readable by nobody else, until a server starts again on it.
    assert len(temp_files(uploads)) == 4
    assert uploads.stat().st_mode & 0o777 == 0o700
    assert temp_files(tmp_path) == temp_files(uploads)  # none in the system temp folder
    proc, _ = start_live_server(live, tmp_path)
    try:
        assert temp_files(uploads) == []
    finally:
        stop_live_server(proc)


def test_the_sweep_removes_dead_processes_and_stalled_uploads_only(tmp_path: Path) -> None:
    from inspections.evidence.upload import remove_leftovers

    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid names no process now
    mine = os.getpid()
    old = time.time() - 7200
    names = {
        "dead": f"evidence-{dead.pid}-a.upload",  # its process died mid-upload
        "stalled": f"evidence-{mine}-b.upload",  # nothing written for 2 hours
        "receiving": f"evidence-{mine}-c.upload",  # in flight right now
        "other": "notes.txt",  # not ours to remove
    }
    for key, name in names.items():
        (tmp_path / name).write_bytes(b"x")
        if key in ("stalled", "other"):
            os.utime(tmp_path / name, (old, old))
    assert remove_leftovers(tmp_path, older_than_s=3600) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [names["receiving"], names["other"]]
    )
