"""The console's Approvals, Queue and guided set-up pages in a real Chromium against a real stack."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import MARKUP, sign_in_with_key, sign_in_with_password
from tests.e2e.test_approval_api import gated, pending  # noqa: F401 (gated: a fixture)
from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e


def test_a_lead_approves_a_pending_job_and_it_runs(gated, tab):
    stack = gated
    rae = bearer_for(stack, "rae")
    first, second, third = pending(stack, rae), pending(stack, rae), pending(stack, rae)

    researcher = tab()
    sign_in_with_password(researcher, "rae")
    researcher.goto("/approvals", "approvals-researcher")
    expect(researcher.page.locator("#approvals-table tbody tr")).to_have_count(3)
    expect(researcher.page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)  # not an approver
    row = researcher.page.locator(f'tr[data-request-id="{third["id"]}"]')
    row.get_by_role("button", name="Cancel request").click()  # the submitter withdraws one
    expect(researcher.page.get_by_role("status")).to_have_text("Request cancelled.")
    assert stack.wait_job(third["job_id"], "cancelled", timeout=30)

    lead = tab()
    sign_in_with_password(lead, "lena")
    lead.goto("/approvals", "approvals-lead")
    row = lead.page.locator(f'tr[data-request-id="{first["id"]}"]')
    expect(row).to_contain_text("gated-*")  # why it waits: the rule's reason
    row.get_by_label("Comment").fill(f"fine {MARKUP}")
    row.get_by_role("button", name="Approve", exact=True).click()
    expect(lead.page.get_by_role("status")).to_have_text("Request approved.")
    lead.shot("approved")
    assert stack.wait_job(first["job_id"], "completed", timeout=60)["status"] == "completed"

    # bulk: select the remaining one and reject it with a comment
    lead.page.locator(f'tr[data-request-id="{second["id"]}"] input[type=checkbox]').check()
    lead.page.locator("#bulk-comment").fill("not this week")
    lead.page.get_by_role("button", name="Reject selected").click()
    expect(lead.page.get_by_role("status")).to_have_text("1 request(s) decided, 0 refused.")
    assert stack.wait_job(second["job_id"], "cancelled", timeout=30)

    lead.goto("/approvals?view=history", "approvals-history")
    history = lead.page.locator("#approvals-table")
    expect(history).to_contain_text(f"fine {MARKUP}")  # the comment, as text
    expect(history).to_contain_text("not this week")
    expect(lead.page.locator(f'tr[data-request-id="{third["id"]}"]')).to_contain_text("cancelled")
    assert not lead.dialogs and not researcher.dialogs


def test_queue_page_shows_the_line_and_admins_change_limits(stack, tab):
    stack.put_config("q", steps=1)
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 1}), 200)
    make_user(stack, "quinn", "researcher")
    quinn = bearer_for(stack, "quinn")
    ids = [stack.expect(quinn.post("/api/queue/submit", json={"config_name": "q", "target": "worker",
                                                              "worker_labels": {"pool": "none"}}), 201)["job_id"]
           for _ in range(3)]
    stack.wait_for(lambda: stack.expect(stack.client.get("/api/queue"), 200)["total"], 30,
                   "two jobs to wait in line", until=lambda total: total == 2)

    researcher = tab(width=390, height=844)  # phone width
    sign_in_with_password(researcher, "quinn")
    researcher.goto("/queue", "queue-researcher-phone")
    expect(researcher.page.locator("#queue-table tbody tr")).to_have_count(2)
    line = stack.expect(stack.client.get("/api/queue"), 200)
    holder = line["waiting_for_agent"][0]["job_id"]
    waiting = [e["job_id"] for e in line["waiting"]]
    assert sorted([holder, *waiting]) == sorted(ids)
    expect(researcher.page.locator("#slots-table")).to_contain_text(holder)
    expect(researcher.page.locator("#slots-table")).to_contain_text("waiting_for_agent")
    expect(researcher.page.get_by_role("button", name="Save limits")).to_have_count(0)

    admin = tab()
    sign_in_with_key(admin, stack.admin_token)
    admin.goto("/queue", "queue-admin")
    last = admin.page.locator(f'tr[data-job-id="{waiting[-1]}"]')
    last.get_by_label("New priority").fill("900")
    last.get_by_role("button", name="Set").click()
    expect(admin.page.locator("#queue-table tbody tr").first).to_have_attribute("data-job-id", waiting[-1])
    admin.page.locator("#max-concurrent").fill("3")
    admin.page.get_by_role("button", name="Save limits").click()
    expect(admin.page.locator("#queue-table tbody tr")).to_have_count(1)  # the empty-line row
    expect(admin.page.locator("#queue-table")).to_contain_text("Nobody is waiting.")
    expect(admin.page.locator("#queue-stats")).to_contain_text("3 in all")
    assert stack.expect(stack.client.get("/api/queue/concurrency"), 200)["max_concurrent"] == 3


def test_guided_set_up_keeps_its_progress_on_the_server(stack, tab):
    admin = tab()
    sign_in_with_key(admin, stack.admin_token)
    admin.goto("/setup", "setup-start")
    admin.page.wait_for_url("**/setup/auth")
    admin.page.get_by_role("button", name="Skip this step").click()

    admin.page.wait_for_url("**/setup/orgs")
    admin.page.get_by_label("Name", exact=True).fill("Research")
    admin.page.get_by_label("Short name (slug)").fill("Bad Slug")
    admin.page.get_by_role("button", name="Add").click()
    expect(admin.page.get_by_role("alert")).to_contain_text("slug")  # refused with the reason
    admin.page.get_by_label("Short name (slug)").fill("research")
    admin.page.get_by_role("button", name="Add").click()
    expect(admin.page.locator("#step-items")).to_contain_text("Research (research)")
    admin.shot("setup-orgs")
    admin.page.get_by_role("button", name="Mark done and continue").click()

    admin.page.wait_for_url("**/setup/teams")
    admin.page.get_by_label("Name", exact=True).fill("Vision")
    admin.page.get_by_label("Short name (slug)").fill("vision")
    admin.page.get_by_role("button", name="Add").click()
    expect(admin.page.locator("#step-items")).to_contain_text("Vision (research/vision)")
    admin.page.get_by_role("button", name="Mark done and continue").click()

    admin.page.wait_for_url("**/setup/quotas")
    admin.page.get_by_label("For").select_option(label="team research/vision")
    admin.page.get_by_label("Quota", exact=True).select_option("concurrent_jobs")
    admin.page.get_by_label("Limit").fill("2")
    admin.page.get_by_role("button", name="Add").click()
    expect(admin.page.locator("#step-items")).to_contain_text("concurrent_jobs ≤ 2")
    admin.page.get_by_role("button", name="Mark done and continue").click()

    admin.page.wait_for_url("**/setup/credentials")
    admin.page.get_by_label("Provider").fill("huggingface")
    admin.page.get_by_label("Name", exact=True).fill("token")
    admin.page.get_by_label("Value").fill("hf_secret_value_123")
    admin.page.get_by_role("button", name="Add").click()
    expect(admin.page.locator("#step-items")).to_contain_text("huggingface/token")
    assert "hf_secret_value_123" not in admin.page.content()
    admin.page.get_by_role("button", name="Mark done and continue").click()
    expect(admin.page.locator("#setup-finished")).to_be_visible()
    admin.shot("setup-finished")

    # the progress is the server's: another browser (a fresh sign-in) sees it
    other = tab()
    sign_in_with_key(other, stack.admin_token)
    other.goto("/setup/auth", "setup-other-browser")
    expect(other.page.locator('[data-step-state="auth"]')).to_have_text("skipped")
    for key in ("orgs", "teams", "quotas", "credentials"):
        expect(other.page.locator(f'[data-step-state="{key}"]')).to_have_text("done")
    teams = stack.expect(stack.client.get("/api/orgs/research/teams"), 200)
    assert [t["slug"] for t in teams["teams"]] == ["vision"]

    make_user(stack, "rita", "researcher")
    researcher = tab()
    sign_in_with_password(researcher, "rita")
    assert researcher.goto("/setup/orgs", "setup-forbidden").status == 403
