"""The S3-compatible object store: one shared boto3 client, every call in a thread."""

from __future__ import annotations

import asyncio
from typing import Any

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
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
                max_pool_connections=32,
            ),
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
