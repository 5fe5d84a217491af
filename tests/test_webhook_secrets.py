"""Webhook signing secrets: encrypted at rest, and rotated with an overlap.

Deliveries go to a real HTTP receiver on 127.0.0.1 and are checked as a receiver would
(tests.scenes.signed_with, written independently of the app's sign()); the database is
the suite's real PostgreSQL. The overlap's end is reached by moving the stored expiry into
the past (or by an overlap of 0), never by waiting.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest

from inspections.notifications.outbox import Notice, enqueue
from inspections.notifications.webhook_secrets import (
    SecretKeyError,
    UndecryptableSecret,
    cipher,
    encrypt_plaintext,
    seal,
    unseal,
)
from service import db
from service.settings import Settings
from tests.conftest import Receiver, Worker, app_api
from tests.helpers import Api, assert_problem, deliver_once
from tests.scenes import org_with_webhook, signed_with


@pytest.fixture
def settings(mail_settings: Settings) -> Settings:
    return mail_settings  # webhooks to the receiver on 127.0.0.1; no worker of the app's


async def _coordinator(api: Api, org: str) -> dict[str, str]:
    return await api.login(await api.user(org, "coordinator"))


async def _rotate(api: Api, headers: dict[str, str], hook_id: str) -> dict[str, Any]:
    r = await api.client.post(f"/v1/webhooks/{hook_id}/rotate-secret", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _publish(api: Api, org: str, webhooks: int = 1) -> None:
    """A report.published event in the outbox, committed, as the findings slice writes it."""
    await db._init_connection(api.conn)  # the pool's jsonb codec
    report = str(uuid.uuid4())
    notice = Notice(
        event="report.published",
        key=f"report.published:{report}",
        subject="Report published",
        text="The report is published.",
        payload={"report_id": report},
    )
    async with api.conn.transaction():
        assert await enqueue(api.conn, UUID(org), notice, []) == webhooks


async def _delivered(api: Api, org: str, worker: Worker, receiver: Receiver) -> dict[str, Any]:
    """Publish one event, deliver it, and return the request the receiver got."""
    before = len(receiver.requests)
    await _publish(api, org)
    report = await worker.deliver()
    assert report.delivered == 1, await api.conn.fetchval("select last_error from outbox")
    assert len(receiver.requests) == before + 1
    return receiver.requests[-1]


def _verifies(secret: str, request: dict[str, Any]) -> bool:
    return signed_with(secret, request["headers"], request["body"])


def _signatures(request: dict[str, Any]) -> list[str]:
    return request["headers"]["webhook-signature"].split(" ")


async def test_the_database_holds_no_plaintext_secret_and_deliveries_verify(
    api: Api, worker: Worker, receiver: Receiver
) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, "report.published")
    secret = hook["secret"]
    assert secret.startswith("whsec_")

    row = await api.conn.fetchrow("select * from webhooks where id = $1", UUID(hook["id"]))
    assert row["secret"] is None  # no plain-text column value
    stored = bytes(row["secret_encrypted"])
    key = base64.b64decode(secret.removeprefix("whsec_"))
    assert secret.encode() not in stored and key not in stored
    assert secret.removeprefix("whsec_").encode() not in stored
    # Nothing in the whole row (every column, as text) carries it either.
    as_text = await api.conn.fetchval("select w::text from webhooks w where id = $1", row["id"])
    assert secret not in as_text and secret.removeprefix("whsec_") not in as_text

    # The GET never returns it.
    listed = (await api.client.get("/v1/webhooks", headers=coord)).json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0] and secret not in str(listed)

    request = await _delivered(api, org, worker, receiver)
    assert len(_signatures(request)) == 1
    assert _verifies(secret, request)
    assert not _verifies("whsec_" + base64.b64encode(b"x" * 32).decode(), request)


async def test_after_rotation_both_secrets_verify_during_the_overlap_then_only_the_new(
    api: Api, worker: Worker, receiver: Receiver, settings: Settings
) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, "report.published")
    old = hook["secret"]

    rotated = await _rotate(api, coord, hook["id"])
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated["id"] == hook["id"] and rotated["url"] == hook["url"]
    overlap = await api.conn.fetchval(
        "select previous_secret_until - now() from webhooks where id = $1", UUID(hook["id"])
    )
    assert abs(overlap.total_seconds() - settings.webhook_secret_overlap_s) < 60
    assert settings.webhook_secret_overlap_s == 86400  # the default: a day

    # During the overlap a receiver holding either secret accepts the delivery.
    during = await _delivered(api, org, worker, receiver)
    assert len(_signatures(during)) == 2
    assert _verifies(new, during) and _verifies(old, during)
    newest_first = {**during["headers"], "webhook-signature": _signatures(during)[0]}
    assert signed_with(new, newest_first, during["body"])
    # The new secret is not stored in plain text either; the old one is kept encrypted.
    row = await api.conn.fetchval("select w::text from webhooks w where id = $1", UUID(hook["id"]))
    assert new not in row and old not in row

    # The overlap ends (the stored expiry moved into the past: the clock, not a wait).
    await api.conn.execute(
        "update webhooks set previous_secret_until = now() - interval '1 second'"
    )
    after = await _delivered(api, org, worker, receiver)
    assert len(_signatures(after)) == 1
    assert _verifies(new, after) and not _verifies(old, after)

    # Audited by ids only: no secret in the log.
    audit = await api.conn.fetch(
        "select action, object_id, summary::text as summary from audit_log "
        "where object_type = 'webhook' order by id"
    )
    assert [a["action"] for a in audit] == ["webhook.create", "webhook.rotate_secret"]
    assert str(audit[1]["object_id"]) == hook["id"]
    assert all(s not in a["summary"] for a in audit for s in (old, new))


async def test_rotating_twice_within_the_overlap_drops_the_oldest_secret(
    api: Api, worker: Worker, receiver: Receiver
) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, "report.published")
    first = hook["secret"]
    second = (await _rotate(api, coord, hook["id"]))["secret"]
    third = (await _rotate(api, coord, hook["id"]))["secret"]

    request = await _delivered(api, org, worker, receiver)
    assert len(_signatures(request)) == 2
    assert _verifies(third, request) and _verifies(second, request)
    assert not _verifies(first, request)


async def test_with_no_overlap_only_the_new_secret_signs_at_once(
    settings: Settings, worker: Worker, receiver: Receiver
) -> None:
    async with app_api(msgspec.structs.replace(settings, webhook_secret_overlap_s=0)) as api:
        org = await api.org()
        coord = await _coordinator(api, org)
        old = (hook := await api.webhook(coord, receiver.url, "report.published"))["secret"]
        new = (await _rotate(api, coord, hook["id"]))["secret"]
        request = await _delivered(api, org, worker, receiver)
        assert _signatures(request) and len(_signatures(request)) == 1
        assert _verifies(new, request) and not _verifies(old, request)


async def test_only_the_organisations_coordinators_can_rotate(api: Api, receiver: Receiver) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, "report.published")
    hook_id = UUID(hook["id"])
    before = await api.conn.fetchrow("select * from webhooks where id = $1", hook_id)
    stranger = await _coordinator(api, await api.org("Southshire Healthwatch"))
    citizen = await api.login(await api.user(org, "citizen_inspector"))
    manager = await api.login(await api.user(org, "service_manager"))
    path = f"/v1/webhooks/{hook['id']}/rotate-secret"

    body = assert_problem(await api.client.post(path, headers=stranger), 404)
    assert "secret" not in body
    assert_problem(await api.client.post(path, headers=citizen), 403)
    assert_problem(await api.client.post(path, headers=manager), 403)
    assert_problem(await api.client.post(path), 401)
    assert_problem(
        await api.client.post(f"/v1/webhooks/{uuid.uuid4()}/rotate-secret", headers=coord), 404
    )

    # Nothing changed: the same stored secret, no previous one, no audit row.
    after = await api.conn.fetchrow("select * from webhooks where id = $1", hook_id)
    assert dict(after) == dict(before)
    assert after["previous_secret_encrypted"] is None
    actions = await api.conn.fetch("select action from audit_log where object_type = 'webhook'")
    assert [a["action"] for a in actions] == ["webhook.create"]

    # A deactivated webhook sends nothing: there is nothing to rotate.
    assert (await api.client.delete(f"/v1/webhooks/{hook['id']}", headers=coord)).status_code == 204
    assert_problem(await api.client.post(path, headers=coord), 409)


async def _old_schema_hook(api: Api, org: str, url: str, secret: str) -> UUID:
    """A webhook as the schema before encryption stored it: the secret in plain text."""
    user = await api.user(org, "coordinator")
    return await api.conn.fetchval(
        """insert into webhooks (organisation_id, url, secret, events, created_by)
           values ($1, $2, $3, '{report.published}', $4) returning id""",
        UUID(org),
        url,
        secret,
        user["id"],
    )


async def test_plaintext_secrets_left_by_the_old_schema_are_encrypted_at_start_up(
    settings: Settings, worker: Worker, receiver: Receiver
) -> None:
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    # The suite's app is started (and its start-up step runs) only after the rows exist.
    async with app_api(settings) as first:
        org = await first.org()
        hooks = [await _old_schema_hook(first, org, receiver.url, secret) for _ in range(3)]
    async with app_api(settings) as api:  # a (re)start of the app: the step runs
        rows = await api.conn.fetch("select * from webhooks order by id")
        assert {r["id"] for r in rows} == set(hooks)
        assert all(r["secret"] is None for r in rows)
        assert all(secret not in bytes(r["secret_encrypted"]).decode("latin-1") for r in rows)
        assert all(unseal(settings, r["id"], r["secret_encrypted"]) == secret for r in rows)
        sealed = {r["id"]: bytes(r["secret_encrypted"]) for r in rows}
        # Each row its own nonce: the same secret is never the same stored bytes.
        assert len(set(sealed.values())) == 3

        # The receiver's secret still verifies what is sent (one row per webhook).
        await _publish(api, org, webhooks=3)
        assert (await worker.deliver()).delivered == 3
        assert all(_verifies(secret, r) for r in receiver.requests)

    # Idempotent: another start, and the step beside itself, change nothing.
    async with app_api(settings) as api:
        again = await asyncio.gather(*(encrypt_plaintext(worker.pool, settings) for _ in range(2)))
        assert again == [0, 0]
        rows = await api.conn.fetch("select id, secret_encrypted from webhooks")
        assert {r["id"]: bytes(r["secret_encrypted"]) for r in rows} == sealed


async def test_several_processes_sealing_at_once_each_seal_a_row_once(
    api: Api, worker: Worker, settings: Settings, receiver: Receiver
) -> None:
    org = await api.org()
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    for _ in range(6):
        await _old_schema_hook(api, org, receiver.url, secret)
    counts = await asyncio.gather(*(encrypt_plaintext(worker.pool, settings) for _ in range(3)))
    assert sum(counts) == 6  # every row sealed, none twice
    rows = await api.conn.fetch("select id, secret, secret_encrypted from webhooks")
    assert all(r["secret"] is None for r in rows)
    assert all(unseal(settings, r["id"], r["secret_encrypted"]) == secret for r in rows)


async def test_a_wrong_key_cannot_decrypt_and_the_delivery_waits_for_the_right_one(
    api: Api, worker: Worker, receiver: Receiver, settings: Settings
) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, "report.published")
    await _publish(api, org)

    wrong = msgspec.structs.replace(
        settings, webhook_secret_key=base64.b64encode(b"k" * 32).decode()
    )
    report = await worker.deliver(wrong)
    assert (report.claimed, report.delivered, report.retrying, report.failed) == (1, 0, 1, 0)
    assert receiver.requests == []  # nothing sent unsigned or wrongly signed
    row = await api.conn.fetchrow(
        "select *, next_attempt_at > now() as later from outbox where recipient = $1",
        hook["id"],
    )
    assert "does not decrypt" in row["last_error"] and "WEBHOOK_SECRET_KEY" in row["last_error"]
    assert row["later"] and row["failed_at"] is None  # backoff, not a loop
    assert (await worker.deliver(wrong)).claimed == 0  # not due again at once

    # The key is put right: the waiting delivery goes, signed with the registered secret.
    await api.conn.execute("update outbox set next_attempt_at = now()")
    assert (await worker.deliver()).delivered == 1
    assert _verifies(hook["secret"], receiver.requests[0])

    # A secret stored under an earlier key (the key was changed): rotating it gives a new
    # secret that signs alone; the unreadable previous one does not stop deliveries.
    await api.conn.execute(
        "update webhooks set secret_encrypted = $2 where id = $1",
        UUID(hook["id"]),
        seal(wrong, UUID(hook["id"]), hook["secret"]),
    )
    new = (await _rotate(api, coord, hook["id"]))["secret"]
    request = await _delivered(api, org, worker, receiver)
    assert len(_signatures(request)) == 1 and _verifies(new, request)


async def test_a_wrong_key_is_said_at_start_up(
    api: Api, settings: Settings, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    org, _, hook = await org_with_webhook(api, receiver.url, "report.published")
    wrong = msgspec.structs.replace(
        settings, webhook_secret_key=base64.b64encode(b"k" * 32).decode()
    )
    # On the slice's logger itself: starting an app resets the root logger's handlers.
    logger = logging.getLogger("inspections.notifications")
    logger.addHandler(caplog.handler)
    try:
        async with app_api(wrong):
            pass
    finally:
        logger.removeHandler(caplog.handler)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("not the key the webhook secrets were stored with" in r.getMessage() for r in errors)
    assert hook["secret"] not in caplog.text


def test_the_key_setting_and_the_associated_data() -> None:
    settings = Settings(jwt_secret="a" * 48)
    webhook, other = uuid.uuid4(), uuid.uuid4()
    sealed = seal(settings, webhook, "whsec_abc")
    assert unseal(settings, webhook, sealed) == "whsec_abc"
    # A ciphertext copied onto another webhook's row does not decrypt there.
    with pytest.raises(UndecryptableSecret):
        unseal(settings, other, sealed)
    # The derived key depends on the JWT secret; a configured key replaces it.
    with pytest.raises(UndecryptableSecret):
        unseal(Settings(jwt_secret="b" * 48), webhook, sealed)
    key = base64.b64encode(b"z" * 32).decode()
    configured = Settings(jwt_secret="a" * 48, webhook_secret_key=key)
    with pytest.raises(UndecryptableSecret):
        unseal(configured, webhook, sealed)
    assert unseal(configured, webhook, seal(configured, webhook, "whsec_x")) == "whsec_x"
    # A malformed key is refused with its reason (the app does not start with one).
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(SecretKeyError, match="base64 of 32"):
            cipher(Settings(jwt_secret="a" * 48, webhook_secret_key=bad))
    with pytest.raises(SecretKeyError, match="WEBHOOK_SECRET_KEY or JWT_SECRET"):
        cipher(Settings(data_dir="/nonexistent"))


async def test_the_rotation_route_is_documented_with_its_problems(api: Api) -> None:
    schema = (await api.client.get("/schema/openapi.json")).json()
    op = schema["paths"]["/v1/webhooks/{webhook_id}/rotate-secret"]["post"]
    assert {"200", "401", "403", "404", "409"} <= set(op["responses"])
    assert "previous" in op["description"] and "space" in op["description"]
    for status in ("401", "403", "404", "409"):
        assert "application/problem+json" in op["responses"][status]["content"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert "$ref" in ok  # the WebhookSecretRotated body, with the secret and its overlap


async def test_no_secret_reaches_a_log_line(
    api: Api, worker: Worker, receiver: Receiver, app_logs: pytest.LogCaptureFixture
) -> None:
    org, coord, hook = await org_with_webhook(api, receiver.url, "report.published")
    new = (await _rotate(api, coord, hook["id"]))["secret"]
    receiver.fail = 1  # a failed attempt is logged too
    await _publish(api, org)
    assert (await worker.deliver()).retrying == 1
    assert any(r.name == "service.access" for r in app_logs.records)  # requests were logged
    for secret in (hook["secret"], new):
        assert secret not in app_logs.text
        assert all(secret not in str(vars(r)) for r in app_logs.records)


async def test_the_deliver_command_beside_serve_finds_the_key_in_the_data_folder(
    api: Api, settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    """`python -m service deliver` gets no JWT_SECRET from scripts/serve: it reads the one
    serve generated into DATA_DIR, and so signs with the registered secret."""
    org, _, hook = await org_with_webhook(api, receiver.url, "report.published")
    await _publish(api, org)
    assert settings.jwt_secret and settings.webhook_secret_key is None
    (tmp_path / "jwt_secret").write_text(settings.jwt_secret + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "WEBHOOK_SECRET_KEY")}
    env |= {
        "DATABASE_URL": settings.database_url or "",
        "DATA_DIR": str(tmp_path),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "LOG_LEVEL": "WARNING",
    }
    assert (await deliver_once(env))["delivered"] == 1
    (request,) = receiver.requests
    assert _verifies(hook["secret"], request)
