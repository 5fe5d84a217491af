"""Webhooks cannot be pointed at what only our servers can reach."""

from __future__ import annotations

import pytest

from inspections.notifications.addresses import is_public, refusal
from tests.helpers import Api, assert_problem
from tests.scenes import deliver_with, webhook_event_due


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # shared (CGNAT)
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
    ],
)
def test_only_public_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


async def test_names_resolving_to_private_addresses_are_refused() -> None:
    assert "127.0.0.1" in (await refusal("localhost", 443, False) or "")
    assert await refusal("localhost", 443, True) is None
    assert "does not resolve" in (await refusal("no-such-host.invalid", 443, False) or "")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "https://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    ],
)
async def test_registering_an_internal_url_is_refused(api: Api, url: str) -> None:
    coord = await api.login(await api.user(await api.org(), "coordinator"))
    r = await api.client.post(
        "/v1/webhooks", headers=coord, json={"url": url, "events": ["report.published"]}
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "$.url" and "non-public" in body["detail"]
    assert await api.conn.fetchval("select count(*) from webhooks") == 0


async def test_a_webhook_whose_host_turned_internal_is_not_called(api: Api) -> None:
    """Registered when it was public; DNS now says otherwise: the worker checks again."""
    await webhook_event_due(api, "http://127.0.0.1:9/hook")
    report = await deliver_with(api.client.app.state.settings)
    assert report.delivered == 0
    row = await api.conn.fetchrow("select delivered_at, last_error from outbox")
    assert row["delivered_at"] is None and "non-public" in row["last_error"]
