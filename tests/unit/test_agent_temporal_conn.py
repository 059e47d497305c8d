"""The agent's Temporal connection: the register answer's address and namespace, this host's
credentials (never the answer's), and an API key only over TLS."""

from __future__ import annotations

import pytest
from temporalio.service import TLSConfig

from gpu_agent import temporal_conn
from gpu_agent.temporal_conn import TemporalAccess, connect_temporal, tls_option


async def test_connects_to_the_answers_namespace_with_this_hosts_credentials(monkeypatch):
    seen: dict = {}

    async def fake_connect(address, **kwargs):
        seen.update(address=address, **kwargs)
        return "client"

    monkeypatch.setattr(temporal_conn.Client, "connect", fake_connect)
    access = TemporalAccess(api_key="secret-key", ca_cert=b"-----BEGIN CERTIFICATE-----x")
    answer = {"address": "temporal.corp:7233", "namespace": "simpletuner-gpu", "tls": False,
              "client_cert": "PEM from the API must be ignored"}
    assert await connect_temporal(answer, access, identity="agent-1") == "client"
    assert seen["address"] == "temporal.corp:7233" and seen["namespace"] == "simpletuner-gpu"
    assert seen["api_key"] == "secret-key" and isinstance(seen["tls"], TLSConfig)
    assert seen["tls"].server_root_ca_cert == access.ca_cert and seen["tls"].client_cert is None
    with pytest.raises(ValueError, match="namespace"):
        await connect_temporal({"address": "x:1"}, TemporalAccess(), identity="agent-1")


def test_tls_follows_the_host_then_the_answer_and_an_api_key_forces_it():
    assert tls_option(TemporalAccess(), False) is False
    assert tls_option(TemporalAccess(), True) is True
    assert tls_option(TemporalAccess(api_key="k"), False) is True  # never a key over plain text
    config = tls_option(TemporalAccess(client_cert=b"c", client_key=b"k", server_name="temporal"), False)
    assert isinstance(config, TLSConfig) and config.domain == "temporal" and config.client_private_key == b"k"
