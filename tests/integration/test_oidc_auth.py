"""OIDC login (activities.identity.sso.oidc_auth) against a real provider: panva oidc-provider under node.

The provider enforces PKCE, signs ID tokens with its development RS256 key and shows the
development login/consent forms, which ``login_through_browser_forms`` walks like a browser.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from activities.identity.sso import oidc_auth as oidc
from activities.identity.external_identity import (
    ExternalIdentity, InvalidCredentials, NotMapped, ProviderMisconfigured, ProviderUnavailable)
from tests.ports import free_port
from tests.servers.oidc_server import OidcProviderServer, login_through_browser_forms

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CALLBACK = "http://127.0.0.1:9/auth/oidc/callback"
OTHER_CALLBACK = "http://127.0.0.1:9/other/callback"
CLIENT_ID, CLIENT_SECRET = "simpletuner", "s3cret-for-tests"
SCOPES = ["openid", "email", "profile", "groups", "roles"]
USERS: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@corp.test", "email_verified": True, "preferred_username": "alice",
              "name": "Alice Admin", "groups": ["ML-Platform-Admins", "Everyone"]},
    "lena": {"email": "lena@corp.test", "preferred_username": "lena", "groups": ["ML-Platform-Admins", "ML-Leads"]},
    "rita": {"email": "rita@corp.test", "preferred_username": "rita", "given_name": "Rita", "family_name": "R",
             "realm_access": {"roles": ["offline_access", "ml-researcher"]}},
    "nora": {"email": "nora@corp.test", "email_verified": False, "groups": ["Marketing"]},
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProviderServer]:
    server = OidcProviderServer(
        tmp_path_factory.mktemp("oidc"), users=USERS,
        clients=[{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "redirect_uris": [CALLBACK, OTHER_CALLBACK]}])
    started = time.monotonic()
    server.start()  # no skip: make test installs the provider, a missing one must fail loudly
    print(f"oidc provider {server.issuer} started in {time.monotonic() - started:.2f}s")
    oidc.clear_cache()
    yield server
    assert server.stop() == 0, server.log_tail()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def make_config(issuer: str, /, **overrides: Any) -> oidc.OidcConfig:
    data: dict[str, Any] = {
        "issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scopes": SCOPES,
        "role_mapping": {"claim": "groups", "admin_groups": ["ML-Platform-Admins"]},
        "allowed_redirect_uris": [CALLBACK, OTHER_CALLBACK]}
    data.update(overrides)
    return oidc.OidcConfig.model_validate(data)


async def authorize(config: oidc.OidcConfig, http: httpx.AsyncClient, username: str, redirect_uri: str = CALLBACK,
                    sync_browser: bool = False) -> tuple[oidc.PendingLogin, dict[str, str]]:
    """begin_login + the browser part; returns the pending login and the callback's query params."""
    pending = await oidc.begin_login(config, "corp-sso", redirect_uri, http)
    if sync_browser:  # the provider is another process, so blocking the loop briefly is fine
        with httpx.Client(timeout=10) as browser:
            final = login_through_browser_forms(browser, pending.authorization_url, username, redirect_uri)
    else:
        async with httpx.AsyncClient(timeout=10) as browser:  # fresh cookies: a new browser per login
            final = await login_through_browser_forms(browser, pending.authorization_url, username, redirect_uri)
    assert isinstance(final, str)
    assert final.startswith(redirect_uri)
    return pending, dict(httpx.URL(final).params)


async def login(config: oidc.OidcConfig, http: httpx.AsyncClient, username: str) -> ExternalIdentity:
    pending, params = await authorize(config, http, username)
    return await oidc.complete_login(config, pending, params, http)


async def test_admin_group_maps_to_admin(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    pending, params = await authorize(make_config(provider.issuer), http, "alice")
    assert params["state"] == pending.state and params["iss"] == provider.issuer and params["code"]
    assert pending.provider == "corp-sso" and pending.redirect_uri == CALLBACK
    assert "code_challenge_method=S256" in pending.authorization_url
    assert pending.code_verifier not in pending.authorization_url
    ident = await oidc.complete_login(make_config(provider.issuer), pending, params, http)
    assert ident == ExternalIdentity(
        provider="corp-sso", subject="alice", username="alice", email="alice@corp.test",
        display_name="Alice Admin", groups=("ML-Platform-Admins", "Everyone"), levels=("admin",))


async def test_each_level_once_highest_included(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer, level_mapping={"ML-Leads": ["lead", "admin"]})
    ident = await login(config, http, "lena")
    assert ident.levels == ("lead", "admin")


@pytest.mark.parametrize("mapping", [
    {"roles_claim": "realm_access.roles", "role_mapping": None, "level_mapping": {"ml-researcher": ["researcher"]}},
    {"role_mapping": {"claim": "realm_access.roles", "user_groups": ["ml-researcher"]}},
], ids=["roles_claim+level_mapping", "role_mapping.claim+user_groups"])
async def test_researcher_from_dotted_roles_claim(provider: OidcProviderServer, http: httpx.AsyncClient,
                                                  mapping: dict[str, Any]) -> None:
    ident = await login(make_config(provider.issuer, **mapping), http, "rita")
    assert ident.levels == ("researcher",)
    assert ident.groups == ("offline_access", "ml-researcher")
    assert ident.display_name == "Rita R" and ident.username == "rita"


async def test_unmapped_user_is_refused(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    with pytest.raises(NotMapped) as err:
        await login(make_config(provider.issuer), http, "nora")
    assert err.value.status_code == 403


async def test_default_level_for_unmapped_user(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    ident = await login(make_config(provider.issuer, default_level="viewer"), http, "nora")
    assert ident.levels == ("viewer",) and ident.groups == ("Marketing",)
    # no preferred_username, and the email is unverified: neither may name the user
    assert ident.email is None and ident.username == "nora" == ident.subject


async def test_wrong_state_is_refused(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer)
    pending, params = await authorize(config, http, "alice")
    for bad in ({**params, "state": secrets.token_urlsafe(32)}, {k: v for k, v in params.items() if k != "state"}):
        with pytest.raises(InvalidCredentials, match="Invalid OAuth state"):
            await oidc.complete_login(config, pending, bad, http)
    assert (await oidc.complete_login(config, pending, params, http)).levels == ("admin",)


async def test_callback_from_another_issuer_is_refused(provider: OidcProviderServer,
                                                        http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer)
    pending, params = await authorize(config, http, "alice")
    without_iss = {k: v for k, v in params.items() if k != "iss"}  # the provider announces RFC 9207
    for bad in ({**params, "iss": "https://evil.example"}, without_iss):
        with pytest.raises(InvalidCredentials, match="issuer"):
            await oidc.complete_login(config, pending, bad, http)


async def test_wrong_client_secret_is_misconfigured(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer, client_secret="not-the-secret")
    pending, params = await authorize(config, http, "alice")
    with pytest.raises(ProviderMisconfigured, match="invalid_client"):
        await oidc.complete_login(config, pending, params, http)


async def test_code_cannot_be_replayed(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer)
    pending, params = await authorize(config, http, "alice")
    await oidc.complete_login(config, pending, params, http)
    with pytest.raises(InvalidCredentials, match="invalid_grant"):
        await oidc.complete_login(config, pending, params, http)


async def test_tampered_nonce_is_refused(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer)
    pending, params = await authorize(config, http, "alice")
    tampered = pending.model_copy(update={"nonce": secrets.token_urlsafe(32)})
    with pytest.raises(InvalidCredentials, match="nonce"):
        await oidc.complete_login(config, tampered, params, http)


async def test_wrong_code_verifier_is_refused_by_provider(provider: OidcProviderServer,
                                                           http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer)
    pending, params = await authorize(config, http, "alice", sync_browser=True)
    tampered = pending.model_copy(update={"code_verifier": secrets.token_urlsafe(64)})
    with pytest.raises(InvalidCredentials, match="invalid_grant"):
        await oidc.complete_login(config, tampered, params, http)


async def test_provider_requires_pkce(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    """An authorization request without code_challenge comes back with error=invalid_request."""
    config = make_config(provider.issuer)
    pending = await oidc.begin_login(config, "corp-sso", CALLBACK, http)
    url = httpx.URL(pending.authorization_url)
    url = url.copy_with(params={k: v for k, v in url.params.items() if not k.startswith("code_challenge")})
    resp = await http.get(url, follow_redirects=False)
    assert resp.is_redirect and resp.headers["location"].startswith(CALLBACK)
    params = dict(httpx.URL(resp.headers["location"]).params)
    assert params["error"] == "invalid_request" and params["state"] == pending.state
    with pytest.raises(InvalidCredentials, match="invalid_request"):
        await oidc.complete_login(config, pending, params, http)


async def test_user_abort_reports_provider_error(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer)
    pending = await oidc.begin_login(config, "corp-sso", CALLBACK, http)
    async with httpx.AsyncClient(timeout=10) as browser:
        resp = await browser.get(pending.authorization_url, follow_redirects=True)
        assert resp.status_code == 200 and "/interaction/" in resp.url.path  # the login form
        resp = await browser.get(f"{resp.url}/abort")
        while resp.is_redirect and not resp.headers["location"].startswith(CALLBACK):
            resp = await browser.get(resp.url.join(resp.headers["location"]))
    assert resp.is_redirect
    params = dict(httpx.URL(resp.headers["location"]).params)
    assert params["error"] == "access_denied"
    with pytest.raises(InvalidCredentials, match="access_denied"):
        await oidc.complete_login(config, pending, params, http)


async def test_redirect_uri_must_be_allowed(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer, allowed_redirect_uris=[CALLBACK])
    with pytest.raises(oidc.RedirectNotAllowed) as err:
        await oidc.begin_login(config, "corp-sso", OTHER_CALLBACK, http)
    assert err.value.status_code == 400 and "allowed_redirect_uris" in err.value.detail
    # a pending login whose redirect_uri was removed from the list meanwhile is refused too
    pending, params = await authorize(make_config(provider.issuer), http, "alice", redirect_uri=OTHER_CALLBACK)
    with pytest.raises(oidc.RedirectNotAllowed):
        await oidc.complete_login(config, pending, params, http)


async def test_issuer_mismatch_is_misconfigured(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    config = make_config(provider.issuer + "/")  # same server, but not the issuer it announces
    with pytest.raises(ProviderMisconfigured, match="issuer mismatch") as err:
        await oidc.discover(config, http)
    assert err.value.status_code == 422
    with pytest.raises(ProviderMisconfigured):
        await oidc.begin_login(config, "corp-sso", CALLBACK, http)


async def test_provider_down_is_unavailable(http: httpx.AsyncClient) -> None:
    config = make_config(f"http://127.0.0.1:{free_port()}")
    for call in (oidc.discover(config, http), oidc.test_provider(config, http),
                 oidc.begin_login(config, "corp-sso", CALLBACK, http)):
        with pytest.raises(ProviderUnavailable) as err:
            await call
        assert err.value.status_code == 503


async def test_test_provider_reports_endpoints(provider: OidcProviderServer, http: httpx.AsyncClient) -> None:
    result = await oidc.test_provider(make_config(provider.issuer, scopes=["openid", "offline_access", "nope"]), http)
    assert result["ok"] and result["issuer"] == provider.issuer and result["jwks_keys"] >= 1
    assert result["pkce_s256"] is True and result["unsupported_scopes"] == ["nope"]
    assert result["token_endpoint"].startswith(provider.issuer)


def test_config_accepts_seed_aliases() -> None:
    config = oidc.OidcConfig.model_validate({
        "issuer_url": "https://keycloak.example.com/realms/ml-training", "client_id": "simpletuner",
        "client_secret": "x", "roles_claim": "realm_access.roles",
        "role_mapping": {"claim": "groups", "admin_groups": ["ML-Platform-Admins"], "user_groups": ["ML-Researchers"]}})
    assert config.issuer == "https://keycloak.example.com/realms/ml-training"
    assert config.scopes == ["openid", "email", "profile"] and config.username_claim == "preferred_username"
    assert config.role_mapping is not None and config.role_mapping.researcher_groups == ["ML-Researchers"]
    assert config.default_level is None and config.allowed_redirect_uris == []
    assert "x" not in repr(config.client_secret)


@pytest.mark.parametrize("overrides, message", [
    ({"scopes": ["email", "profile"]}, "must include 'openid'"),
    ({"default_level": "superuser"}, "unknown level 'superuser'"),
    ({"level_mapping": {"ML-Admins": ["root"]}}, r"level_mapping\.ML-Admins\.0\n.*unknown level 'root'"),
    ({"issuer": "ftp://idp.example"}, r"issuer\n.*must be an absolute http\(s\) URL"),
    ({"issuer": "https://idp.example/realm?x=1"}, "no query string"),
    ({"roles_claim": "realm_access..roles"}, "dotted names"),
    ({"allowed_redirect_uris": ["/relative/callback"]}, "allowed_redirect_uris"),
    ({"client_id": ""}, "at least 1 character"),
    ({"enabled": True}, "Extra inputs are not permitted"),
    ({"role_mapping": {"admin_group": ["typo"]}}, "Extra inputs are not permitted"),
])
def test_config_validation_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_config("https://idp.example", **overrides)
