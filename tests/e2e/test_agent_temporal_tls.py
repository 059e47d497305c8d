"""An agent reaches Temporal over mutual TLS with credentials configured on its own host (the API
hands out none): through a TLS front that requires a client certificate from its CA."""

from __future__ import annotations

import pytest

from tests.servers.tls_proxy import TlsProxy, make_pki

pytestmark = pytest.mark.e2e


def test_agent_polls_over_mtls_with_its_own_certificate(stack, tmp_path):
    pki = make_pki(tmp_path / "pki")
    proxy = TlsProxy(stack.temporal.address, pki).start()
    try:
        worker_id, token = stack.create_worker("agent-tls", {"pool": "tls"})
        stack.start_agent(token, name="agent-tls", extra_args=[
            "--temporal-address", proxy.address, "--temporal-tls-ca", str(pki["ca"]),
            "--temporal-tls-cert", str(pki["client_cert"]), "--temporal-tls-key", str(pki["client_key"]),
            "--temporal-tls-server-name", "127.0.0.1"])
        stack.put_config("quick", steps=3)
        job_id = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "tls"})["job_id"]
        assert stack.wait_job(job_id, "completed", timeout=60)["agent_id"] == worker_id
        assert "agent-host" in proxy.accepted  # the agent's own client certificate

        _, plain_token = stack.create_worker("agent-no-cert", {"pool": "tls-2"})
        refused_before = proxy.refused
        agent = stack.start_agent(plain_token, name="agent-no-cert", extra_args=[
            "--temporal-address", proxy.address, "--temporal-tls-ca", str(pki["ca"])])
        stack.wait_for(lambda: proxy.refused > refused_before, 30, "the proxy to refuse a handshake without a "
                       "client certificate")
        assert agent.alive  # it keeps retrying, as it does while Temporal is unreachable
    finally:
        proxy.stop()
