"""Single sign-on through the REST API of a real API process, against a real slapd and a real OpenID
provider (panva oidc-provider under node): provider administration, LDAP and OIDC logins, OAuth state.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.e2e.stack import Stack, detail_text
from tests.servers.ldap_server import PASSWORDS, SUFFIX, SVC_DN, SVC_PW, SlapdServer
from tests.servers.oidc_server import OidcProviderServer, login_through_browser_forms

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

CALLBACK = "http://127.0.0.1:9/sso/callback"  # the "frontend" page the provider sends the browser back to
NOT_ALLOWED = "http://127.0.0.1:9/elsewhere"  # registered at the provider, not allowed by our provider config
CLIENT_ID, CLIENT_SECRET = "simpletuner", "s3cret-for-e2e"
IDP_USERS = {
    "alice": {"email": "alice@corp.test", "email_verified": True, "preferred_username": "alice",
              "name": "Alice Admin", "groups": ["ML-Platform-Admins"]},
    "bob": {"email": "bob@corp.test", "preferred_username": "bob", "name": "Bob R", "groups": ["ML-Researchers"]},
    "nora": {"email": "nora@corp.test", "preferred_username": "nora", "groups": ["Marketing"]},
    "dana": {"email": "dana@corp.test", "preferred_username": "dana", "groups": ["ML-Platform-Admins"]},
    "mallory": {"preferred_username": "bob", "groups": ["ML-Platform-Admins"]},  # claims bob's name
}
ADMINS_DN = "CN=ML-Admins,OU=Groups,DC=corp,DC=test"
PROVIDERS = "/api/cloud/external-auth/providers"
TTL = 2.0  # OAuth state lifetime in the expiry test's stack


@pytest.fixture(scope="module")
def slapd() -> Iterator[SlapdServer]:
    server = SlapdServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProviderServer]:
    server = OidcProviderServer(tmp_path_factory.mktemp("idp"), users=IDP_USERS, clients=[
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [CALLBACK, NOT_ALLOWED]}])
    server.start()  # no skip: make test installs the provider, a missing one must fail loudly
    yield server
    server.stop()


@pytest.fixture
def api(stack_factory) -> Stack:
    """Only the API process: SSO needs neither the worker host nor agents."""
    stack = stack_factory(start=False)
    stack.start_api()
    return stack


def ldap_provider(slapd: SlapdServer, name: str = "corp-ldap", **config: Any) -> dict:
    return {"name": name, "provider_type": "ldap", "enabled": True,
            "level_mapping": {ADMINS_DN: ["admin"], "ML-Researchers": ["researcher"]},
            "config": {"server": slapd.url, "base_dn": SUFFIX, "bind_dn": SVC_DN, "bind_password": SVC_PW,
                       "user_search_filter": "(&(objectClass=inetOrgPerson)(uid={username}))",
                       "timeout_seconds": 5, **config}}


def oidc_provider(issuer: str, name: str = "corp-sso") -> dict:
    return {"name": name, "provider_type": "oidc", "enabled": True, "config": {
        "issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "scopes": ["openid", "email", "profile", "groups"],
        "role_mapping": {"claim": "groups", "admin_groups": ["ML-Platform-Admins"], "user_groups": ["ML-Researchers"]},
        "allowed_redirect_uris": [CALLBACK]}}


def browser(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15)


def same_browser(stack: Stack, web: httpx.Client) -> httpx.Client:
    """Another connection of the same browser: it carries ``web``'s cookies."""
    return httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15, cookies=web.cookies)


def ldap_login(stack: Stack, username: str, password: str | None = None, provider: str = "corp-ldap",
               client: httpx.Client | None = None) -> httpx.Response:
    client = client or browser(stack)
    return client.post("/api/auth/external/ldap/login", json={
        "provider": provider, "username": username, "password": PASSWORDS.get(username, "x") if password is None
        else password})


def oidc_authorize(stack: Stack, web: httpx.Client, username: str, provider: str = "corp-sso") -> dict[str, str]:
    """/start through the API, then the provider's login forms in a fresh browser; the callback's params."""
    start = web.get("/api/auth/external/oidc/start", params={"provider": provider, "redirect_uri": CALLBACK})
    assert start.status_code == 302, start.text
    with httpx.Client(timeout=15, trust_env=False) as idp_browser:
        final = login_through_browser_forms(idp_browser, start.headers["location"], username, CALLBACK)
    assert final.startswith(CALLBACK + "?")
    return dict(httpx.URL(final).params)


def db_rows(stack: Stack, sql: str, *args: Any) -> list[tuple]:
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        return db.execute(sql, args).fetchall()


def audit_rows(stack: Stack, action: str) -> list[tuple]:
    return [(actor, target, ip, json.loads(details)) for actor, target, ip, details in db_rows(
        stack, "SELECT actor, target_id, ip, details FROM auditentry WHERE action = ? ORDER BY id", action)]


def users_named(stack: Stack, username: str) -> list[dict]:
    return [u for u in stack.expect(stack.client.get("/api/users"), 200)["users"] if u["username"] == username]


def provider_names(stack: Stack) -> list[str]:
    return [p["name"] for p in stack.expect(stack.client.get(PROVIDERS), 200)["providers"]]


# ---- administration --------------------------------------------------------------------------------

BAD_BODIES = [
    (lambda b: {**b, "provider_type": "saml"}, "provider_type"),
    (lambda b: {**b, "name": "bad name!"}, "name"),
    (lambda b: {**b, "config": {**b["config"], "server": "http://ldap.corp.test"}}, "config.server"),
    (lambda b: {**b, "config": {k: v for k, v in b["config"].items() if k != "base_dn"}}, "config.base_dn"),
    (lambda b: {**b, "config": {**b["config"], "user_search_filter": "(uid=alice)"}}, "config.user_search_filter"),
    (lambda b: {**b, "config": {**b["config"], "colour": "blue"}}, "config.colour"),
    (lambda b: {**b, "config": {**b["config"], "bind_password": "********"}}, "config.bind_password"),
    (lambda b: {**b, "level_mapping": {"ML-Admins": ["wizard"]}}, "level_mapping"),
    (lambda b: {**b, "provider_type": "oidc"}, "config.issuer"),  # an LDAP config is not an OIDC one
]


def test_provider_crud_masking_and_bad_configs(api: Stack, slapd: SlapdServer, idp: OidcProviderServer):
    assert api.anon.get(PROVIDERS).status_code == 401
    made = api.expect(api.client.post(PROVIDERS, json=ldap_provider(slapd)), 201)
    assert made["config"]["bind_password"] == "********" and made["source"] == "api" and made["enabled"]
    oidc = api.expect(api.client.post(PROVIDERS, json=oidc_provider(idp.issuer)), 201)
    assert oidc["config"]["client_secret"] == "********"
    for answer in (api.client.get(PROVIDERS), api.client.get(f"{PROVIDERS}/corp-ldap"),
                   api.client.get(f"{PROVIDERS}/corp-sso"), api.anon.get("/api/auth/external/providers")):
        assert answer.status_code == 200 and SVC_PW not in answer.text and CLIENT_SECRET not in answer.text
    assert api.anon.get("/api/auth/external/providers").json() == {"providers": [
        {"name": "corp-ldap", "provider_type": "ldap"}, {"name": "corp-sso", "provider_type": "oidc"}]}
    assert api.expect(api.client.post(f"{PROVIDERS}/corp-sso/test"), 200)["ok"] is True

    # bad bodies: 422 naming the field (409 for a duplicate), and nothing written
    for change, field in BAD_BODIES:
        answer = api.client.post(PROVIDERS, json=change(ldap_provider(slapd, name="other")))
        assert answer.status_code == 422 and field in answer.json()["detail"], (field, answer.text)
    again = api.client.post(PROVIDERS, json=ldap_provider(slapd))
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert provider_names(api) == ["corp-ldap", "corp-sso"]

    # PATCH: omitted or masked secrets are kept (the stored bind password still binds)
    patched = api.expect(api.client.patch(f"{PROVIDERS}/corp-ldap", json={"config": {"timeout_seconds": 7}}), 200)
    assert patched["config"]["timeout_seconds"] == 7 and patched["config"]["bind_password"] == "********"
    api.expect(api.client.patch(f"{PROVIDERS}/corp-ldap", json={"config": patched["config"]}), 200)
    assert api.expect(api.client.post(f"{PROVIDERS}/corp-ldap/test"), 200)["ok"] is True
    bad = api.client.patch(f"{PROVIDERS}/corp-ldap", json={"config": {"server": "ftp://x"}})
    assert bad.status_code == 422 and "config.server" in bad.json()["detail"]
    assert api.expect(api.client.get(f"{PROVIDERS}/corp-ldap"), 200)["config"]["server"] == slapd.url
    api.expect(api.client.patch(f"{PROVIDERS}/corp-ldap", json={"config": {"bind_password": "wrong"}}), 200)
    refused = api.client.post(f"{PROVIDERS}/corp-ldap/test")
    assert refused.status_code == 422 and "service bind rejected" in refused.json()["detail"]
    api.expect(api.client.patch(f"{PROVIDERS}/corp-ldap", json={"enabled": False}), 200)
    assert api.anon.get("/api/auth/external/providers").json()["providers"] == [
        {"name": "corp-sso", "provider_type": "oidc"}]
    assert ldap_login(api, "alice").status_code == 404  # a disabled provider signs nobody in

    assert api.client.delete(f"{PROVIDERS}/corp-ldap").status_code == 204
    assert api.client.get(f"{PROVIDERS}/corp-ldap").status_code == 404
    assert provider_names(api) == ["corp-sso"]
    for action, count in (("created", 2), ("updated", 4), ("deleted", 1)):
        rows = audit_rows(api, f"external_auth.provider_{action}")
        assert len(rows) == count and all(r[0] == "admin" and r[2] == "127.0.0.1" for r in rows), rows
    assert SVC_PW not in json.dumps(audit_rows(api, "external_auth.provider_updated"))


# ---- LDAP --------------------------------------------------------------------------------------------

def test_ldap_login_provisions_and_follows_the_directory(api: Stack, slapd: SlapdServer):
    api.expect(api.client.post(PROVIDERS, json=ldap_provider(slapd)), 201)
    web = browser(api)
    first = api.expect(ldap_login(api, "alice", client=web), 200)
    alice = first["user"]
    assert (alice["username"], alice["level_names"], alice["auth_source"], alice["has_password"]) == (
        "alice", ["admin"], "ldap:corp-ldap", False)
    assert alice["email"] == "alice@corp.test" and alice["display_name"] == "Alice Tester"
    assert web.cookies.get("st_session") and first["csrf_token"]
    me = api.expect(web.get("/api/users/me"), 200)
    assert me["id"] == alice["id"] and me["auth_method"] == "session"
    key = web.post("/api/auth/api-keys", json={"name": "k"}, headers={"X-CSRF-Token": first["csrf_token"]})
    assert key.status_code == 201, key.text

    bob = api.expect(ldap_login(api, "bob"), 200)["user"]
    assert bob["level_names"] == ["researcher"] and bob["auth_source"] == "ldap:corp-ldap"

    # an admin's local edits do not survive the next login: levels and profile follow the directory
    api.expect(api.client.post(f"/api/users/{alice['id']}/levels", json={"level_name": "viewer"}), 200)
    api.expect(api.client.patch(f"/api/users/{alice['id']}", json={"display_name": "Renamed"}), 200)
    again = api.expect(ldap_login(api, "ALICE", PASSWORDS["alice"]), 200)["user"]
    assert again["id"] == alice["id"] and again["level_names"] == ["admin"] and again["display_name"] == "Alice Tester"
    api.expect(api.client.patch(f"{PROVIDERS}/corp-ldap", json={"level_mapping": {
        ADMINS_DN: ["lead"], "ML-Researchers": ["researcher"]}}), 200)
    demoted = api.expect(ldap_login(api, "alice"), 200)["user"]
    assert demoted["id"] == alice["id"] and demoted["level_names"] == ["lead"] and demoted["level"] == "lead"
    assert len(users_named(api, "alice")) == 1 and len(audit_rows(api, "user.created")) == 3  # admin, alice, bob
    assert [r[3]["to"] for r in audit_rows(api, "user.levels_synced")] == [["admin"], ["lead"]]
    logins = audit_rows(api, "auth.login")
    assert len(logins) == 4 and {r[3]["method"] for r in logins} == {"ldap:corp-ldap"}
    assert all(r[2] == "127.0.0.1" for r in logins)

    # refusals: generic 401s (injection included), 403 for an unmapped group, nobody created
    for username, password in (("alice", "wrong"), ("*)(|(uid=*", PASSWORDS["alice"]), ("*", PASSWORDS["alice"]),
                               ("nobody", "x")):
        answer = ldap_login(api, username, password)
        assert answer.status_code == 401 and detail_text(answer) == "invalid username or password", answer.text
    carol = ldap_login(api, "carol")
    assert carol.status_code == 403 and "mapped to a level" in detail_text(carol)
    assert users_named(api, "carol") == [] and users_named(api, "*") == []
    failures = audit_rows(api, "auth.login_failure")
    assert len(failures) == 5 and all(r[2] == "127.0.0.1" and r[3]["method"] == "ldap:corp-ldap" for r in failures)

    # rate limit shared with password login: the 6th try is refused even with the right password
    for _ in range(5):
        assert ldap_login(api, "bob", "wrong").status_code == 401
    limited = ldap_login(api, "bob")
    assert limited.status_code == 429 and limited.headers.get("retry-after")
    assert ldap_login(api, "alice", provider="no-such").status_code == 404


def test_sso_accounts_have_no_local_password(api: Stack, slapd: SlapdServer):
    from activities.identity.passwords import hash_password

    api.expect(api.client.post(PROVIDERS, json=ldap_provider(slapd)), 201)
    web = browser(api)
    login = api.expect(ldap_login(api, "alice", client=web), 200)
    alice, chosen = login["user"], "Chosen-Passw0rd-42"
    by_admin = api.client.patch(f"/api/users/{alice['id']}", json={"password": chosen})
    assert by_admin.status_code == 409 and "signs in through ldap:corp-ldap" in detail_text(by_admin), by_admin.text
    by_herself = web.patch(f"/api/users/{alice['id']}", headers={"X-CSRF-Token": login["csrf_token"]},
                           json={"password": chosen, "current_password": PASSWORDS["alice"]})
    assert by_herself.status_code == 409 and "cannot have a local password" in detail_text(by_herself)
    assert db_rows(api, "SELECT password_hash FROM user WHERE id = ?", alice["id"]) == [(None,)]
    assert api.expect(api.client.patch(f"/api/users/{alice['id']}", json={"display_name": "A"}), 200)

    with sqlite3.connect(api.data_dir / "simpletuner.db") as db:  # a hash that got into the row somehow
        db.execute("UPDATE user SET password_hash = ? WHERE id = ?", (hash_password(chosen), alice["id"]))
    for mode in ("cookie", "bearer"):
        refused = api.anon.post("/api/auth/login", json={"username": "alice", "password": chosen, "mode": mode})
        assert refused.status_code == 401 and detail_text(refused) == "invalid username or password", refused.text
    assert [r[3]["reason"] for r in audit_rows(api, "auth.login_failure")] == ["not a local account"] * 2
    assert users_named(api, "alice")[0]["has_password"] is False


def test_local_account_is_not_taken_over(api: Stack, slapd: SlapdServer, idp: OidcProviderServer):
    api.expect(api.client.post(PROVIDERS, json=ldap_provider(slapd)), 201)
    api.expect(api.client.post(PROVIDERS, json=oidc_provider(idp.issuer)), 201)
    for name in ("alice", "dana"):
        api.expect(api.client.post("/api/users", json={"username": name, "password": "Local-Passw0rd-77",
                                                         "level_names": ["viewer"]}), 201)
    refused = ldap_login(api, "alice")
    assert refused.status_code == 409, refused.text
    assert "already exists" in detail_text(refused) and "local password" in detail_text(refused)
    web = browser(api)
    params = oidc_authorize(api, web, "dana")  # an admin at the provider
    answer = web.get("/api/auth/external/oidc/callback", params=params)
    assert answer.status_code == 409 and "local password" in detail_text(answer) and "st_session" not in web.cookies
    for name in ("alice", "dana"):
        (local,) = users_named(api, name)
        assert local["auth_source"] == "local" and local["level_names"] == ["viewer"] and local["has_password"]
    assert api.anon.post("/api/auth/login", json={"username": "alice", "password": "Local-Passw0rd-77"}).status_code == 200
    assert {r[0] for r in audit_rows(api, "auth.login_failure")} == {"alice", "dana"}


# ---- OIDC ----------------------------------------------------------------------------------------------

def test_oidc_browser_flow_and_single_use_state(api: Stack, idp: OidcProviderServer):
    api.expect(api.client.post(PROVIDERS, json=oidc_provider(idp.issuer)), 201)
    web = browser(api)
    params = oidc_authorize(api, web, "alice")
    assert db_rows(api, "SELECT provider, redirect_uri FROM oauthstate WHERE state_hash = ?",
                   hashlib.sha256(params["state"].encode()).hexdigest()) == [("corp-sso", CALLBACK)]
    done = api.expect(web.get("/api/auth/external/oidc/callback", params=params), 200)
    user = done["user"]
    assert (user["username"], user["level_names"], user["auth_source"], user["email"], user["display_name"]) == (
        "alice", ["admin"], "oidc:corp-sso", "alice@corp.test", "Alice Admin")
    me = api.expect(web.get("/api/users/me"), 200)
    assert me["id"] == user["id"] and me["auth_method"] == "session"
    assert web.post("/api/auth/api-keys", json={"name": "k"}).status_code == 403  # CSRF still required
    assert web.post("/api/auth/api-keys", json={"name": "k"},
                    headers={"X-CSRF-Token": done["csrf_token"]}).status_code == 201

    replay = browser(api).get("/api/auth/external/oidc/callback", params=params)
    assert replay.status_code == 400 and detail_text(replay) == "invalid or expired oauth state"
    assert db_rows(api, "SELECT COUNT(*) FROM oauthstate") == [(0,)]
    for bad in ({**params, "state": "forged"}, {"code": params["code"]}):
        assert browser(api).get("/api/auth/external/oidc/callback", params=bad).status_code == 400

    # JSON start for a single-page app; bob maps through role_mapping.user_groups
    start = web.get("/api/auth/external/oidc/start", params={"provider": "corp-sso", "redirect_uri": CALLBACK},
                    headers={"Accept": "application/json"})
    url = api.expect(start, 200)["authorization_url"]
    assert url.startswith(idp.issuer) and "code_challenge_method=S256" in url
    params = oidc_authorize(api, web, "bob")
    with ThreadPoolExecutor(2) as pool:  # the same callback twice at once (same browser): exactly one wins
        racing = list(pool.map(lambda _: same_browser(api, web).get("/api/auth/external/oidc/callback",
                                                                     params=params), "ab"))
    assert sorted(r.status_code for r in racing) == [200, 400], [r.text for r in racing]
    bob = next(r for r in racing if r.status_code == 200).json()["user"]
    assert bob["level_names"] == ["researcher"] and bob["auth_source"] == "oidc:corp-sso"
    params = oidc_authorize(api, web, "mallory")  # same preferred_username, another subject: no takeover
    impostor = web.get("/api/auth/external/oidc/callback", params=params)
    assert impostor.status_code == 409 and "another oidc:corp-sso identity" in detail_text(impostor)
    assert users_named(api, "bob")[0]["level_names"] == ["researcher"]
    params = oidc_authorize(api, web, "alice")
    assert api.expect(web.get("/api/auth/external/oidc/callback", params=params), 200)["user"]["id"] == user["id"]
    assert len(users_named(api, "alice")) == 1

    params = oidc_authorize(api, web, "nora")
    unmapped = web.get("/api/auth/external/oidc/callback", params=params)
    assert unmapped.status_code == 403 and users_named(api, "nora") == []
    other = web.get("/api/auth/external/oidc/start", params={"provider": "corp-sso", "redirect_uri": NOT_ALLOWED})
    assert other.status_code == 400 and "allowed_redirect_uris" in detail_text(other)
    assert web.get("/api/auth/external/oidc/start", params={"provider": "nope", "redirect_uri": CALLBACK}
                   ).status_code == 404
    methods = [r[3]["method"] for r in audit_rows(api, "auth.login")]
    assert methods == ["oidc:corp-sso"] * 3
    assert len(audit_rows(api, "auth.login_failure")) == 6  # replay, forged, no state, race, mallory, nora


def test_oidc_login_is_bound_to_the_browser_that_started_it(api: Stack, idp: OidcProviderServer):
    api.expect(api.client.post(PROVIDERS, json=oidc_provider(idp.issuer)), 201)
    web = browser(api)
    start = web.get("/api/auth/external/oidc/start", params={"provider": "corp-sso", "redirect_uri": CALLBACK})
    assert start.status_code == 302, start.text
    cookie = start.headers["set-cookie"].lower()
    assert cookie.startswith("st_oidc_browser=") and "httponly" in cookie and "samesite=lax" in cookie, cookie
    assert "path=/api/auth/external/oidc" in cookie
    binding = web.cookies["st_oidc_browser"]
    stored = db_rows(api, "SELECT * FROM oauthstate")
    assert [r for r in stored[0] if r == hashlib.sha256(binding.encode()).hexdigest()] and binding not in str(stored)
    with httpx.Client(timeout=15, trust_env=False) as idp_browser:
        final = login_through_browser_forms(idp_browser, start.headers["location"], "alice", CALLBACK)
    params = dict(httpx.URL(final).params)

    # the link to the callback opened in another browser (no cookie, or another one): refused, nothing consumed
    lured = browser(api)
    for cookies in ({}, {"st_oidc_browser": "guessed"}):
        lured.cookies.clear()
        lured.cookies.update(cookies)
        refused = lured.get("/api/auth/external/oidc/callback", params=params)
        assert refused.status_code == 400 and "not started in this browser" in detail_text(refused), refused.text
        assert "st_session" not in lured.cookies
    assert users_named(api, "alice") == [] and len(db_rows(api, "SELECT 1 FROM oauthstate")) == 1
    failures = audit_rows(api, "auth.login_failure")
    assert len(failures) == 2 and all("not started in this browser" in r[3]["reason"] for r in failures), failures

    done = api.expect(web.get("/api/auth/external/oidc/callback", params=params), 200)  # the right browser
    assert done["user"]["username"] == "alice" and web.cookies.get("st_session")
    assert "st_oidc_browser" not in web.cookies  # spent with the state
    json_start = web.get("/api/auth/external/oidc/start", params={"provider": "corp-sso", "redirect_uri": CALLBACK},
                         headers={"Accept": "application/json"})
    assert api.expect(json_start, 200)["authorization_url"] and web.cookies.get("st_oidc_browser")


def test_callback_code_and_state_never_reach_the_log(api: Stack, idp: OidcProviderServer):
    api.expect(api.client.post(PROVIDERS, json=oidc_provider(idp.issuer)), 201)
    web = browser(api)
    good = oidc_authorize(api, web, "alice")
    api.expect(web.get("/api/auth/external/oidc/callback", params=good), 200)
    forged = {"code": "forged-code-" + good["code"][:6], "state": "forged-state-value"}
    assert web.get("/api/auth/external/oidc/callback", params=forged).status_code == 400
    lines = api.wait_for(lambda: [line for line in api.api.log_text().splitlines() if "/oidc/callback?" in line],
                         15, "the access log lines of both callbacks", until=lambda found: len(found) == 2)
    assert all("code=[redacted]&state=[redacted]" in line for line in lines), lines
    log = api.api.log_text()
    for secret in (good["code"], good["state"], forged["code"], forged["state"]):
        assert secret not in log, secret


def test_expired_oauth_state_is_refused(stack_factory, idp: OidcProviderServer):
    stack = stack_factory(start=False, extra_env={"SIMPLETUNER_OAUTH_STATE_TTL_SECONDS": str(TTL)})
    stack.start_api()
    stack.expect(stack.client.post(PROVIDERS, json=oidc_provider(idp.issuer)), 201)
    web = browser(stack)
    start = web.get("/api/auth/external/oidc/start", params={"provider": "corp-sso", "redirect_uri": CALLBACK},
                    headers={"Accept": "application/json"})
    answered = time.monotonic()
    assert stack.expect(start, 200)["expires_in"] == int(TTL)
    with httpx.Client(timeout=15, trust_env=False) as idp_browser:
        final = login_through_browser_forms(idp_browser, start.json()["authorization_url"], "alice", CALLBACK)
    params = dict(httpx.URL(final).params)
    assert len(db_rows(stack, "SELECT 1 FROM oauthstate")) == 1
    stack.wait_for(lambda: time.monotonic() > answered + TTL + 0.2, TTL + 10, "the OAuth state's lifetime to pass")
    late = web.get("/api/auth/external/oidc/callback", params=params)
    assert late.status_code == 400 and detail_text(late) == "invalid or expired oauth state"
    assert users_named(stack, "alice") == [] and db_rows(stack, "SELECT 1 FROM oauthstate") == []


def test_config_file_oidc_block_is_imported(stack_factory, idp: OidcProviderServer):
    stack = stack_factory(start=False, extra_env={"OIDC_CLIENT_SECRET": CLIENT_SECRET})
    stack.enterprise_config.write_text(f"""\
oidc:
  enabled: true
  provider: "okta"
  client_id: "{CLIENT_ID}"
  client_secret: "${{OIDC_CLIENT_SECRET}}"
  issuer_url: "{idp.issuer}"
  scopes: ["openid", "email", "profile", "groups"]
  allowed_redirect_uris: ["{CALLBACK}"]
  role_mapping:
    claim: "groups"
    admin_groups: ["ML-Platform-Admins"]
    user_groups: ["ML-Researchers"]
""")
    stack.start_api()
    okta = stack.expect(stack.client.get(f"{PROVIDERS}/okta"), 200)
    assert okta["source"] == "config_file" and okta["provider_type"] == "oidc" and okta["enabled"]
    assert okta["config"]["client_secret"] == "********" and CLIENT_SECRET not in json.dumps(okta)
    edit = stack.client.patch(f"{PROVIDERS}/okta", json={"enabled": False})
    assert edit.status_code == 409 and "config file" in detail_text(edit)
    web = browser(stack)
    params = oidc_authorize(stack, web, "bob", provider="okta")
    bob = stack.expect(web.get("/api/auth/external/oidc/callback", params=params), 200)["user"]
    assert bob["level_names"] == ["researcher"] and bob["auth_source"] == "oidc:okta"
    assert [r[0] for r in audit_rows(stack, "external_auth.provider_created")] == ["system:config_file"]
    # stored encrypted like secrets sent over REST; an unchanged file changes nothing at the next start
    ((config, sealed),) = db_rows(stack, "SELECT config, encrypted_secrets FROM externalauthprovider")
    assert CLIENT_SECRET not in config and CLIENT_SECRET not in sealed
    key = (stack.data_dir / "secret.key").read_bytes().strip()
    assert Fernet(key).decrypt(json.loads(sealed)["client_secret"].encode()).decode() == CLIENT_SECRET
    stack.api.terminate_and_wait()
    stack.start_api()
    assert db_rows(stack, "SELECT config, encrypted_secrets FROM externalauthprovider") == [(config, sealed)]
    assert audit_rows(stack, "external_auth.provider_updated") == []
