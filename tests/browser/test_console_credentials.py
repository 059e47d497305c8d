"""The console's credentials pages in a real Chromium against a real stack: a researcher sets,
rotates and deletes their own provider credential (its value never shown again), and an admin sees
another person's credentials and everyone's stale ones."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e
VALUE, ROTATED = "r8_first-secret-value-0001", "r8_second-secret-value-0002"


def test_own_credentials_and_the_admin_view(stack, tab):
    made = make_user(stack, "rosa", "researcher")
    visit = tab()
    sign_in_with_password(visit, "rosa")
    visit.goto("/account", "account")
    visit.page.get_by_role("link", name="Your cloud-provider credentials").click()
    visit.page.wait_for_url("**/account/credentials")
    form = visit.page.locator("#credential-form")
    form.get_by_label("Provider").fill("replicate")
    form.get_by_label("Credential name").fill("api token")  # not a slug: refused, named, value not echoed
    form.get_by_label("Value").fill(VALUE)
    form.get_by_role("button", name="Save credential").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("credential_name")
    assert VALUE not in visit.page.content()
    form = visit.page.locator("#credential-form")
    form.get_by_label("Credential name").fill("api_token")
    form.get_by_label("Value").fill(VALUE)
    form.get_by_role("button", name="Save credential").click()
    expect(visit.page.locator("#notice")).to_have_text("Credential saved.")
    row = visit.page.locator('tr[data-credential="replicate/api_token"]')
    expect(row.locator(".mono")).to_have_text(VALUE[-4:])
    assert VALUE not in visit.page.content()

    form = visit.page.locator("#credential-form")
    form.get_by_label("Provider").fill("replicate")
    form.get_by_label("Credential name").fill("api_token")
    form.get_by_label("Value").fill(VALUE)  # the same value: a rotation must change it
    form.get_by_role("button", name="Rotate").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("must differ")
    form = visit.page.locator("#credential-form")
    form.get_by_label("Value").fill(ROTATED)
    form.get_by_role("button", name="Rotate").click()
    expect(visit.page.locator("#notice")).to_have_text("Credential rotated.")
    expect(visit.page.locator('tr[data-credential="replicate/api_token"] .mono')).to_have_text(ROTATED[-4:])
    mine = stack.expect(stack.client.get(f"/api/users/{made['id']}/credentials"), 200)["credentials"]
    assert [(c["provider"], c["credential_name"], c["rotated_at"] is not None) for c in mine] == [
        ("replicate", "api_token", True)]
    assert visit.goto("/admin/credentials", "stale-forbidden").status == 403
    assert visit.goto("/admin/users/u_admin/credentials", "others-forbidden").status == 403

    # made stale in the database (100 days without rotation): the admin's views show it
    stack.sql_write("UPDATE providercredential SET created_at = :old, rotated_at = NULL", old="2000-01-01 00:00:00")
    admin = tab()
    sign_in_with_key(admin, stack.admin_token)
    admin.goto("/admin/credentials", "stale")
    expect(admin.page.locator("#stale-table tbody tr")).to_contain_text("rosa")
    admin.page.get_by_role("link", name="rosa").click()
    admin.page.wait_for_url(f"**/admin/users/{made['id']}/credentials")
    expect(admin.page.locator("h1")).to_have_text("Credentials of rosa")
    expect(admin.page.locator('tr[data-credential="replicate/api_token"] .stale')).to_have_text("stale")
    admin.page.get_by_role("button", name="Delete replicate/api_token").click()
    expect(admin.page.locator("#notice")).to_have_text("Credential deleted.")
    assert stack.expect(stack.client.get(f"/api/users/{made['id']}/credentials"), 200)["credentials"] == []
    actors = stack.sql("SELECT actor, action FROM auditentry WHERE action LIKE 'credential.%' ORDER BY id")
    assert [(a["actor"], a["action"]) for a in actors] == [
        ("rosa", "credential.created"), ("rosa", "credential.rotated"), ("admin", "credential.deleted")]
