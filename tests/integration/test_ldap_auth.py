"""LDAP login against a real OpenLDAP slapd (plain, StartTLS and LDAPS) started by tests/servers/ldap_server.py."""

from __future__ import annotations

import socket
import time

import pytest
from pydantic import ValidationError

from activities.identity.external_identity import (
    InvalidCredentials, NotMapped, ProviderMisconfigured, ProviderUnavailable)
from activities.identity.sso.ldap_auth import LdapConfig, authenticate, map_levels, test_connection
from tests.servers.ldap_server import PASSWORDS, SUFFIX, SVC_DN, SVC_PW, SlapdServer, group_dn, user_dn

MAPPING = {
    "CN=ML-Admins,OU=Groups,DC=corp,DC=test": ["admin"],  # DN key, different case than the directory
    "ml-researchers": ["researcher"],  # bare CN key
    "Legacy-Leads": ["lead"],  # only found through the member= fallback search
}


@pytest.fixture(scope="module")
def slapd():
    started = time.monotonic()
    server = SlapdServer().start()
    server.startup_seconds = time.monotonic() - started
    yield server
    server.stop()


def cfg(slapd: SlapdServer, **over) -> LdapConfig:
    base = dict(server=slapd.url, base_dn=SUFFIX, bind_dn=SVC_DN, bind_password=SVC_PW,
                user_search_filter="(&(objectClass=inetOrgPerson)(uid={username}))", level_mapping=MAPPING,
                timeout_seconds=5)
    return LdapConfig(**(base | over))


def login(slapd, username, password=None, **over):
    return authenticate(cfg(slapd, **over), "corp", username, PASSWORDS.get(username, "x") if password is None
                        else password)


def test_fixture_starts_fast(slapd):
    assert slapd.startup_seconds < 5


# --- successful logins ---------------------------------------------------------------------------

def test_alice_is_admin(slapd):
    ident = login(slapd, "alice")
    assert ident.levels == ("admin",)
    assert ident.provider == "corp"
    assert ident.subject == user_dn("alice")
    assert ident.username == "alice"
    assert ident.email == "alice@corp.test"
    assert ident.display_name == "Alice Tester"
    assert [g.lower() for g in ident.groups] == [group_dn("ML-Admins").lower()]


def test_bob_is_researcher(slapd):
    ident = login(slapd, "bob")
    assert ident.levels == ("researcher",)
    assert [g.lower() for g in ident.groups] == [group_dn("ML-Researchers").lower()]


def test_username_is_case_insensitive_and_lowercased(slapd):
    ident = login(slapd, "ALICE", PASSWORDS["alice"])
    assert ident.username == "alice" and ident.levels == ("admin",)


def test_username_attribute_gives_canonical_name(slapd):
    ident = login(slapd, "BoB", PASSWORDS["bob"], username_attribute="uid")
    assert ident.username == "bob"


def test_parenthesis_in_uid_can_log_in(slapd):
    ident = login(slapd, "eve(x)")
    assert ident.subject == user_dn("eve(x)")
    assert ident.levels == ("researcher",)


def test_group_fallback_search_without_memberof(slapd):
    ident = login(slapd, "frank")
    assert ident.levels == ("lead",)
    assert [g.lower() for g in ident.groups] == [group_dn("Legacy-Leads").lower()]


def test_active_directory_style_filter(slapd):
    ident = login(slapd, "Alice", PASSWORDS["alice"], user_search_filter="(sAMAccountName={username})",
                  user_search_base=f"ou=people,{SUFFIX}", username_attribute="sAMAccountName")
    assert ident.username == "alice" and ident.levels == ("admin",)


def test_several_mapped_groups_union_in_level_order(slapd):
    mapping = {"ML-Admins": ["admin", "viewer"], group_dn("ML-Researchers"): ["researcher"]}
    assert map_levels(mapping, [group_dn("ML-Researchers"), group_dn("ML-Admins")]) == (
        "viewer", "researcher", "admin")


# --- rejected logins -----------------------------------------------------------------------------

@pytest.mark.parametrize("username,password", [
    ("alice", "wrong"),
    ("alice", PASSWORDS["bob"]),
    ("nobody", "whatever"),
    ("alice", ""),  # an empty password would be an unauthenticated bind, which LDAP accepts
    ("", "x"),
    ("   ", "x"),
    ("*", PASSWORDS["alice"]),
    ("alice)(uid=*", PASSWORDS["alice"]),
    ("*)(|(uid=*", PASSWORDS["alice"]),
    ("alice*", PASSWORDS["alice"]),
    ("alice\\", PASSWORDS["alice"]),
    ("alice\x00", PASSWORDS["alice"]),
])
def test_bad_credentials_are_generic(slapd, username, password):
    with pytest.raises(InvalidCredentials) as err:
        login(slapd, username, password)
    assert err.value.detail == "invalid username or password"
    assert err.value.status_code == 401


def test_none_password_rejected(slapd):
    with pytest.raises(InvalidCredentials):
        authenticate(cfg(slapd), "corp", "alice", None)


def test_more_than_one_match_is_rejected(slapd):
    # dup1 and dup2 share a mail address: the right password for one of them must still fail
    with pytest.raises(InvalidCredentials) as err:
        login(slapd, "shared@corp.test", PASSWORDS["dup1"], user_search_filter="(mail={username})")
    assert err.value.detail == "invalid username or password"


def test_unmapped_group_is_not_mapped(slapd):
    with pytest.raises(NotMapped) as err:
        login(slapd, "carol")
    assert err.value.detail == "none of your directory groups is mapped to a level"
    assert err.value.status_code == 403


def test_unmapped_user_with_wrong_password_gets_invalid_credentials(slapd):
    with pytest.raises(InvalidCredentials):
        login(slapd, "carol", "wrong")


# --- provider problems ---------------------------------------------------------------------------

def test_wrong_service_password_is_misconfigured(slapd):
    with pytest.raises(ProviderMisconfigured) as err:
        login(slapd, "alice", bind_password="not-the-password")
    assert "not-the-password" not in err.value.detail
    with pytest.raises(ProviderMisconfigured):
        test_connection(cfg(slapd, bind_password="not-the-password"))


def test_missing_base_dn_is_misconfigured(slapd):
    with pytest.raises(ProviderMisconfigured):
        test_connection(cfg(slapd, base_dn="dc=nowhere,dc=test"))


def test_test_connection_ok(slapd):
    result = test_connection(cfg(slapd, user_search_base=f"ou=people,{SUFFIX}"))
    assert result["ok"] is True and result["message"]


def test_stopped_server_is_unavailable_quickly():
    server = SlapdServer().start()
    config = cfg(server)
    server.stop()
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as err:
        authenticate(config, "corp", "alice", PASSWORDS["alice"])
    assert time.monotonic() - started < 3
    assert SVC_PW not in err.value.detail and err.value.status_code == 503
    with pytest.raises(ProviderUnavailable):
        test_connection(config)


def test_silent_server_times_out():
    """A port that accepts connections but never answers: the receive timeout must fire."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        config = LdapConfig(server=f"ldap://127.0.0.1:{port}", base_dn=SUFFIX, bind_dn=SVC_DN,
                            bind_password=SVC_PW, user_search_filter="(uid={username})", timeout_seconds=1)
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as err:
            authenticate(config, "corp", "alice", PASSWORDS["alice"])
        assert time.monotonic() - started < 4
        assert "timed out" in err.value.detail


# --- TLS -----------------------------------------------------------------------------------------

def test_ldaps_login_with_ca(slapd):
    ident = login(slapd, "alice", server=slapd.ldaps_url, ca_cert_path=slapd.ca_cert)
    assert ident.levels == ("admin",)
    assert test_connection(cfg(slapd, server=slapd.ldaps_url, ca_cert_path=slapd.ca_cert))["ok"]


def test_ldaps_via_use_ssl_flag(slapd):
    port = slapd.ldaps_port
    ident = login(slapd, "bob", server=f"ldap://127.0.0.1:{port}", use_ssl=True, ca_cert_path=slapd.ca_cert)
    assert ident.levels == ("researcher",)


def test_starttls_login_with_ca(slapd):
    ident = login(slapd, "alice", start_tls=True, ca_cert_path=slapd.ca_cert)
    assert ident.levels == ("admin",)


@pytest.mark.parametrize("mode", [{"use_ssl": True}, {"start_tls": True}])
def test_tls_verify_without_ca_fails(slapd, mode):
    server = slapd.ldaps_url if "use_ssl" in mode else slapd.url
    with pytest.raises(ProviderUnavailable) as err:
        login(slapd, "alice", server=server, **mode)
    assert "TLS" in err.value.detail


@pytest.mark.parametrize("mode", [{"use_ssl": True}, {"start_tls": True}])
def test_tls_verify_off_accepts_unknown_ca(slapd, mode):
    server = slapd.ldaps_url if "use_ssl" in mode else slapd.url
    assert login(slapd, "alice", server=server, tls_verify=False, **mode).levels == ("admin",)


@pytest.mark.parametrize("mode", [{"use_ssl": True}, {"start_tls": True}])
def test_hostname_mismatch_fails(slapd, mode):
    # "127.1" reaches 127.0.0.1, but the certificate only names IP 127.0.0.1 and DNS localhost
    port = slapd.ldaps_port if "use_ssl" in mode else slapd.port
    with pytest.raises(ProviderUnavailable) as err:
        login(slapd, "alice", server=f"ldap://127.1:{port}", ca_cert_path=slapd.ca_cert, **mode)
    assert "TLS" in err.value.detail
    assert login(slapd, "alice", server=f"ldap://localhost:{port}", ca_cert_path=slapd.ca_cert, **mode).levels


def test_missing_ca_file_is_misconfigured(slapd):
    with pytest.raises(ProviderMisconfigured):
        login(slapd, "alice", server=slapd.ldaps_url, ca_cert_path="/nonexistent/ca.pem")


# --- config validation ---------------------------------------------------------------------------

def _error(**over) -> str:
    base = dict(server="ldaps://ldap.corp.test:636", base_dn=SUFFIX, bind_dn=SVC_DN, bind_password="pw",
                user_search_filter="(sAMAccountName={username})")
    with pytest.raises(ValidationError) as err:
        LdapConfig(**(base | over))
    return str(err.value)


def test_seed_example_config_is_valid():
    config = LdapConfig(server="ldaps://ldap.corp.com:636", base_dn="DC=corp,DC=com",
                        bind_dn="CN=svc-simpletuner,OU=Service Accounts,DC=corp,DC=com",
                        bind_password="service-account-password",
                        user_search_filter="(sAMAccountName={username})", use_ssl=True,
                        level_mapping={"CN=ML-Admins,OU=Groups,DC=corp,DC=com": ["admin"]})
    assert config.ssl and config.timeout_seconds == 10 and config.tls_verify
    assert "service-account-password" not in repr(config)


@pytest.mark.parametrize("over,field,words", [
    ({"user_search_filter": "(sAMAccountName=alice)"}, "user_search_filter", "{username}"),
    ({"user_search_filter": "(uid={username}"}, "user_search_filter", "parenthesized"),
    ({"server": "http://ldap.corp.test"}, "server", "ldap:// or ldaps://"),
    ({"server": "ldap.corp.test:389"}, "server", "ldap:// or ldaps://"),
    ({"server": "ldap://:389"}, "server", "ldap:// or ldaps://"),
    ({"server": "ldap://host:notaport"}, "server", "ldap:// or ldaps://"),
    ({"level_mapping": {"ML-Admins": ["superuser"]}}, "level_mapping", "superuser"),
    ({"base_dn": "not a dn"}, "base_dn", "valid DN"),
    ({"start_tls": True}, "", "start_tls cannot be combined"),
    ({"unknown_field": 1}, "unknown_field", "Extra inputs"),
    ({"bind_password": ""}, "bind_password", "at least 1"),
    ({"timeout_seconds": 0}, "timeout_seconds", "greater than or equal"),
])
def test_config_validation_errors(over, field, words):
    message = _error(**over)
    assert field in message and words in message
