"""Single-user mode in the console, in a real Chromium: a browser on this machine works without
signing in, as the first admin, and its forms still carry a token; a request naming another host
(a rebound name) or coming through a proxy is not the local user."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(stack_factory):
    stack = stack_factory(start=False)
    stack.enterprise_config.write_text("auth:\n  single_user_mode: true\n")
    return stack.start()


def test_the_local_browser_is_the_admin_without_signing_in(stack, tab):
    visit = tab()
    visit.goto("/", "single-user-root")
    visit.page.wait_for_url("**/jobs")
    expect(visit.page.locator("header .user")).to_have_text("admin")
    expect(visit.page.locator("#single-user")).to_have_text("single-user mode")
    expect(visit.page.get_by_role("button", name="Sign out")).to_have_count(0)
    visit.goto("/sign-in", "single-user-sign-in")
    visit.page.wait_for_url("**/jobs")

    visit.goto("/admin/users/new", "single-user-new-user")  # a write through a form, with its token
    visit.page.get_by_label("Username").fill("sam")
    visit.page.get_by_label("Password").fill("Sturdy-Passw0rd-9")
    visit.page.get_by_role("button", name="Create user").click()
    expect(visit.page.locator("#user-name")).to_have_text("sam")
    assert stack.sql("SELECT actor FROM auditentry WHERE action = 'user.created' AND target_id IN "
                     "(SELECT id FROM user WHERE username = 'sam')") == [{"actor": "admin"}]

    token = visit.page.locator('input[name="csrf"]').first.get_attribute("value")
    assert token
    raw = {"Content-Type": "application/x-www-form-urlencoded"}
    no_token = httpx.post(f"{stack.api_url}/admin/users/new", content="username=eve", headers=raw, trust_env=False)
    assert no_token.status_code == 403 and "security token" in no_token.text
    rebound = httpx.get(f"{stack.api_url}/jobs", headers={"Host": "attacker.test"}, trust_env=False)
    assert rebound.status_code == 303 and rebound.headers["location"] == "/sign-in"
    proxied = httpx.get(f"{stack.api_url}/jobs", headers={"X-Forwarded-For": "10.0.0.9"}, trust_env=False)
    assert proxied.status_code == 303 and proxied.headers["location"] == "/sign-in"
    api = httpx.get(f"{stack.api_url}/api/users/me", headers={"Host": "attacker.test"}, trust_env=False)
    assert api.status_code == 401
    assert visit.dialogs == []
