"""SSO provider secrets at rest, against a real API process, a real slapd and a real OpenID provider:
the OIDC client secret and the LDAP bind password are stored encrypted (never in plain text), rows an
earlier version stored in plain text are encrypted at the next start, and logins keep working.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.e2e.stack import Stack
from tests.e2e.test_sso import (CLIENT_SECRET, PROVIDERS, SVC_PW, api, audit_rows, browser, db_rows,  # noqa: F401
                                idp, ldap_login, ldap_provider, oidc_authorize, oidc_provider, slapd)
from tests.servers.ldap_server import SlapdServer
from tests.servers.oidc_server import OidcProviderServer

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SECRETS = (("corp-ldap", "bind_password", SVC_PW), ("corp-sso", "client_secret", CLIENT_SECRET))


def stored(stack: Stack, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The provider's row as it is in the database: (config, encrypted_secrets)."""
    ((config, sealed),) = db_rows(stack, "SELECT config, encrypted_secrets FROM externalauthprovider WHERE name = ?",
                                  name)
    return json.loads(config), json.loads(sealed) if sealed else {}


def key_file(stack: Stack) -> Fernet:
    return Fernet((stack.data_dir / "secret.key").read_bytes().strip())


def assert_encrypted(stack: Stack, name: str, key: str, secret: str) -> str:
    """The secret is only in ``encrypted_secrets``, as a token of the key file's key; returns the token."""
    config, sealed = stored(stack, name)
    assert key not in config and secret not in json.dumps(config), config
    assert secret not in json.dumps(sealed)
    assert key_file(stack).decrypt(sealed[key].encode()).decode() == secret
    return sealed[key]


def insert_as_earlier_version(stack: Stack, body: dict[str, Any]) -> None:
    """A provider row as the earlier version wrote it: secrets in plain text inside ``config``."""
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as conn:
        conn.execute("INSERT INTO externalauthprovider (name, provider_type, enabled, config, level_mapping, source, "
                     "created_at, updated_at) VALUES (?, ?, 1, ?, ?, 'api', '2026-01-01 00:00:00', "
                     "'2026-01-01 00:00:00')", (body["name"], body["provider_type"], json.dumps(body["config"]),
                                                json.dumps(body.get("level_mapping", {}))))


def signs_in(stack: Stack, provider_ldap: str = "corp-ldap", provider_oidc: str = "corp-sso") -> None:
    """alice signs in over LDAP, dana over OIDC (the secrets decrypt and the providers accept them)."""
    assert stack.expect(ldap_login(stack, "alice", provider=provider_ldap), 200)["user"]["username"] == "alice"
    web = browser(stack)
    params = oidc_authorize(stack, web, "dana", provider=provider_oidc)
    assert stack.expect(web.get("/api/auth/external/oidc/callback", params=params), 200)["user"]["username"] == "dana"


def test_secrets_sent_over_rest_are_stored_encrypted_and_still_sign_in(api: Stack, slapd: SlapdServer,
                                                                       idp: OidcProviderServer):
    api.expect(api.client.post(PROVIDERS, json=ldap_provider(slapd)), 201)
    api.expect(api.client.post(PROVIDERS, json=oidc_provider(idp.issuer)), 201)
    tokens = {name: assert_encrypted(api, name, key, secret) for name, key, secret in SECRETS}
    signs_in(api)
    assert api.expect(api.client.post(f"{PROVIDERS}/corp-ldap/test"), 200)["ok"] is True

    # a PATCH that omits (or masks) the secret keeps the stored token as it is
    api.expect(api.client.patch(f"{PROVIDERS}/corp-ldap", json={"config": {"timeout_seconds": 7}}), 200)
    masked = api.expect(api.client.get(f"{PROVIDERS}/corp-sso"), 200)["config"]
    assert masked["client_secret"] == "********"
    api.expect(api.client.patch(f"{PROVIDERS}/corp-sso", json={"config": masked}), 200)
    assert {name: stored(api, name)[1][key] for name, key, _ in SECRETS} == tokens
    assert stored(api, "corp-ldap")[0]["timeout_seconds"] == 7
    signs_in(api)
    # a new secret is encrypted too
    api.expect(api.client.patch(f"{PROVIDERS}/corp-ldap", json={"config": {"bind_password": "Replaced-Bind-Pw"}}), 200)
    assert assert_encrypted(api, "corp-ldap", "bind_password", "Replaced-Bind-Pw") != tokens["corp-ldap"]

    for path in [*api.data_dir.glob("simpletuner.db*"), *api.logs_dir.glob("*.log")]:  # WAL included
        blob = path.read_bytes()
        for secret in (SVC_PW, CLIENT_SECRET, "Replaced-Bind-Pw"):
            assert secret.encode() not in blob, f"{secret!r} in plain text in {path}"


def test_plaintext_secrets_of_an_earlier_version_are_encrypted_at_start(stack_factory, slapd: SlapdServer,
                                                                        idp: OidcProviderServer):
    stack = stack_factory(start=False)
    stack.start_api()  # makes the database, then it is turned into what the earlier version left behind
    stack.api.terminate_and_wait()
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as conn:
        conn.execute("ALTER TABLE externalauthprovider DROP COLUMN encrypted_secrets")
    insert_as_earlier_version(stack, ldap_provider(slapd))
    insert_as_earlier_version(stack, oidc_provider(idp.issuer))
    premise = db_rows(stack, "SELECT config FROM externalauthprovider WHERE name = 'corp-ldap'")
    assert json.loads(premise[0][0])["bind_password"] == SVC_PW  # in plain text, as the earlier version left it

    stack.start_api()
    for name, key, secret in SECRETS:
        assert_encrypted(stack, name, key, secret)
        assert stack.expect(stack.client.get(f"{PROVIDERS}/{name}"), 200)["config"][key] == "********"
    assert [(r[0], r[1], r[3]) for r in audit_rows(stack, "external_auth.provider_secrets_encrypted")] == [
        ("system:upgrade", "corp-ldap", {"fields": ["bind_password"]}),
        ("system:upgrade", "corp-sso", {"fields": ["client_secret"]})]
    signs_in(stack)

    # the worker host's start does the same (and the API's next start finds nothing left to do)
    stack.api.terminate_and_wait()
    insert_as_earlier_version(stack, ldap_provider(slapd, name="legacy-ldap"))
    stack.start_worker_host()
    assert_encrypted(stack, "legacy-ldap", "bind_password", SVC_PW)
    stack.start_api()
    assert len(audit_rows(stack, "external_auth.provider_secrets_encrypted")) == 3
    assert stack.expect(ldap_login(stack, "bob", provider="legacy-ldap"), 200)["user"]["username"] == "bob"
