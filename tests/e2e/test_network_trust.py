"""Proxy headers, internal-network bypass and single-user mode, configured by the enterprise file."""

from __future__ import annotations

import sqlite3

import pytest

pytestmark = pytest.mark.e2e


def started(stack_factory, config: str, **kwargs):
    stack = stack_factory(start=False, **kwargs)
    stack.enterprise_config.write_text(config)
    return stack.start()


def login_ip(stack, headers: dict[str, str]) -> str:
    stack.anon.post("/api/auth/login", json={"username": "nobody", "password": "wrong-password-1"}, headers=headers)
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        return db.execute("SELECT ip FROM auditentry WHERE action = 'auth.login_failure' ORDER BY id DESC").fetchone()[0]


def test_spoofed_forwarded_for_from_untrusted_peer_changes_nothing(stack_factory):
    stack = started(stack_factory, "network:\n  trust_proxy_headers: true\n  trusted_proxies: ['10.0.0.0/8']\n"
                                   "  bypass_auth_for_internal: true\n  internal_networks: ['10.10.0.0/16']\n")
    spoof = {"X-Forwarded-For": "10.10.1.2", "X-Real-IP": "10.10.1.2"}
    assert login_ip(stack, spoof) == "127.0.0.1"
    assert stack.anon.get("/api/users/me", headers=spoof).status_code == 401  # no bypass through a spoofed header


def test_trusted_proxy_forwards_the_client_and_internal_clients_skip_login(stack_factory):
    stack = started(stack_factory, "network:\n  trust_proxy_headers: true\n  trusted_proxies: ['127.0.0.1/32']\n"
                                   "  bypass_auth_for_internal: true\n  internal_networks: ['10.10.0.0/16']\n"
                                   "  bypass_identity: ci-bot\n  bypass_level: researcher\n")
    assert login_ip(stack, {"X-Forwarded-For": "198.51.100.7"}) == "198.51.100.7"
    me = stack.anon.get("/api/users/me", headers={"X-Forwarded-For": "10.10.1.2"})
    assert me.status_code == 200 and me.json()["username"] == "ci-bot" and me.json()["level"] == "researcher"
    assert stack.anon.get("/api/users", headers={"X-Forwarded-For": "10.10.1.2"}).status_code == 403
    assert stack.anon.get("/api/users/me", headers={"X-Forwarded-For": "10.11.0.1"}).status_code == 401
    stack.wait_for(lambda: "Auth bypassed for IP 10.10.1.2" in stack.api.log_text(), 10, "the bypass log line")


def test_internal_bypass_identity_gets_no_credentials_nor_health_details(stack_factory):
    from activities.identity.passwords import hash_password

    stack = stack_factory(start=False)  # the API alone: nothing here needs the worker host
    stack.enterprise_config.write_text("network:\n  trust_proxy_headers: true\n  trusted_proxies: ['127.0.0.1/32']\n"
                                       "  bypass_auth_for_internal: true\n  internal_networks: ['10.10.0.0/16']\n"
                                       "  bypass_identity: ci-bot\n  bypass_level: admin\n")
    stack.start_api()
    internal = {"X-Forwarded-For": "10.10.1.2"}
    me = stack.anon.get("/api/users/me", headers=internal).json()
    assert (me["username"], me["auth_method"]) == ("ci-bot", "bypass"), me
    key = stack.anon.post("/api/auth/api-keys", json={"name": "keep-the-bypass"}, headers=internal)
    assert key.status_code == 403 and "internal-network identity" in key.json()["detail"], key.text
    assert stack.anon.get("/api/auth/api-keys", headers=internal).json() == {"api_keys": []}
    health = stack.anon.get("/api/cloud/health", headers=internal)  # admin by address only: no details either
    assert health.status_code == 200 and stack.temporal.address not in health.text, health.text
    assert stack.temporal.address in stack.client.get("/api/cloud/health").text

    # nor a login session: it has no password, and a hash put into its row changes nothing
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        db.execute("UPDATE user SET password_hash = ? WHERE username = 'ci-bot'", (hash_password("Planted-Passw0rd"),))
    for mode in ("cookie", "bearer"):
        login = stack.anon.post("/api/auth/login", json={"username": "ci-bot", "password": "Planted-Passw0rd",
                                                         "mode": mode}, headers=internal)
        assert login.status_code == 401 and "set-cookie" not in login.headers, login.text
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        assert db.execute("SELECT COUNT(*) FROM authsession JOIN user ON user.id = authsession.user_id "
                          "WHERE user.username = 'ci-bot'").fetchone() == (0,)


def test_single_user_mode_needs_loopback(stack_factory):
    refused = stack_factory(start=False, extra_env={"SIMPLETUNER_HOST": "0.0.0.0"})
    refused.enterprise_config.write_text("auth:\n  single_user_mode: true\n")
    api = refused.start_api(wait=False)
    assert api.wait_exit(30) == 2
    assert "single_user_mode: allowed only when the API listens on loopback" in api.log_text()

    behind_proxy = stack_factory(start=False)
    behind_proxy.enterprise_config.write_text("auth:\n  single_user_mode: true\n"
                                              "network:\n  trusted_proxies: ['127.0.0.1/32']\n")
    api = behind_proxy.start_api(wait=False)
    assert api.wait_exit(30) == 2
    assert "single_user_mode: cannot be combined with network.trusted_proxies" in api.log_text()

    stack = started(stack_factory, "auth:\n  single_user_mode: true\n")
    me = stack.anon.get("/api/users/me")
    assert me.status_code == 200 and me.json()["username"] == "admin"
    for header in ({"X-Forwarded-For": "127.0.0.1"}, {"X-Forwarded-Host": "ui.corp.test"},
                   {"X-Forwarded-Proto": "https"}, {"X-Real-IP": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"}):
        proxied = stack.anon.get("/api/users/me", headers=header)  # a proxy's request is not the local user
        assert proxied.status_code == 401 and "detail" in proxied.json(), (header, proxied.text)


def test_invalid_network_block_stops_the_api_naming_file_and_key(stack_factory):
    stack = stack_factory(start=False)
    stack.enterprise_config.write_text("network:\n  trusted_proxies: ['not-a-network']\n")
    api = stack.start_api(wait=False)
    assert api.wait_exit(30) == 2
    log = api.log_text()
    assert str(stack.enterprise_config) in log and "network.trusted_proxies.0" in log
