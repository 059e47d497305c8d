"""The console's account pages in a real Chromium against a real stack: an admin manages accounts
(create, levels, permission overrides, deactivate), and a researcher manages their own profile,
password and API keys."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.visit import MARKUP, PASSWORD, sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(shared_stack):  # the browser fixtures' stack is the module's shared one
    return shared_stack


def audited(stack, action: str, target: str) -> list[dict]:
    return stack.sql("SELECT actor, details FROM auditentry WHERE action = :action AND target_id = :id",
                     action=action, id=target)


def test_admin_creates_an_account_and_changes_its_levels_overrides_and_activation(stack, tab):
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    visit.page.get_by_role("link", name="Administration").click()
    visit.page.wait_for_url("**/admin")
    sections = visit.page.locator("#admin-sections a")
    for title in ("Users", "Workers", "Guided set-up", "Your account"):
        expect(sections.filter(has_text=title)).to_have_count(1)
    visit.shot("admin-index")
    sections.filter(has_text="Users").click()
    visit.page.get_by_role("link", name="New user").click()
    visit.page.wait_for_url("**/admin/users/new")

    visit.page.get_by_label("Username").fill("no spaces allowed")  # refused, the form keeps what was typed
    visit.page.get_by_label("Display name").fill(MARKUP)
    visit.page.get_by_role("button", name="Create user").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("username")
    expect(visit.page.get_by_label("Display name")).to_have_value(MARKUP)
    visit.shot("user-new-refused")

    visit.page.get_by_label("Username").fill("nina")
    visit.page.get_by_label("Email").fill("nina@corp.test")
    visit.page.get_by_label("Password").fill(PASSWORD)
    visit.page.get_by_label("Level", exact=True).select_option("researcher")
    visit.page.get_by_role("button", name="Create user").click()
    expect(visit.page.locator("#user-name")).to_have_text("nina")
    expect(visit.page.locator("#user-levels")).to_have_text("researcher")
    user_id = visit.page.locator("#user").get_attribute("data-user-id")
    assert audited(stack, "user.created", user_id)[0]["actor"] == "admin"
    visit.shot("user-created")

    visit.page.get_by_label("Add a level").select_option("lead")
    visit.page.get_by_role("button", name="Add level").click()
    expect(visit.page.locator("#user-levels")).to_have_text("leadresearcher")
    visit.page.get_by_role("button", name="Remove level researcher").click()
    expect(visit.page.locator("#user-levels")).to_have_text("lead")
    visit.page.get_by_role("button", name="Remove level lead").click()  # the last level stays: refused, shown
    expect(visit.page.locator("#form-errors")).to_contain_text("at least one level")

    row = visit.page.locator('#overrides-table tr[data-permission="job.submit"]')
    row.get_by_label("Override of job.submit").select_option("deny")
    row.get_by_role("button", name="Set").click()
    expect(visit.page.locator("#user-permissions")).not_to_contain_text("job.submit")
    user = stack.expect(stack.client.get(f"/api/users/{user_id}"), 200)
    assert user["permission_overrides"] == [{"permission_name": "job.submit", "granted": False}]
    assert "job.submit" not in user["permissions"]
    row = visit.page.locator('#overrides-table tr[data-permission="job.submit"]')
    row.get_by_label("Override of job.submit").select_option("inherit")
    row.get_by_role("button", name="Set").click()
    expect(visit.page.locator("#user-permissions")).to_contain_text("job.submit")

    visit.page.get_by_role("button", name="Deactivate").click()
    expect(visit.page.locator("#user-active")).to_have_text("no")
    assert stack.expect(stack.client.get(f"/api/users/{user_id}"), 200)["is_active"] is False
    refused = httpx.post(f"{stack.api_url}/api/auth/login", json={"username": "nina", "password": PASSWORD},
                         trust_env=False)
    assert refused.status_code in (401, 403), refused.text
    visit.page.get_by_role("button", name="Activate").click()
    expect(visit.page.locator("#user-active")).to_have_text("yes")
    visit.goto("/admin/users", "users-list")
    expect(visit.page.locator(f'#users-table tr[data-user-id="{user_id}"] .active')).to_have_text("yes")
    assert visit.dialogs == []


def test_a_researcher_manages_their_own_profile_password_and_keys(stack, tab):
    made = make_user(stack, "rhea", "researcher")
    visit = tab(width=390, height=844)  # at phone width
    sign_in_with_password(visit, "rhea")
    response = visit.goto("/admin/users", "users-forbidden")
    assert response.status == 403
    visit.goto("/admin", "admin-index-researcher")
    shown = visit.page.locator("#admin-sections a").all_inner_texts()
    assert "Your account" in shown and not {"Users", "Workers", "Guided set-up"} & set(shown), shown
    visit.page.locator("header .user").click()
    visit.page.wait_for_url("**/account")

    visit.page.get_by_label("Display name").fill(MARKUP)
    visit.page.get_by_role("button", name="Save profile").click()
    expect(visit.page.locator("#notice")).to_have_text("Profile saved.")
    expect(visit.page.get_by_label("Display name")).to_have_value(MARKUP)
    assert stack.expect(stack.client.get(f"/api/users/{made['id']}"), 200)["display_name"] == MARKUP

    new = "Another-Passw0rd-7"
    visit.page.get_by_label("Current password").fill("not it")
    visit.page.get_by_label("New password", exact=True).fill(new)
    visit.page.get_by_label("New password again").fill(new)
    visit.page.get_by_role("button", name="Change password").click()
    expect(visit.page.locator("#form-errors")).to_be_visible()
    visit.shot("password-refused")
    visit.page.get_by_label("Current password").fill(PASSWORD)
    visit.page.get_by_label("New password", exact=True).fill(new)
    visit.page.get_by_label("New password again").fill(new)
    visit.page.get_by_role("button", name="Change password").click()
    expect(visit.page.locator("#sign-in-notice")).to_contain_text("password was changed")  # every session ended
    visit.shot("password-changed")
    visit.page.locator("#username").fill("rhea")
    visit.page.locator("#password").fill(new)
    visit.page.locator("#password-form button[type=submit]").click()
    visit.page.wait_for_url("**/account")

    visit.page.get_by_label("Key name").fill("laptop")
    visit.page.get_by_label("Expires in days").fill("0")  # out of range: refused, named
    visit.page.get_by_role("button", name="Create API key").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("Expires in days")
    visit.page.get_by_label("Expires in days").fill("30")
    visit.page.get_by_role("button", name="Create API key").click()
    key = visit.page.locator("#new-key-value").inner_text().strip()
    visit.shot("key-created")
    me = httpx.get(f"{stack.api_url}/api/users/me", headers={"Authorization": f"Bearer {key}"}, trust_env=False)
    assert me.status_code == 200 and me.json()["username"] == "rhea"
    visit.goto("/account", "account")
    assert key not in visit.page.content()  # shown once
    row = visit.page.locator("#keys-table tbody tr", has_text="laptop")
    row.get_by_role("button", name="Revoke key laptop").click()
    expect(visit.page.locator("#notice")).to_have_text("Key revoked.")
    expect(visit.page.locator("#keys-table tbody tr", has_text="laptop").locator(".state")).to_have_text("revoked")
    me = httpx.get(f"{stack.api_url}/api/users/me", headers={"Authorization": f"Bearer {key}"}, trust_env=False)
    assert me.status_code == 401
    assert visit.dialogs == []
