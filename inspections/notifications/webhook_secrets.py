"""Webhook signing secrets at rest: AES-256-GCM under a key from the settings.

A stored secret is ``nonce (12 random bytes) + ciphertext and tag``, sealed with the
webhook's id as associated data, so a value copied onto another webhook's row does not
decrypt. The key is ``WEBHOOK_SECRET_KEY`` (base64 of 32 bytes) or, when unset, derived
from the JWT secret with HKDF-SHA256 under a fixed label: ``scripts/serve`` needs nothing
new, and the two keys are never the same bytes. Secrets are decrypted only where a
delivery is signed (deliver.py); nothing here logs one.

Rows written before migration 0017 hold their secret in plain text (``webhooks.secret``);
``encrypt_plaintext`` seals and clears them at start-up.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.settings import Settings

log = logging.getLogger("inspections.notifications")

NONCE_BYTES = 12
KEY_BYTES = 32
# Changing the label changes the derived key: every stored secret would stop decrypting.
HKDF_INFO = b"coassess webhook secrets v1"


class SecretKeyError(RuntimeError):
    """The key setting is unusable (not base64 of 32 bytes), or there is no key at all."""


class UndecryptableSecret(Exception):
    """A stored secret that this key does not open (another key, or a tampered value)."""


def _jwt_secret(settings: Settings) -> str | None:
    if settings.jwt_secret:
        return settings.jwt_secret
    # The CLI (`python -m service deliver`) beside scripts/serve gets no JWT_SECRET in its
    # environment: serve generated one into the data folder (service/__main__.py). Only
    # read here, never created: a new one would be the wrong key.
    path = Path(settings.data_dir) / "jwt_secret"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


@functools.lru_cache(maxsize=8)
def _cipher(configured: str | None, jwt_secret: str | None) -> AESGCM:
    if configured:
        try:
            key = base64.b64decode(configured.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise SecretKeyError(
                "WEBHOOK_SECRET_KEY must be the base64 of 32 random bytes "
                "(for example: openssl rand -base64 32)"
            )
        return AESGCM(key)
    if not jwt_secret:
        raise SecretKeyError("no key for webhook secrets: set WEBHOOK_SECRET_KEY or JWT_SECRET")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=HKDF_INFO)
    return AESGCM(hkdf.derive(jwt_secret.encode()))


def cipher(settings: Settings) -> AESGCM:
    """The AES-256-GCM cipher of these settings; SecretKeyError when there is no usable key."""
    if settings.webhook_secret_key:
        return _cipher(settings.webhook_secret_key, None)
    return _cipher(None, _jwt_secret(settings))


def seal(settings: Settings, webhook_id: UUID, secret: str) -> bytes:
    """What is stored for ``secret``: a fresh random nonce, then the ciphertext and tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + cipher(settings).encrypt(nonce, secret.encode(), webhook_id.bytes)


def unseal(settings: Settings, webhook_id: UUID, sealed: bytes) -> str:
    """The secret ``seal`` stored for this webhook; UndecryptableSecret if the key is wrong."""
    try:
        plain = cipher(settings).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], webhook_id.bytes
        )
    except (InvalidTag, ValueError) as e:
        raise UndecryptableSecret(
            "the webhook's secret does not decrypt with this WEBHOOK_SECRET_KEY (or the "
            "JWT_SECRET it is derived from): restore the key it was stored with, or rotate "
            "the secret"
        ) from e
    return plain.decode()


def signing_secrets(settings: Settings, row: Mapping[str, Any]) -> list[str]:
    """The secrets a delivery is signed with: the current one, then the previous one while
    its overlap lasts. ``row`` carries the webhook's ``webhook_id``, ``secret`` (plain text,
    a row not yet sealed), ``secret_encrypted``, ``previous_secret_encrypted`` and
    ``previous_valid``."""
    if row["secret_encrypted"] is None:
        # Written before migration 0017 (or by a process not yet upgraded); the start-up
        # step seals it.
        return [row["secret"]]
    webhook_id = row["webhook_id"]
    secrets = [unseal(settings, webhook_id, row["secret_encrypted"])]
    if row["previous_valid"] and row["previous_secret_encrypted"] is not None:
        try:
            secrets.append(unseal(settings, webhook_id, row["previous_secret_encrypted"]))
        except UndecryptableSecret:
            # The current secret opened, so the key is right: the previous one was stored
            # under an earlier key (a rotation after the key changed). The new one signs.
            pass
    return secrets


async def encrypt_plaintext(pool: asyncpg.Pool, settings: Settings) -> int:
    """Seal every secret still stored in plain text and clear it; how many were sealed.

    Safe with several processes starting at once: each locks the rows it seals
    (``SKIP LOCKED``: another process's rows are its own to do), and a row is only
    written while it still holds plain text, so running it again changes nothing.
    """
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "select id, secret from webhooks where secret is not null for update skip locked"
        )
        if rows:
            await conn.executemany(
                """update webhooks set secret_encrypted = $2, secret = null
                    where id = $1 and secret is not null""",
                [(r["id"], seal(settings, r["id"], r["secret"])) for r in rows],
            )
    return len(rows)


async def check_key(pool: asyncpg.Pool, settings: Settings) -> bool:
    """Whether the key opens a stored secret (True when none is stored): a wrong key is
    said once at start-up, rather than only in each failed delivery."""
    row = await pool.fetchrow(
        "select id, secret_encrypted from webhooks where secret_encrypted is not null limit 1"
    )
    if row is None:
        return True
    try:
        unseal(settings, row["id"], row["secret_encrypted"])
    except UndecryptableSecret:
        return False
    return True
