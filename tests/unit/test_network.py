"""Client address resolution: proxy headers count only from trusted proxies."""

from __future__ import annotations

import pytest

from activities.settings import AuthSettings, NetworkSettings
from api.network import has_proxy_headers, in_networks, resolve_client_ip

TRUSTING = NetworkSettings(trust_proxy_headers=True, trusted_proxies=["10.0.0.0/8", "127.0.0.1/32"])


@pytest.mark.parametrize("peer, headers, net, want", [
    ("203.0.113.9", {"x-forwarded-for": "10.10.1.2"}, TRUSTING, "203.0.113.9"),  # untrusted peer: header ignored
    ("127.0.0.1", {"x-forwarded-for": "10.10.1.2"}, NetworkSettings(), "127.0.0.1"),  # nothing trusted by default
    ("127.0.0.1", {"x-forwarded-for": "10.10.1.2"},
     NetworkSettings(trust_proxy_headers=False, trusted_proxies=["127.0.0.1/32"]), "127.0.0.1"),
    ("127.0.0.1", {"x-forwarded-for": "198.51.100.7"}, TRUSTING, "198.51.100.7"),
    ("127.0.0.1", {"x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.1.1.1"}, TRUSTING, "198.51.100.7"),  # spoofed left part
    ("127.0.0.1", {"x-forwarded-for": "10.2.2.2, 10.1.1.1"}, TRUSTING, "10.2.2.2"),
    ("127.0.0.1", {"x-forwarded-for": "not-an-ip"}, TRUSTING, "127.0.0.1"),
    ("127.0.0.1", {"x-real-ip": "198.51.100.8"}, TRUSTING, "198.51.100.8"),
    ("127.0.0.1", {"x-real-ip": "junk"}, TRUSTING, "127.0.0.1"),
    ("127.0.0.1", {}, TRUSTING, "127.0.0.1"),
])
def test_resolve_client_ip(peer, headers, net, want):
    assert resolve_client_ip(peer, headers, net) == want


def test_networks_and_bypass_paths():
    assert in_networks("10.10.3.4", NetworkSettings(internal_networks=["10.10.0.0/16"]).internal_networks)
    assert not in_networks("10.11.0.1", NetworkSettings(internal_networks=["10.10.0.0/16"]).internal_networks)
    assert not in_networks(None, [])
    AuthSettings(bypass_paths=["/api/cloud/health", "/api/cloud/metrics/prometheus"])
    with pytest.raises(ValueError, match="only health and metrics"):
        AuthSettings(bypass_paths=["/api/users"])


@pytest.mark.parametrize("headers, proxied", [
    ({}, False),
    ({"host": "127.0.0.1:8001", "user-agent": "curl", "x-request-id": "1"}, False),
    ({"X-Forwarded-For": "127.0.0.1"}, True),
    ({"x-forwarded-host": "ui.corp.example"}, True),
    ({"X-Forwarded-Proto": "https"}, True),
    ({"X-Real-IP": "127.0.0.1"}, True),
    ({"Forwarded": "for=127.0.0.1"}, True),
    ({"Via": "1.1 proxy"}, True),
])
def test_proxy_headers_are_recognised_in_any_case(headers, proxied):
    assert has_proxy_headers(headers) is proxied
