"""Webhooks reach only the address that was checked: no DNS rebinding, no IPv6 translation
of an internal IPv4 address, no proxy from the environment, no URL token in the log."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inspections.notifications import addresses
from inspections.notifications.addresses import is_public
from service.settings import Settings
from tests.conftest import Receiver
from tests.helpers import Api
from tests.scenes import deliver_with, webhook_event_due


@pytest.fixture
def settings(mail_settings: Settings) -> Settings:
    return mail_settings


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254 (cloud metadata)
        ("64:ff9b::5db8:d70e", True),  # NAT64 of a public address
        ("64:ff9b:1::5db8:d70e", False),  # local-use NAT64: any mapping
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a01:203::1", False),  # 6to4 of 10.1.2.3
        ("2002:5db8:d70e::1", True),  # 6to4 of a public address
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("::ffff:a9fe:a9fe", False),  # IPv4-mapped 169.254.169.254
    ],
)
def test_ipv6_forms_of_internal_ipv4_addresses_are_not_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def _answers(table: dict[str, str], calls: list[str]) -> addresses.Lookup:
    """A resolver of our own: each name answers the address in ``table``."""

    async def lookup(host: str, port: int) -> list[Any]:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]

    return lookup


async def test_delivery_connects_to_the_checked_address_and_keeps_the_host(
    api: Api, settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name only our resolver knows is delivered to: the connection used its answer."""
    port = urlsplit(receiver.url).port
    calls: list[str] = []
    monkeypatch.setattr(addresses, "lookup", _answers({"hooks.example.test": "127.0.0.1"}, calls))
    await webhook_event_due(api, f"http://hooks.example.test:{port}/hooks/coassess")
    assert (await deliver_with(settings)).delivered == 1
    assert calls == ["hooks.example.test"]  # resolved once, by the check
    (request,) = receiver.requests
    assert request["headers"]["host"] == f"hooks.example.test:{port}"
    assert request["path"] == "/hooks/coassess"


async def test_a_name_rebound_to_a_private_address_after_the_check_is_not_reached(
    api: Api, settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is told 'localhost' is public; the system resolver (which the HTTP client
    would use if it resolved again) says 127.0.0.1, where the receiver listens."""
    port = urlsplit(receiver.url).port
    calls: list[str] = []
    monkeypatch.setattr(addresses, "lookup", _answers({"localhost": "93.184.215.14"}, calls))
    await webhook_event_due(api, f"http://localhost:{port}/hooks/coassess")
    strict = msgspec.structs.replace(settings, webhook_allow_private=False, webhook_timeout_s=2)
    assert (await deliver_with(strict)).delivered == 0
    assert calls == ["localhost"]
    assert receiver.requests == []  # the private address was never reached
    assert await api.conn.fetchval("select last_error from outbox") is not None


async def test_proxy_settings_in_the_environment_are_ignored(
    api: Api, settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Receiver()  # would record the request if webhooks went through the proxy
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url.rsplit("/hooks", 1)[0])
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        await webhook_event_due(api, receiver.url)
        assert (await deliver_with(settings)).delivered == 1
        assert len(receiver.requests) == 1 and proxy.requests == []
    finally:
        proxy.close()


async def test_a_webhook_url_token_reaches_no_log_line(
    api: Api, settings: Settings, receiver: Receiver, app_logs: pytest.LogCaptureFixture
) -> None:
    token = "tok_" + uuid.uuid4().hex
    await webhook_event_due(api, f"{receiver.url}?token={token}")
    receiver.fail = 1  # a failed attempt is logged too
    assert (await deliver_with(settings)).delivered == 0
    assert app_logs.records  # the failure was logged
    assert token not in app_logs.text
    assert all(token not in str(vars(r)) for r in app_logs.records)


def _tls_receiver(tmp_path: Any, name: str) -> tuple[Receiver, ssl.SSLContext]:
    """The receiver behind TLS with a certificate for ``name`` only, and a client context
    trusting that certificate."""
    # A self-signed P-256 certificate, made with `cryptography` (a dependency) rather than
    # the openssl command line.
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # As `openssl req -x509` adds them: stricter verifiers (Python 3.13's) want them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_pem = (tmp_path / "cert.pem").read_bytes()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    receiver = Receiver()
    receiver.server.socket = server_ctx.wrap_socket(receiver.server.socket, server_side=True)
    client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
    return receiver, client_ctx


@pytest.mark.parametrize(
    ("host", "delivered"), [("hooks.example.test", 1), ("evil.example.test", 0)]
)
async def test_tls_still_verifies_the_certificate_against_the_host_name(
    api: Api,
    settings: Settings,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    delivered: int,
) -> None:
    """Connecting to the checked address keeps TLS honest: the certificate must name the
    URL's host (both names resolve to the same address here)."""
    tls, ctx = _tls_receiver(tmp_path, "hooks.example.test")
    try:
        port = tls.server.server_address[1]
        table = {"hooks.example.test": "127.0.0.1", "evil.example.test": "127.0.0.1"}
        monkeypatch.setattr(addresses, "lookup", _answers(table, []))
        await webhook_event_due(api, f"https://{host}:{port}/hooks/coassess")
        http = httpx.AsyncClient(trust_env=False, verify=ctx)
        assert (await deliver_with(settings, http)).delivered == delivered
        assert len(tls.requests) == delivered
        if delivered:
            assert tls.requests[0]["headers"]["host"] == f"{host}:{port}"
        else:
            error = await api.conn.fetchval("select last_error from outbox")
            assert "certificate" in error.lower() or "hostname" in error.lower()
    finally:
        tls.close()
