"""Network trust: who the client really is, and whether its network may skip login.

``X-Forwarded-For`` / ``X-Real-IP`` are believed only when the direct peer is a trusted proxy;
the client is then the right-most address in ``X-Forwarded-For`` that is not itself a trusted
proxy. A spoofed header from anyone else changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from fastapi import Request

from activities.settings import NetworkSettings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def in_networks(address: str | None, networks: Sequence[IPNetwork]) -> bool:
    ip = _ip(address) if address else None
    return ip is not None and any(ip in net for net in networks)


def resolve_client_ip(peer: str | None, headers: Mapping[str, str], net: NetworkSettings) -> str | None:
    if not (net.trust_proxy_headers and in_networks(peer, net.trusted_proxies)):
        return peer
    forwarded = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(forwarded):
        if _ip(hop) is None:
            return peer  # a malformed chain proves nothing
        if not in_networks(hop, net.trusted_proxies):
            return hop
    if forwarded:
        return forwarded[0]
    real = headers.get("x-real-ip", "")
    return real.strip() if _ip(real) is not None else peer


def client_ip(request: Request) -> str | None:
    peer = request.client.host if request.client else None
    return resolve_client_ip(peer, request.headers, request.app.state.core.settings.network)


def is_internal(request: Request) -> bool:
    net = request.app.state.core.settings.network
    return net.bypass_auth_for_internal and in_networks(client_ip(request), net.internal_networks)


# Headers a proxy adds on the way: a request carrying one of them did not come straight from a local client.
PROXY_HEADERS = frozenset({"forwarded", "via", "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip"})


def has_proxy_headers(headers: Mapping[str, str]) -> bool:
    """``Forwarded``, ``Via``, ``X-Real-IP``, any ``X-Forwarded-*`` and the like, in any case."""
    return any(name.lower() in PROXY_HEADERS or name.lower().startswith("x-forwarded-") for name in headers.keys())


def is_loopback_peer(request: Request) -> bool:
    peer = _ip(request.client.host) if request.client else None
    return peer is not None and peer.is_loopback
