"""The console's sign-in providers (``/admin/sso``, the set-up's sign-in step) and sign-in through them,
in a real Chromium against a real API, a real OpenID provider (panva oidc-provider under node) and a
real slapd. One API process, one provider and one directory serve the whole module: each test uses
providers and accounts of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.visit import MARKUP, Visit, sign_in_with_key, sign_in_with_password
from tests.e2e.conftest import shared_api  # noqa: F401 (a fixture)
from tests.e2e.stack import Stack
from tests.e2e.test_users_and_auth import make_user
from tests.servers.ldap_server import PASSWORDS, SUFFIX, SVC_DN, SVC_PW, SlapdServer
from tests.servers.oidc_server import OidcProviderServer

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

CLIENT_ID, CLIENT_SECRET = "simpletuner-console", "console-oidc-s3cret"
IDP_USERS = {"olivia": {"email": "olivia@corp.test", "email_verified": True, "preferred_username": "olivia",
                        "name": "Olivia O", "groups": ["ML-Researchers"]}}
PROVIDERS = "/api/cloud/external-auth/providers"
ADMINS_DN = "CN=ML-Admins,OU=Groups,DC=corp,DC=test"
MASK = "********"


@pytest.fixture(scope="module")
def stack(shared_api: Stack) -> Stack:  # noqa: F811 - the browser fixtures' stack: API only, per module
    """Sign-in needs neither the worker host nor agents: one API process for the module."""
    return shared_api


@pytest.fixture(scope="module")
def idp(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProviderServer]:
    server = OidcProviderServer(tmp_path_factory.mktemp("idp"), users=IDP_USERS, clients=[
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [f"{stack.api_url}/sign-in/oidc"]}])
    server.start()  # no skip: make test installs the provider, a missing one must fail loudly
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slapd() -> Iterator[SlapdServer]:
    server = SlapdServer().start()
    yield server
    server.stop()


def audit_actions(stack: Stack, target: str) -> list[tuple[str, str]]:
    rows = stack.sql("SELECT actor, action FROM auditentry WHERE target_type = 'external_auth_provider' "
                     "AND target_id = :target ORDER BY id", target=target)
    return [(r["actor"], r["action"]) for r in rows]


def run_test(admin: Visit, name: str, ok: bool) -> None:
    admin.page.locator(f'tr[data-provider="{name}"]').get_by_role("button", name=f"Test {name}").click()
    result = admin.page.locator("#test-result")
    expect(result).to_have_attribute("data-provider", name)
    expect(result).to_have_attribute("data-ok", "yes" if ok else "no")
    expect(result).to_have_attribute("role", "status" if ok else "alert")


def test_oidc_provider_added_on_the_console_signs_a_user_in(stack, idp, tab):
    admin = tab()
    sign_in_with_key(admin, stack.admin_token)
    admin.goto("/admin", "admin-index")
    admin.page.get_by_role("link", name="Sign-in providers").click()
    admin.page.wait_for_url("**/admin/sso")
    admin.page.get_by_role("link", name="New OIDC provider").click()
    page = admin.page
    expect(page.get_by_label("Allowed redirect URIs")).to_have_value(f"{stack.api_url}/sign-in/oidc")  # prefilled
    page.get_by_label("Name", exact=True).fill("corp-sso")
    page.get_by_label("Issuer URL").fill(idp.issuer)
    page.get_by_label("Client ID").fill(CLIENT_ID)
    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    page.get_by_label("Scopes").fill("openid email profile groups")
    page.get_by_label("Groups to levels").fill("ML-Researchers = researcher")
    admin.shot("sso-new-oidc")
    page.get_by_role("button", name="Add provider").click()
    page.wait_for_url("**/admin/sso")
    row = page.locator('tr[data-provider="corp-sso"]')
    expect(row).to_contain_text(idp.issuer)
    expect(row.locator(".status")).to_have_text("enabled")
    expect(row.locator("[data-secret]")).to_have_text("set")

    run_test(admin, "corp-sso", ok=True)
    expect(page.locator("#test-result")).to_contain_text(f"Test of corp-sso: ok. issuer {idp.issuer}")
    admin.shot("sso-oidc-tested")
    assert CLIENT_SECRET not in page.content()
    admin.goto("/admin/sso/corp-sso/edit", "sso-edit-oidc")
    expect(page.locator("#provider [data-secret]")).to_have_text("set")
    expect(page.get_by_label("Client secret")).to_have_value("")
    assert CLIENT_SECRET not in page.content()

    made = stack.expect(stack.client.get(f"{PROVIDERS}/corp-sso"), 200)  # what REST sees: the same provider
    assert made["config"]["client_secret"] == MASK and made["level_mapping"] == {"ML-Researchers": ["researcher"]}
    assert made["config"]["allowed_redirect_uris"] == [f"{stack.api_url}/sign-in/oidc"]
    assert audit_actions(stack, "corp-sso") == [("admin", "external_auth.provider_created")]

    # a new browser signs in with the provider's button and the provider's own login and consent forms
    user = tab()
    user.context.route("https://fonts.googleapis.com/**", lambda route: route.abort())  # the provider's page's font
    user.goto("/sign-in", "sign-in-with-sso")
    user.page.get_by_role("link", name="Sign in with corp-sso").click()
    user.page.wait_for_url(f"{idp.issuer}/**")
    user.page.locator('input[name="login"]').fill("olivia")
    user.page.locator('input[name="password"]').fill("any-password")
    user.page.get_by_role("button", name="Sign-in").click()
    user.page.get_by_role("button", name="Continue").click()  # the consent form
    user.page.wait_for_url(f"{stack.api_url}/jobs")
    expect(user.page.locator(".who .user")).to_have_text("olivia")
    user.shot("signed-in-with-oidc")
    olivia = [u for u in stack.expect(stack.client.get("/api/users"), 200)["users"] if u["username"] == "olivia"]
    assert [(u["auth_source"], u["level_names"]) for u in olivia] == [("oidc:corp-sso", ["researcher"])]
    assert not admin.dialogs and not user.dialogs


def test_ldap_directory_from_the_set_up_step_signs_a_user_in(stack, slapd, tab):
    admin = tab()
    sign_in_with_key(admin, stack.admin_token)
    admin.goto("/setup/auth", "setup-auth")
    form = admin.page.locator("#ldap-form")
    form.get_by_label("Name", exact=True).fill("corp-ldap")
    form.get_by_label("Server URL").fill(slapd.url)
    form.get_by_label("Base DN").fill(SUFFIX)
    form.get_by_label("Bind DN").fill(SVC_DN)
    form.get_by_label("Bind password").fill(SVC_PW)
    form.get_by_label("Groups to levels").fill(f"ML-Researchers = researcher\n{ADMINS_DN} = admin")
    form.get_by_role("button", name="Add the LDAP directory").click()
    expect(admin.page.locator("#step-items")).to_contain_text("corp-ldap (ldap)")
    admin.shot("setup-auth-ldap-added")
    assert SVC_PW not in admin.page.content()

    admin.goto("/admin/sso", "sso-list-ldap")
    expect(admin.page.locator('tr[data-provider="corp-ldap"]')).to_contain_text(slapd.url)
    run_test(admin, "corp-ldap", ok=True)
    expect(admin.page.locator("#test-result")).to_contain_text(f"bound as {SVC_DN}")

    # an edit that leaves the bind password empty keeps the stored one: the test still binds
    edit(admin, "corp-ldap", timeout="7")
    run_test(admin, "corp-ldap", ok=True)
    # a wrong one: the test says why it fails; then the right one again
    edit(admin, "corp-ldap", bind_password="not-the-password")
    run_test(admin, "corp-ldap", ok=False)
    expect(admin.page.locator("#test-result")).to_contain_text("service bind rejected")
    admin.shot("sso-ldap-test-failed")
    edit(admin, "corp-ldap", bind_password=SVC_PW)
    run_test(admin, "corp-ldap", ok=True)
    assert SVC_PW not in admin.page.content() and "not-the-password" not in admin.page.content()
    stored = stack.expect(stack.client.get(f"{PROVIDERS}/corp-ldap"), 200)
    assert stored["config"]["timeout_seconds"] == 7 and stored["config"]["bind_password"] == MASK
    assert stored["level_mapping"] == {"ML-Researchers": ["researcher"], ADMINS_DN: ["admin"]}

    user = tab(width=390, height=844)  # phone width
    user.goto("/sign-in", "sign-in-ldap-phone")
    card = user.page.locator("section", has=user.page.get_by_role("heading", name="corp-ldap"))
    card.get_by_label("Username").fill("bob")
    card.get_by_label("Password").fill("wrong-password")
    card.get_by_role("button", name="Sign in with corp-ldap").click()
    expect(user.page.get_by_role("alert")).to_have_text("invalid username or password")
    user.shot("sign-in-ldap-refused")
    card.get_by_label("Username").fill("bob")
    card.get_by_label("Password").fill(PASSWORDS["bob"])
    card.get_by_role("button", name="Sign in with corp-ldap").click()
    user.page.wait_for_url(f"{stack.api_url}/jobs")
    expect(user.page.locator(".who .user")).to_have_text("bob")
    bob = [u for u in stack.expect(stack.client.get("/api/users"), 200)["users"] if u["username"] == "bob"]
    assert [(u["auth_source"], u["level_names"]) for u in bob] == [("ldap:corp-ldap", ["researcher"])]


def edit(admin: Visit, name: str, timeout: str | None = None, bind_password: str | None = None) -> None:
    admin.goto(f"/admin/sso/{name}/edit", f"sso-edit-{name}")
    page = admin.page
    if timeout is not None:
        page.get_by_text("More settings").click()
        page.get_by_label("Timeout (seconds)").fill(timeout)
    if bind_password is not None:
        page.get_by_label("Bind password").fill(bind_password)
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/admin/sso")


def test_provider_forms_refuse_bad_input_and_keep_secrets_out_of_pages(stack, slapd, tab):
    admin = tab()
    sign_in_with_key(admin, stack.admin_token)
    page = admin.page
    admin.goto("/admin/sso/new?type=oidc", "sso-new-oidc-empty")
    page.get_by_label("Name", exact=True).fill("half-done")
    page.get_by_label("Client ID").fill("some-client")
    page.get_by_label("Client secret").fill("half-done-s3cret")
    page.get_by_label("Issuer URL").evaluate("field => field.removeAttribute('required')")  # let the server judge
    with page.expect_response(lambda r: r.url.endswith("/admin/sso/new") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Add provider").click()
    assert posted.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("config.issuer: Field required")
    expect(page.get_by_label("Name", exact=True)).to_have_value("half-done")  # typed values stay
    expect(page.get_by_label("Client ID")).to_have_value("some-client")
    expect(page.get_by_label("Client secret")).to_have_value("")  # secrets do not
    assert "half-done-s3cret" not in page.content()
    admin.shot("sso-new-oidc-refused")

    admin.goto("/admin/sso/new?type=ldap", "sso-new-ldap")
    fill_ldap(admin, "spare-ldap", slapd.url, "ML-Researchers = wizard")
    page.get_by_role("button", name="Add provider").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown level 'wizard'")
    fill_ldap(admin, "spare-ldap", "http://not-ldap.corp.test", f"{MARKUP} = viewer")
    page.get_by_role("button", name="Add provider").click()
    expect(page.get_by_role("alert")).to_contain_text("server must be an ldap:// or ldaps:// URL")
    expect(page.get_by_label("Groups to levels")).to_have_value(f"{MARKUP} = viewer")
    fill_ldap(admin, "spare-ldap", slapd.url, f"{MARKUP} = viewer")
    page.get_by_role("button", name="Add provider").click()
    page.wait_for_url("**/admin/sso")
    expect(page.locator('tr[data-provider="spare-ldap"] [data-secret]')).to_have_text("set")
    assert SVC_PW not in page.content()

    admin.goto("/admin/sso/new?type=ldap", "sso-new-ldap-again")  # the name is taken: 409
    fill_ldap(admin, "spare-ldap", slapd.url, "")
    with page.expect_response(lambda r: r.url.endswith("/admin/sso/new") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Add provider").click()
    assert posted.value.status == 409
    expect(page.get_by_role("alert")).to_contain_text("already exists")

    # hand-made posts: refused with a page, never a 500
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    for path, form, status in (("/admin/sso/new", {"provider_type": "saml", "name": "x"}, 422),
                               ("/admin/sso/new", {"provider_type": "ldap", "name": "bad name!"}, 422),
                               ("/admin/sso/new", {"provider_type": "ldap", "name": "t", "timeout_seconds": "x"}, 422),
                               ("/admin/sso/new", {"provider_type": "oidc", "name": "t", "scopes": "email"}, 422),
                               ("/admin/sso/no-such/test", {}, 404), ("/admin/sso/no-such/edit", {}, 404),
                               ("/admin/sso/no-such/disable", {}, 404), ("/admin/sso/spare-ldap/delete", {}, 422)):
        assert page.request.post(path, form={"csrf": csrf, **form}).status == status, (path, form)
    assert page.request.get("/admin/sso/new?type=saml").status == 422

    # disable: the sign-in page no longer offers it; enable; delete (confirmed)
    admin.goto("/admin/sso", "sso-list")
    page.get_by_role("button", name="Disable spare-ldap").click()
    expect(page.locator('tr[data-provider="spare-ldap"] .status')).to_have_text("disabled")
    offered = [p["name"] for p in stack.expect(stack.anon.get("/api/auth/external/providers"), 200)["providers"]]
    assert "spare-ldap" not in offered
    page.get_by_role("button", name="Enable spare-ldap").click()
    expect(page.locator('tr[data-provider="spare-ldap"] .status')).to_have_text("enabled")
    admin.goto("/admin/sso/spare-ldap/edit", "sso-edit-markup")
    expect(page.get_by_label("Groups to levels")).to_have_value(f"{MARKUP} = viewer")  # as text
    page.get_by_label("Yes, delete spare-ldap").check()
    page.get_by_role("button", name="Delete provider").click()
    page.wait_for_url("**/admin/sso")
    expect(page.locator('tr[data-provider="spare-ldap"]')).to_have_count(0)
    assert stack.client.get(f"{PROVIDERS}/spare-ldap").status_code == 404
    assert audit_actions(stack, "spare-ldap") == [
        ("admin", "external_auth.provider_created"), ("admin", "external_auth.provider_updated"),
        ("admin", "external_auth.provider_updated"), ("admin", "external_auth.provider_deleted")]
    assert not admin.dialogs


def fill_ldap(admin: Visit, name: str, server: str, mapping: str) -> None:
    page = admin.page
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Server URL").fill(server)
    page.get_by_label("Base DN").fill(SUFFIX)
    page.get_by_label("Bind DN").fill(SVC_DN)
    page.get_by_label("Bind password").fill(SVC_PW)
    page.get_by_label("Groups to levels").fill(mapping)


def test_a_researcher_gets_the_403_page_on_sign_in_providers(stack, tab):
    make_user(stack, "rhea", "researcher")
    visit = tab()
    sign_in_with_password(visit, "rhea")
    visit.goto("/admin", "admin-researcher")
    expect(visit.page.get_by_role("link", name="Sign-in providers")).to_have_count(0)
    for path in ("/admin/sso", "/admin/sso/new?type=ldap", "/admin/sso/corp-sso/edit"):
        response = visit.goto(path, "sso-forbidden")
        assert response.status == 403, path
        expect(visit.page.locator("h1")).to_have_text("403 · Not allowed")
        expect(visit.page.locator(".message")).to_contain_text("admin.users")
    # a form post with the researcher's own valid CSRF token is refused by the server too
    csrf = visit.page.locator('input[name="csrf"]').first.get_attribute("value")
    answer = visit.page.request.post("/admin/sso/new", form={
        "csrf": csrf, "provider_type": "ldap", "name": "sneaky", "server": "ldap://127.0.0.1:1", "base_dn": SUFFIX,
        "bind_dn": SVC_DN, "bind_password": "x"})
    assert answer.status == 403
    assert stack.client.get(f"{PROVIDERS}/sneaky").status_code == 404
