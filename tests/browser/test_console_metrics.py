"""The console's Metrics page in a real Chromium against a real stack: an admin previews a choice of
categories without saving it, saves it (the export turns on: the scrape endpoint answers), is told when
no category is chosen, applies a template; REST and the audit log agree. A researcher gets the 403 page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(shared_stack):  # the browser fixtures' stack is the module's shared one
    return shared_stack


def _config(stack) -> dict:
    return stack.expect(stack.client.get("/api/cloud/metrics/config"), 200)


def test_admin_previews_saves_and_applies_a_template(stack, tab):
    stack.expect(stack.client.put("/api/cloud/metrics/config", json={"enabled": False, "template": "standard"}), 200)
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/admin", "administration")
    visit.page.get_by_role("link", name="Metrics").click()
    page = visit.page
    expect(page.locator("#export-state")).to_have_text("disabled")
    expect(page.locator("#saved-template")).to_have_text("standard")
    assert stack.anon.get("/api/cloud/metrics/prometheus").status_code in (401, 404)

    form = page.locator("#metrics-form")
    form.get_by_label("Export enabled").check()
    form.get_by_label("HTTP").uncheck()
    form.get_by_label("Audit").check()
    form.get_by_role("button", name="Preview these settings").click()
    expect(page.locator("#preview-title")).to_contain_text("not saved")
    expect(page.locator("#preview")).to_contain_text("simpletuner_audit_log_entries_total")
    assert "simpletuner_http_requests_total" not in page.locator("#preview").inner_text()
    visit.shot("metrics-preview")
    assert _config(stack)["enabled"] is False  # a preview saves nothing

    page.locator("#metrics-form").get_by_role("button", name="Save").click()
    expect(page.locator("#notice")).to_have_text("Metrics settings saved.")
    expect(page.locator("#export-state")).to_have_text("enabled")
    saved = _config(stack)
    assert (saved["enabled"], saved["categories"], saved["template"], saved["updated_by"]) == (
        True, ["jobs", "audit", "health"], None, "admin")
    scraped = stack.client.get("/api/cloud/metrics/prometheus")
    assert scraped.status_code == 200 and "simpletuner_audit_log_entries_24h" in scraped.text
    assert "simpletuner_http_requests_total" not in scraped.text
    visit.shot("metrics-saved")

    form = page.locator("#metrics-form")
    for label in ("Jobs", "Audit", "Health"):
        form.get_by_label(label).uncheck()
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#form-errors")).to_contain_text("Categories: choose at least one")
    assert _config(stack)["categories"] == ["jobs", "audit", "health"]

    page.get_by_role("button", name="Apply Security").click()
    expect(page.locator("#notice")).to_have_text("Template applied.")
    expect(page.locator("#saved-template")).to_have_text("security")
    after = _config(stack)
    assert (after["enabled"], after["template"]) == (True, "security")
    actions = [r["action"] for r in stack.sql("SELECT action FROM auditentry WHERE action LIKE 'metrics.%' "
                                               "ORDER BY id DESC LIMIT 2")]
    assert actions == ["metrics.template_applied", "metrics.config_changed"]
    visit.shot("metrics-template")


def test_a_researcher_gets_the_403_page(stack, tab):
    make_user(stack, "rita", "researcher")
    visit = tab(width=390, height=844)
    sign_in_with_password(visit, "rita")
    assert visit.goto("/admin/metrics", "metrics-forbidden").status == 403
