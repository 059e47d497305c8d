"""The browser console, driven in a real Chromium against a real stack (API, worker host, agent)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.visit import CSP, MARKUP, sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(shared_stack):  # the browser fixtures' stack is the module's shared one
    return shared_stack


def test_bootstrap_admin_signs_in_with_the_api_key(stack, tab):
    visit = tab()
    response = visit.goto("/", "root-signed-out")
    assert visit.page.url.endswith("/sign-in")
    assert response.headers["content-security-policy"] == CSP
    expect(visit.page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()

    visit.page.locator("#api_key").fill("st_not_a_key")  # a wrong key: refused and audited
    visit.page.get_by_role("button", name="Sign in with the key").click()
    expect(visit.page.locator("#sign-in-error")).to_have_text("invalid API key")
    visit.shot("sign-in-bad-key")

    sign_in_with_key(visit, stack.admin_token)
    visit.shot("jobs-admin")
    expect(visit.page.locator("header .user")).to_have_text("admin")
    response = visit.goto("/admin/users", "admin-users")
    assert response.status == 200 and response.headers["content-security-policy"] == CSP
    expect(visit.page.locator("#users-table")).to_contain_text("admin")
    logins = stack.sql("SELECT actor, details FROM auditentry WHERE action = 'auth.login'")
    assert any(row["actor"] == "admin" and "api_key" in str(row["details"]) for row in logins), logins
    failures = stack.sql("SELECT details FROM auditentry WHERE action = 'auth.login_failure'")
    assert any("api_key" in str(row["details"]) for row in failures), failures

    response = visit.goto("/no-such-page", "not-found")
    assert response.status == 404 and response.headers["content-security-policy"] == CSP
    expect(visit.page.locator("h1")).to_have_text("404 · Page not found")

    visit.page.get_by_role("button", name="Sign out").click()
    visit.page.wait_for_url("**/sign-in")
    visit.goto("/jobs", "jobs-after-sign-out")
    assert visit.page.url.endswith("/sign-in")


def test_researcher_submits_a_job_and_watches_it_complete(stack, tab):
    make_user(stack, "rita", "researcher")
    stack.put_config("console-tiny", steps=60, step_delay_seconds=0.15)  # ~9 s: progress shows while it runs
    _, token = stack.create_worker("console-agent", local=True)
    stack.start_agent(token)

    visit = tab()
    visit.goto("/jobs/new", "new-job-signed-out")
    assert "/sign-in" in visit.page.url
    sign_in_with_password(visit, "rita")
    visit.shot("jobs-empty")
    expect(visit.page.locator("#jobs-total")).to_have_text("0 jobs")

    visit.page.get_by_role("link", name="New job").first.click()
    visit.page.wait_for_url("**/jobs/new")
    visit.shot("new-job")
    expect(visit.page.get_by_label("Priority")).to_have_count(0)  # researchers have no job.priority.high
    visit.page.get_by_label("Config").select_option("console-tiny")
    visit.page.get_by_label("Target").select_option("local")
    visit.page.get_by_role("button", name="Submit job").click()
    visit.page.wait_for_url("**/jobs/j*")
    job_id = visit.page.locator("#job").get_attribute("data-job-id")
    visit.shot("job-submitted")

    # live, while it runs: a share below 100% (a finished job's page shows 100%)
    expect(visit.page.locator("#job-progress")).to_contain_text(re.compile(r"(?<!\d)\d{1,2}%"), timeout=60_000)
    expect(visit.page.locator("#job-status")).to_have_text("completed", timeout=90_000)
    expect(visit.page.locator("#logs")).to_contain_text("done: loss", timeout=30_000)
    expect(visit.page.locator("#logs-state")).to_have_text("Complete.")
    expect(visit.page.locator("#job-agent")).to_have_text("console-agent")
    visit.shot("job-completed")
    assert stack.job(job_id)["status"] == "completed"

    visit.goto("/jobs", "jobs-list")
    row_status = visit.page.locator(f'[data-status-for="{job_id}"]')
    expect(row_status).to_have_text("completed")

    phone = tab(width=390, height=844)  # the same pages at phone width
    sign_in_with_password(phone, "rita")
    phone.shot("jobs-phone")
    phone.goto(f"/jobs/{job_id}", "job-phone")
    expect(phone.page.locator("#job-status")).to_have_text("completed")


def test_live_status_on_the_jobs_list(stack, tab):
    """A job submitted while the list is open: its row's status follows the event stream."""
    make_user(stack, "lena", "lead")
    stack.put_config("console-wait", steps=20)
    visit = tab()
    sign_in_with_password(visit, "lena")
    visit.goto("/jobs?config=console-wait", "jobs-before")  # a lead sees everyone's: this config's only
    expect(visit.page.locator("#jobs-total")).to_have_text("0 jobs")
    filtered = tab()
    sign_in_with_password(filtered, "lena")
    filtered.goto("/jobs?config=console-wait&status=completed", "jobs-filtered-before")
    job = stack.submit(config_name="console-wait", target="worker", worker_labels={"pool": "none-such"})
    job_id = job["job_id"]  # its row appears on the open list and follows its status
    expect(visit.page.locator(f'[data-status-for="{job_id}"]')).to_have_text("queued", timeout=30_000)
    expect(visit.page.locator("#jobs-total")).to_have_text("1 job")
    visit.shot("jobs-live-new-row")
    stack.cancel(job_id)
    expect(visit.page.locator(f'[data-status-for="{job_id}"]')).to_have_text("cancelled", timeout=30_000)
    visit.shot("jobs-live-cancelled")
    assert filtered.page.locator(f'tr[data-job-id="{job_id}"]').count() == 0  # not a completed job
    expect(filtered.page.locator("#jobs-table td.empty")).to_be_visible()


def test_researcher_gets_the_403_page_on_admin_pages(stack, tab):
    make_user(stack, "rob", "researcher")
    visit = tab()
    sign_in_with_password(visit, "rob")
    expect(visit.page.get_by_role("link", name="Users")).to_have_count(0)
    response = visit.goto("/admin/users", "admin-users-forbidden")
    assert response.status == 403
    assert response.headers["content-security-policy"] == CSP
    expect(visit.page.locator("h1")).to_have_text("403 · Not allowed")
    expect(visit.page.locator(".message")).to_contain_text("admin.users")


def test_markup_in_job_fields_renders_as_text(stack, tab):
    stack.put_config("console-xss", steps=20)
    labels = {"team": MARKUP, "note": "<script>alert(2)</script>"}
    job_id = stack.submit(config_name="console-xss", target="worker", worker_labels=labels)["job_id"]
    stack.wait_job(job_id, "queued")
    stack.sql_write("UPDATE job SET config_name = :name WHERE id = :id", name=MARKUP, id=job_id)

    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    expect(visit.page.locator(f'tr[data-job-id="{job_id}"] td.config')).to_have_text(MARKUP)
    visit.shot("jobs-markup")
    visit.goto(f"/jobs/{job_id}", "job-markup")
    expect(visit.page.locator("#job-config")).to_have_text(MARKUP)
    expect(visit.page.locator("#job-labels")).to_contain_text(f"team={MARKUP}")
    expect(visit.page.locator("#job-labels")).to_contain_text("note=<script>alert(2)</script>")
    assert visit.page.locator("#job img").count() == 0 and visit.page.locator("#job script").count() == 0

    response = visit.goto(f"/jobs/{MARKUP}", "job-markup-not-found")  # the id is echoed in the 404 page
    assert response.status == 404
    expect(visit.page.locator(".message")).to_contain_text(MARKUP)
    assert visit.page.locator("main img").count() == 0
    assert visit.dialogs == [], visit.dialogs
    stack.cancel(job_id)
