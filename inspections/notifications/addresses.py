"""Where webhooks may point: public internet addresses only, unless allowed otherwise.

A coordinator's webhook URL is fetched by our servers, so it must not reach what only our
servers can reach (databases, cloud metadata at 169.254.169.254, admin ports on
localhost). The host is resolved and every address checked, at registration and again
before each delivery (DNS may change in between).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket


def is_public(address: str) -> bool:
    """True for globally routable unicast addresses (not private, loopback, link-local,
    shared CGNAT, reserved, multicast or unspecified)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def refusal(host: str, port: int, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to this host, or None when it may."""
    if allow_private:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return f"host {host!r} does not resolve"
    private = sorted({str(i[4][0]) for i in infos if not is_public(str(i[4][0]))})
    if private:
        return f"host {host!r} resolves to a non-public address ({', '.join(private)})"
    return None
