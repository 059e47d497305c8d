"""The console's Audit log page in a real Chromium against one real stack for the module: a rule's
entries newest first with their details as text, filters that narrow the list, unreadable filters
named with a 422, paging, and who may read it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import CSP, MARKUP, sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(shared_stack):  # the browser fixtures' stack is the module's shared one
    return shared_stack


def shown_ids(visit) -> list[int]:
    return [int(i) for i in visit.page.locator("#audit-table tbody tr[data-entry-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.entryId)")]


def rest_ids(stack, **params) -> list[int]:
    return [e["id"] for e in stack.expect(stack.client.get("/api/audit", params={"limit": 1000, **params}),
                                          200)["entries"]]


def test_audit_log_shows_filters_and_pages_a_rules_entries(stack, tab):
    made = stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": MARKUP, "description": "audited", "condition": "cost_exceeds", "threshold": 10}), 201)
    rule_id = made["id"]
    for threshold in (20, 30, 40, 50):
        stack.expect(stack.client.patch(f"/api/approvals/rules/{rule_id}", json={"threshold": threshold}), 200)
    stack.expect(stack.client.delete(f"/api/approvals/rules/{rule_id}"), 200)

    visit = tab()
    page = visit.page
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/admin", "admin-index")
    page.get_by_role("link", name="Audit log").click()
    page.wait_for_url("**/admin/audit")
    visit.shot("audit")
    everything = rest_ids(stack)
    assert shown_ids(visit) == everything[:50]  # newest first, one page of 50
    expect(page.locator("#audit-total")).to_have_text(f"{len(everything)} entries")

    # one target: its six entries, newest first, each with actor, action, target, IP and details as text
    page.get_by_label("Target id").fill(rule_id)
    page.get_by_label("Target id").press("Enter")
    page.wait_for_url("**/admin/audit?*target_id=*")
    rows = page.locator("#audit-table tbody tr")
    expect(rows.locator(".audit-action")).to_have_text(["approval_rule.deleted"] + ["approval_rule.updated"] * 4
                                                       + ["approval_rule.created"])
    created = rows.last
    expect(created).to_contain_text("admin")
    expect(created).to_contain_text(f"approval_rule {rule_id}")
    expect(created).to_contain_text("127.0.0.1")
    expect(created.locator("pre.details")).to_contain_text(f'"name": "{MARKUP}"')  # the JSON, escaped
    expect(created.locator("pre.details")).to_contain_text('"threshold": "10"')
    expect(rows.first.locator("pre.details")).to_contain_text('"condition": "cost_exceeds"')
    assert page.locator("main img").count() == 0 and visit.dialogs == []
    visit.shot("audit-one-target")

    # the action filter narrows the list (the target filter is kept)
    page.get_by_label("Action").fill("approval_rule.updated")
    page.get_by_role("button", name="Filter").click()
    expect(rows.locator(".audit-action")).to_have_text(["approval_rule.updated"] * 4)
    expect(page.locator("#audit-total")).to_have_text("4 entries")
    page.get_by_label("Target id").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-total")).to_have_text("4 entries")
    assert len(everything) > 4

    # paging: two per page, the filters kept on every page link
    updated = rest_ids(stack, action="approval_rule.updated")
    visit.goto("/admin/audit?action=approval_rule.updated&limit=2", "audit-page-1")
    assert shown_ids(visit) == updated[:2]
    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(2)
    assert shown_ids(visit) == updated[2:4]
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    expect(page.get_by_label("Action")).to_have_value("approval_rule.updated")
    visit.shot("audit-page-2")
    page.get_by_role("link", name="First page").click()
    expect(rows.first).to_have_attribute("data-entry-id", str(updated[0]))

    # a time window, typed in the date-time inputs (UTC)
    page.get_by_label("Since (UTC)").fill("2000-01-01T00:00")
    page.get_by_label("Before (UTC)").fill("2000-01-02T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-total")).to_have_text("0 entries")
    expect(page.locator("#audit-table")).to_contain_text("No entries match these filters.")
    page.get_by_label("Before (UTC)").fill("2999-01-01T00:00")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-total")).to_have_text("4 entries")

    # unreadable filters: the page names them with a 422, never a server error
    for query, message in (("since=yesterday", "since: not a date and time"),
                           ("until=2024-13-01T00:00", "until: not a date and time"),
                           ("limit=0", "limit: must be between 1 and 200"),
                           ("limit=5000", "limit: must be between 1 and 200"),
                           ("cursor=garbage", "cursor: not a cursor of this list"),
                           (f"actor={'x' * 201}", "actor: at most 200 characters")):
        response = visit.goto(f"/admin/audit?{query}", "audit-bad-filter")
        assert response.status == 422 and response.headers["content-security-policy"] == CSP, query
        expect(page.get_by_role("alert")).to_contain_text(message)
        expect(page.locator("#audit-table")).to_have_count(0)

    phone = tab(width=390, height=844)
    sign_in_with_key(phone, stack.admin_token)
    phone.goto(f"/admin/audit?target_id={rule_id}", "audit-phone")
    expect(phone.page.get_by_label("Target id")).to_be_visible()
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390


def test_only_auditors_read_the_audit_log(stack, tab):
    make_user(stack, "lia", "lead")  # leads hold admin.audit
    lead = tab()
    sign_in_with_password(lead, "lia")
    lead.goto("/admin", "admin-lead")
    lead.page.get_by_role("link", name="Audit log").click()
    lead.page.wait_for_url("**/admin/audit")
    expect(lead.page.locator("#audit-table")).to_contain_text("user.created")

    make_user(stack, "ria", "researcher")
    researcher = tab()
    sign_in_with_password(researcher, "ria")
    expect(researcher.page.locator('a[href="/admin/audit"]')).to_have_count(0)
    researcher.goto("/admin", "admin-researcher")
    expect(researcher.page.locator('a[href="/admin/audit"]')).to_have_count(0)
    response = researcher.goto("/admin/audit?action=user.created", "audit-forbidden")
    assert response.status == 403 and response.headers["content-security-policy"] == CSP
    expect(researcher.page.locator("h1")).to_have_text("403 · Not allowed")
    expect(researcher.page.locator(".message")).to_contain_text("admin.audit")
    assert "user.created" not in researcher.page.content()
