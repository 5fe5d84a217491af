"""The S3-compatible object store: one shared boto3 client, every call in a thread."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import IO, Any

import boto3
from botocore.config import Config


class ObjectStore:
    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        region: str,
        access_key: str | None,
        secret_key: str | None,
    ) -> None:
        self.bucket = bucket
        # boto3 clients are thread-safe; one per process, shared by all requests.
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                signature_version="s3v4",
                # Bodies go with their SHA-256 as checksum (see put), so botocore need not
                # hash and CRC each one again to sign it.
                s3={"addressing_style": "path", "payload_signing_enabled": False},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
                max_pool_connections=32,
            ),
        )

    def put(
        self,
        key: str,
        body: bytes | IO[bytes],
        content_type: str,
        *,
        sha256: bytes | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store ``body`` (blocking: run it in a thread) with its SHA-256, given for a file
        (hashed as it was received) or computed for bytes, as the object's checksum: the
        store refuses bytes that differ (BadDigest), and the signed header covers them."""
        if sha256 is None:
            if not isinstance(body, bytes):
                raise TypeError("a file body needs its sha256")
            sha256 = hashlib.sha256(body).digest()
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumSHA256=base64.b64encode(sha256).decode(),
            **({"Metadata": metadata} if metadata else {}),
        )

    async def call(self, method: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.client, method), **kwargs)

    async def ping(self) -> None:
        await self.call("head_bucket", Bucket=self.bucket)

    async def ensure_bucket(self) -> None:
        try:
            await self.ping()
        except self.client.exceptions.ClientError:
            await self.call("create_bucket", Bucket=self.bucket)

    def close(self) -> None:
        self.client.close()
