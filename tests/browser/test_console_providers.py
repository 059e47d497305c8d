"""The console's providers page in a real Chromium against a real stack: an admin reads each
provider's spend and sets, changes and refuses cost limits; a researcher gets the 403 page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e


def test_admin_sets_cost_limits_per_provider(stack, tab):
    make_user(stack, "ravi", "researcher")
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/admin/providers", "providers")
    worker = visit.page.locator('section[data-provider="worker"]')
    expect(worker.locator(".limit")).to_have_text("none")
    expect(visit.page.locator('section[data-provider="local"]')).to_be_visible()

    worker.get_by_label("Limit enabled").check()  # enabled without an amount: refused with the reason
    worker.get_by_role("button", name="Save the limit of worker").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("cost_limit_amount is required")
    worker = visit.page.locator('section[data-provider="worker"]')
    worker.get_by_label("Limit (USD)").fill("lots")
    worker.get_by_role("button", name="Save the limit of worker").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("must be a number")

    worker = visit.page.locator('section[data-provider="worker"]')
    worker.get_by_label("Limit enabled").check()
    worker.get_by_label("Limit (USD)").fill("12.5")
    worker.get_by_label("Period").select_option("daily")
    worker.get_by_label("When reached").select_option("block")
    worker.get_by_role("button", name="Save the limit of worker").click()
    expect(visit.page.locator("#notice")).to_have_text("Cost limit of worker saved.")
    expect(visit.page.locator('section[data-provider="worker"] .limit')).to_have_text("$12.50 daily, block")
    saved = stack.expect(stack.client.get("/api/cloud/providers/worker/config"), 200)
    assert (saved["cost_limit_enabled"], saved["cost_limit_amount"], saved["cost_limit_period"],
            saved["cost_limit_action"], saved["updated_by"]) == (True, 12.5, "daily", "block", "admin")
    status = stack.expect(stack.client.get("/api/cloud/metrics/cost-limit-status"), 200)["providers"]
    assert [(p["provider"], p["status"]) for p in status] == [("worker", "ok")]
    visit.shot("providers-limit-set")

    other = visit.page.locator("#limit-new")
    other.get_by_label("Provider").fill("Not A Name")
    other.get_by_role("button", name="Save limit").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("Provider")
    expect(visit.page.locator("#limit-new").get_by_label("Provider")).to_have_value("Not A Name")
    other = visit.page.locator("#limit-new")
    other.get_by_label("Provider").fill("replicate")
    other.get_by_label("Limit enabled").check()
    other.get_by_label("Limit (USD)").fill("100")
    other.get_by_role("button", name="Save limit").click()
    expect(visit.page.locator('section[data-provider="replicate"] .limit')).to_have_text("$100.00 monthly, warn")
    assert stack.sql("SELECT count(*) AS n FROM auditentry WHERE action = 'provider.config_changed'")[0]["n"] == 2

    researcher = tab(width=390, height=844)
    sign_in_with_password(researcher, "ravi")
    response = researcher.goto("/admin/providers", "providers-forbidden")
    assert response.status == 403
