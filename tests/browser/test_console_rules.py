"""The console's approval and resource rules pages in a real Chromium against one real stack for the
module: an admin creates, edits, disables and deletes an approval rule (each step checked over REST,
and against a real submission), a refused threshold is shown, a resource rule goes through its life,
leads only read, researchers are refused, and markup stays text."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import CSP, MARKUP, sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(shared_stack):  # the browser fixtures' stack is the module's shared one
    return shared_stack


def rest_rules(stack) -> dict[str, dict]:
    return {r["name"]: r for r in stack.expect(stack.client.get("/api/approvals/rules"), 200)["rules"]}


def post_answer(visit, path: str):
    """Expect the answer to the form post to ``path`` (a context manager around the click)."""
    return visit.page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(path))


def submit_gated(stack, who) -> str:
    """A job of config gated-a for an agent that does not exist: it waits for an approver or in line."""
    made = who.post("/api/queue/submit", json={"config_name": "gated-a", "target": "worker",
                                               "worker_labels": {"pool": "none"}})
    return stack.expect(made, 201)["job_id"]


def test_admin_creates_edits_disables_and_deletes_an_approval_rule(stack, tab):
    stack.put_config("gated-a", steps=1)
    make_user(stack, "rae", "researcher")
    rae = bearer_for(stack, "rae")
    visit = tab()
    page = visit.page
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/admin", "admin-index")
    page.get_by_role("link", name="Approval and resource rules").click()
    page.wait_for_url("**/admin/rules")
    expect(page.locator("#conditions dt")).to_have_text(
        ["cost_exceeds", "hardware_type", "daily_jobs_exceed", "first_job", "config_pattern", "provider"])
    expect(page.locator("#conditions")).to_contain_text("with 5 the 6th job of the day needs approval")
    visit.shot("rules-empty")

    # a threshold the condition cannot take: the domain's 422 message, and the typed values stay
    page.get_by_role("link", name="New approval rule").click()
    page.wait_for_url("**/admin/rules/approval/new")
    page.get_by_label("Name").fill("gate")
    page.get_by_label("Description").fill("gated configs wait for a lead")
    page.get_by_label("Condition").select_option("daily_jobs_exceed")
    page.get_by_label("Threshold").fill("2.5")
    page.get_by_label("lead", exact=True).check()
    with post_answer(visit, "/admin/rules/approval/new") as answer:
        page.get_by_label("Threshold").press("Enter")  # the keyboard submits
    assert answer.value.status == 422 and answer.value.headers["content-security-policy"] == CSP
    expect(page.get_by_role("alert")).to_contain_text(
        "threshold must be a whole number of jobs for condition daily_jobs_exceed, got '2.5'")
    expect(page.get_by_label("Name")).to_have_value("gate")
    expect(page.get_by_label("Condition")).to_have_value("daily_jobs_exceed")
    expect(page.get_by_label("lead", exact=True)).to_be_checked()
    visit.shot("rule-refused")
    assert "gate" not in rest_rules(stack)

    page.get_by_label("Condition").select_option("config_pattern")
    page.get_by_label("Threshold").fill("gated-*")
    page.get_by_label("Priority").fill("5")
    page.get_by_label("Only for level").select_option("researcher")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url("**/admin/rules?done=created")
    expect(page.get_by_role("status")).to_have_text("Rule created.")
    rule = rest_rules(stack)["gate"]
    assert {k: rule[k] for k in ("condition", "threshold", "priority", "required_approver_level", "exempt_levels",
                                 "applies_to_provider", "applies_to_level", "enabled", "description")} == {
        "condition": "config_pattern", "threshold": "gated-*", "priority": 5, "required_approver_level": "lead",
        "exempt_levels": ["lead"], "applies_to_provider": None, "applies_to_level": "researcher", "enabled": True,
        "description": "gated configs wait for a lead"}
    row = page.locator(f'tr[data-rule-id="{rule["id"]}"]')
    expect(row).to_contain_text("gated configs wait for a lead")
    expect(row.locator(".rule-threshold")).to_have_text("gated-*")
    expect(row.locator(".rule-enabled")).to_have_text("yes")
    visit.shot("rules-one")
    assert stack.wait_job(submit_gated(stack, rae), "pending_approval", timeout=30)  # the rule holds

    # edit the threshold; a bad one is refused on the edit form too
    row.get_by_role("link", name="Edit gate").click()
    page.wait_for_url(f"**/admin/rules/approval/{rule['id']}")
    expect(page.get_by_label("Threshold")).to_have_value("gated-*")
    expect(page.get_by_label("Only for level")).to_have_value("researcher")
    page.get_by_label("Condition").select_option("cost_exceeds")
    page.get_by_label("Threshold").fill("lots")
    with post_answer(visit, f"/admin/rules/approval/{rule['id']}") as answer:
        page.get_by_role("button", name="Save rule").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("threshold must be a number from 0 to 1000000000000 (USD) "
                                                      "for condition cost_exceeds, got 'lots'")
    expect(page.get_by_label("Threshold")).to_have_value("lots")
    assert rest_rules(stack)["gate"]["threshold"] == "gated-*"
    page.get_by_label("Condition").select_option("config_pattern")
    page.get_by_label("Threshold").fill("gated-a*")
    page.get_by_role("button", name="Save rule").click()
    page.wait_for_url("**/admin/rules?done=saved")
    expect(row.locator(".rule-threshold")).to_have_text("gated-a*")
    assert rest_rules(stack)["gate"]["threshold"] == "gated-a*"

    # disable: it stays listed, and a submission no longer waits for an approver
    row.get_by_role("button", name="Disable gate").click()
    page.wait_for_url("**/admin/rules?done=disabled")
    expect(row.locator(".rule-enabled")).to_have_text("no")
    visit.shot("rules-disabled")
    assert rest_rules(stack)["gate"]["enabled"] is False
    assert stack.wait_job(submit_gated(stack, rae), "queued", timeout=30)
    row.get_by_role("button", name="Enable gate").click()
    expect(row.locator(".rule-enabled")).to_have_text("yes")
    assert rest_rules(stack)["gate"]["enabled"] is True

    # delete: the confirmation box is required
    row.get_by_role("link", name="Edit gate").click()
    page.locator("#delete-form").evaluate("form => form.noValidate = true")  # the server checks it too
    with post_answer(visit, "/delete") as answer:
        page.get_by_role("button", name="Delete rule").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("tick the box to confirm the deletion")
    page.get_by_label("Yes, delete this rule").check()
    page.get_by_role("button", name="Delete rule").click()
    page.wait_for_url("**/admin/rules?done=deleted")
    expect(page.get_by_role("status")).to_have_text("Rule deleted.")
    expect(row).to_have_count(0)
    assert "gate" not in rest_rules(stack)
    actions = [r["action"] for r in stack.sql("SELECT action FROM auditentry WHERE target_id = :id ORDER BY id",
                                               id=rule["id"])]
    assert actions == ["approval_rule.created", "approval_rule.updated", "approval_rule.updated",
                       "approval_rule.updated", "approval_rule.deleted"]
    assert not visit.dialogs


def test_admin_creates_edits_and_deletes_a_resource_rule(stack, tab):
    def rest() -> list[dict]:
        return stack.expect(stack.client.get("/api/users/resource-rules"), 200)["rules"]
    visit = tab()
    page = visit.page
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/admin/rules", "rules")
    page.get_by_role("link", name="Resource rules").click()
    page.wait_for_url("**/admin/rules/resources")
    page.get_by_label("Level").select_option("researcher")
    page.get_by_label("Resource", exact=True).select_option("hardware")
    page.get_by_label("Pattern").fill("   ")  # blank once trimmed: the domain's 422 message
    page.get_by_label("Action").select_option("deny")
    page.get_by_label("Description").fill("no big GPUs for researchers")
    with post_answer(visit, "/admin/rules/resources") as answer:
        page.get_by_role("button", name="Create resource rule").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("pattern")
    expect(page.get_by_label("Resource", exact=True)).to_have_value("hardware")
    expect(page.get_by_label("Description")).to_have_value("no big GPUs for researchers")
    page.get_by_label("Pattern").fill("h100*")
    page.get_by_role("button", name="Create resource rule").click()
    page.wait_for_url("**/admin/rules/resources?done=created")
    expect(page.get_by_role("status")).to_have_text("Resource rule created.")
    [rule] = rest()
    assert {k: rule[k] for k in ("level", "resource_type", "pattern", "action", "description")} == {
        "level": "researcher", "resource_type": "hardware", "pattern": "h100*", "action": "deny",
        "description": "no big GPUs for researchers"}
    row = page.locator(f'tr[data-rule-id="{rule["id"]}"]')
    expect(row.locator(".rule-pattern")).to_have_text("h100*")
    visit.shot("resource-rules-one")

    row.get_by_role("link", name="Edit the researcher hardware rule h100*").click()
    page.wait_for_url(f"**/admin/rules/resources/{rule['id']}")
    expect(page.get_by_label("Pattern")).to_have_value("h100*")
    page.get_by_label("Action").select_option("allow")
    page.get_by_role("button", name="Save resource rule").click()
    page.wait_for_url("**/admin/rules/resources?done=saved")
    assert rest()[0]["action"] == "allow"

    row.get_by_role("link", name="Edit the researcher hardware rule h100*").click()
    page.get_by_label("Yes, delete this rule").check()
    page.get_by_role("button", name="Delete resource rule").click()
    page.wait_for_url("**/admin/rules/resources?done=deleted")
    expect(page.locator("#resource-rules-table")).to_contain_text("No resource rules")
    assert rest() == []
    assert [r["action"] for r in stack.sql("SELECT action FROM auditentry WHERE target_id = :id ORDER BY id",
                                           id=rule["id"])] == [
        "resource_rule.created", "resource_rule.updated", "resource_rule.deleted"]


def test_leads_read_the_rules_and_researchers_are_refused(stack, tab):
    stack.expect(stack.client.post("/api/approvals/rules", json={"name": "first", "condition": "first_job"}), 201)
    make_user(stack, "lou", "lead")
    lead = tab()
    sign_in_with_password(lead, "lou")
    lead.goto("/admin", "admin-lead")
    lead.page.get_by_role("link", name="Approval and resource rules").click()
    expect(lead.page.locator("#rules-table")).to_contain_text("first_job")
    expect(lead.page.get_by_role("link", name="New approval rule")).to_have_count(0)
    expect(lead.page.get_by_role("button", name="Disable first")).to_have_count(0)
    expect(lead.page.get_by_role("link", name="Resource rules")).to_have_count(0)
    lead.shot("rules-lead")
    for path, permission in (("/admin/rules/approval/new", "admin.config"), ("/admin/rules/resources", "admin.users")):
        assert lead.goto(path, "rules-lead-refused").status == 403
        expect(lead.page.locator(".message")).to_contain_text(permission)

    make_user(stack, "rex", "researcher")
    researcher = tab()
    sign_in_with_password(researcher, "rex")
    expect(researcher.page.locator('a[href="/admin/rules"]')).to_have_count(0)
    researcher.goto("/admin", "admin-researcher")
    expect(researcher.page.locator('a[href="/admin/rules"]')).to_have_count(0)
    for path in ("/admin/rules", "/admin/rules/approval/new", "/admin/rules/resources"):
        response = researcher.goto(path, "rules-forbidden")
        assert response.status == 403 and response.headers["content-security-policy"] == CSP
        expect(researcher.page.locator("h1")).to_have_text("403 · Not allowed")
    rule_id = rest_rules(stack)["first"]["id"]
    csrf = researcher.page.locator('input[name="csrf"]').first.get_attribute("value")  # the sign-out form's
    answer = researcher.page.request.post(f"/admin/rules/approval/{rule_id}/delete",
                                          form={"csrf": csrf, "confirm": "yes"})
    assert answer.status == 403 and "missing permission &#39;admin.config&#39;" in answer.text()
    assert "first" in rest_rules(stack)
    stack.expect(stack.client.delete(f"/api/approvals/rules/{rule_id}"), 200)


def test_markup_in_a_rule_renders_as_text_and_the_form_fits_a_phone(stack, tab):
    made = stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": MARKUP, "description": f"why: {MARKUP}", "condition": "provider", "threshold": MARKUP,
        "applies_to_provider": MARKUP}), 201)
    visit = tab(width=390, height=844)
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/admin/rules", "rules-markup-phone")
    row = visit.page.locator(f'tr[data-rule-id="{made["id"]}"]')
    expect(row.locator(".rule-name")).to_have_text(MARKUP)
    expect(row.locator(".rule-description")).to_have_text(f"why: {MARKUP}")
    expect(row.locator(".rule-threshold")).to_have_text(MARKUP)
    row.get_by_role("link", name=f"Edit {MARKUP}").click()
    expect(visit.page.get_by_label("Name")).to_have_value(MARKUP)
    expect(visit.page.get_by_label("Only for provider")).to_have_value(MARKUP)
    expect(visit.page.get_by_role("button", name="Save rule")).to_be_visible()
    visit.shot("rule-markup-phone")
    assert visit.page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    assert visit.page.locator("main img").count() == 0 and visit.dialogs == []
    stack.expect(stack.client.delete(f"/api/approvals/rules/{made['id']}"), 200)
