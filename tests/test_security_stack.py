"""The embedded stack (scripts/serve and the suite's own) is closed to other local users:
PostgreSQL wants its generated password, S3 wants its generated keys, and the files holding
them are readable by their owner alone."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.devstack import Postgres, SeaweedFS, private_secret


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_postgres_refuses_a_connection_without_its_password(postgres: Postgres) -> None:
    assert _mode(postgres.password_file) == 0o600
    assert ":" in postgres.dsn().split("@")[0].removeprefix("postgresql://")
    conn = await asyncpg.connect(postgres.dsn())  # with the password: in
    assert await conn.fetchval("select 1") == 1
    await conn.close()
    nopass = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    with pytest.raises(
        (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
    ):
        await asyncpg.connect(nopass, password="")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(nopass, password="postgres")


def test_the_store_refuses_an_anonymous_read_and_its_keys_are_not_defaults(
    seaweed: SeaweedFS,
) -> None:
    assert seaweed.access_key not in ("", "devaccess") and len(seaweed.secret_key) >= 40
    for name in ("s3-access-key", "s3-secret-key", "s3-identities.json"):
        assert _mode(seaweed.data_dir / name) == 0o600, name
    seaweed.s3_client().put_object(
        Bucket="coassess-test", Key="private/probe.txt", Body=b"an original with GPS"
    )
    anonymous = httpx.get(f"{seaweed.endpoint}/coassess-test/private/probe.txt")
    assert anonymous.status_code in (401, 403), anonymous.status_code
    listing = httpx.get(f"{seaweed.endpoint}/coassess-test")
    assert listing.status_code in (401, 403) and b"probe.txt" not in listing.content
    # Nor through the filer's or the volume server's own HTTP ports (they want a JWT signed
    # with this stack's key, which only its S3 gateway holds).
    for flag in ("filer.port", "volume.port"):
        base = f"http://127.0.0.1:{seaweed._ports[flag]}"
        for path in ("/buckets/coassess-test/private/probe.txt", "/buckets/coassess-test/", "/"):
            r = httpx.get(base + path, headers={"Accept": "application/json"})
            assert r.status_code == 401 and b"an original" not in r.content, (flag, path)
    assert _mode(seaweed.data_dir / "security.toml") == 0o600


def test_a_generated_secret_is_created_private_and_kept(tmp_path: Path) -> None:
    first = private_secret(tmp_path / "secret")
    assert _mode(tmp_path / "secret") == 0o600 and len(first) >= 40
    assert private_secret(tmp_path / "secret") == first
    other = private_secret(tmp_path / "other")
    assert other != first
