"""Photos reach the store with their SHA-256 as checksum: bytes changed on the way are
refused by the store (SeaweedFS here, S3 alike), never kept as evidence."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from service.storage import ObjectStore
from tests.helpers import Api


def _store(api: Api) -> ObjectStore:
    s = api.client.app.state.settings
    keys = (s.s3_access_key, s.s3_secret_key)
    return ObjectStore(s.s3_endpoint_url, s.s3_bucket, s.s3_region, *keys)


async def test_bytes_stored_with_their_checksum_read_back_the_same(api: Api) -> None:
    store, body = _store(api), os.urandom(300_000)
    try:
        await asyncio.to_thread(store.put, "checks/ok", body, "image/jpeg")
        got = await store.call("get_object", Bucket=store.bucket, Key="checks/ok")
        assert await asyncio.to_thread(got["Body"].read) == body
        assert got["ContentType"] == "image/jpeg"
    finally:
        store.close()


async def test_bytes_that_differ_from_their_checksum_are_refused_and_not_stored(
    api: Api, tmp_path
) -> None:
    store, body = _store(api), os.urandom(300_000)
    path = tmp_path / "photo"
    path.write_bytes(body)
    changed = hashlib.sha256(body + b"!").digest()  # what arrived is not what was sent
    try:
        with pytest.raises(ClientError) as refused, path.open("rb") as f:
            await asyncio.to_thread(store.put, "checks/bad", f, "image/jpeg", sha256=changed)
        assert refused.value.response["Error"]["Code"] == "BadDigest"
        listed = await store.call("list_objects_v2", Bucket=store.bucket, Prefix="checks/bad")
        assert listed.get("KeyCount", 0) == 0
    finally:
        store.close()


def test_a_file_body_needs_its_checksum(api: Api, tmp_path) -> None:
    store = _store(api)
    path = tmp_path / "photo"
    path.write_bytes(b"x")
    try:
        with pytest.raises(TypeError), path.open("rb") as f:
            store.put("checks/none", f, "image/jpeg")
    finally:
        store.close()
