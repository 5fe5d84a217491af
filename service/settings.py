"""All settings, read once from environment variables (documented in the README)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    # PostgreSQL DSN. Unset: `python -m service serve` starts an embedded cluster in DATA_DIR.
    database_url: str | None = None
    db_pool_min: int = 2
    db_pool_max: int = 10
    # S3-compatible store. Unset endpoint: serve starts SeaweedFS in DATA_DIR.
    s3_endpoint_url: str | None = None
    s3_bucket: str = "coassess"
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    # Signing key for access tokens; serve generates one into DATA_DIR when unset.
    jwt_secret: str | None = None
    access_token_ttl_s: int = 900
    refresh_token_ttl_days: int = 60
    invite_ttl_days: int = 14
    # Request bodies above this are refused with 413 (photo routes set their own cap).
    max_body_bytes: int = 1_000_000
    signin_rate_per_minute: int = 10
    # argon2id cost; the defaults are argon2-cffi's RFC 9106 "low memory" profile.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    data_dir: str = str(ROOT / ".data")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Each field from the upper-cased environment variable of its name."""
        env = dict(os.environ if env is None else env)
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = env.get(name.upper())
            if value not in (None, ""):
                raw[name] = value
        raw.update(overrides)
        return msgspec.convert(raw, cls, strict=False)
