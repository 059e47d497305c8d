"""Cloud providers in the console, in a real Chromium against a real stack and the Replicate stand-in
(``tests/servers/replicate_server.py``): an admin sets Replicate's settings on the providers page (refused
values first, with their reasons), validates the credential against the stand-in, submits a job on
Replicate through the new-job form, and the job page shows the provider's training with its output and
cost once the stand-in finishes it; a researcher gets the 403 page for the providers page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.visit import MARKUP, sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user
from tests.e2e.replicate_stack import cloud_stack
from tests.servers.replicate_server import ReplicateServer

pytestmark = pytest.mark.e2e

VERSION = "acme/trainer:" + "a" * 64
WAIT_MS = 30_000


@pytest.fixture
def replicate():
    with ReplicateServer() as server:
        yield server


@pytest.fixture
def stack(stack_factory, replicate):
    """The browser fixtures' stack, with Replicate's global token and base URL pointing at the stand-in,
    a rate for the config's GPU and a config that states its hours (the job's cost is known)."""
    return cloud_stack(stack_factory, replicate)


def _config(stack) -> dict:
    return stack.expect(stack.client.get("/api/cloud/providers/replicate/config"), 200)


def _changes(stack) -> int:
    return stack.sql("SELECT count(*) AS n FROM auditentry WHERE action = 'provider.config_changed'")[0]["n"]


def test_admin_configures_validates_and_runs_a_replicate_job(stack, replicate, tab):
    make_user(stack, "ravi", "researcher")
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    page = visit.page

    visit.goto("/jobs/new", "new-job-unconfigured")
    expect(page.locator("#target-missing-replicate")).to_contain_text(
        re.compile(r"replicate is not configured yet \(missing: [^)]*version"))

    visit.goto("/admin/providers", "providers")
    cloud = page.locator('section[data-cloud-provider="replicate"]')
    expect(cloud.locator(".configured")).to_have_text(re.compile(r"^no: set [^.]*version"))
    expect(cloud.locator(".circuit")).to_contain_text("closed")
    expect(cloud.locator(".updates")).to_have_text("by polling every 30 s")

    webhook = f"{stack.api_url}/api/webhooks/replicate"
    cloud.get_by_label("Trainer version").fill(VERSION)
    cloud.get_by_label("Destination").fill("acme/lora-out")
    cloud.get_by_label("Webhook URL").fill(webhook)
    cloud.get_by_label("Allowed webhook IP ranges").fill("127.0.0.0/8\n10.0.0.0/33")
    cloud.get_by_label("Polling interval (seconds)").fill("5")
    cloud.get_by_role("button", name="Save the settings of replicate").click()
    expect(page.locator("#form-errors")).to_contain_text(
        "Allowed webhook IP ranges: '10.0.0.0/33' is not an IP address or CIDR range")
    visit.shot("settings-bad-cidr")
    cloud = page.locator('section[data-cloud-provider="replicate"]')
    expect(cloud.get_by_label("Trainer version")).to_have_value(VERSION)  # what was typed stays
    assert _config(stack)["version"] is None and _changes(stack) == 0, "a refused form changes nothing"

    cloud.get_by_label("Allowed webhook IP ranges").fill("127.0.0.0/8")
    cloud.get_by_label("Certificate verification").select_option("off")
    cloud.get_by_role("button", name="Save the settings of replicate").click()
    expect(page.locator("#form-errors")).to_contain_text("ssl_verify: false needs ssl_verify_acknowledged")
    assert _config(stack)["version"] is None

    cloud = page.locator('section[data-cloud-provider="replicate"]')
    expect(cloud.get_by_label("Certificate verification")).to_have_value("off")
    cloud.get_by_label("I understand the risk").check()
    cloud.get_by_role("button", name="Save the settings of replicate").click()
    expect(page.locator("#notice")).to_have_text("Settings of replicate saved.")
    visit.shot("settings-saved")
    saved = _config(stack)
    assert {k: saved[k] for k in ("version", "destination", "webhook_url", "webhook_allowed_ips",
                                  "polling_interval_seconds", "ssl_verify", "updated_by")} == {
        "version": VERSION, "destination": "acme/lora-out", "webhook_url": webhook,
        "webhook_allowed_ips": ["127.0.0.0/8"], "polling_interval_seconds": 5.0, "ssl_verify": False,
        "updated_by": "admin"}, saved
    cloud = page.locator('section[data-cloud-provider="replicate"]')
    expect(cloud.locator(".configured")).to_have_text("yes")
    expect(cloud.locator(".updates")).to_have_text("by webhook, a poll every 50 s as the safety net")
    listed = stack.expect(stack.client.get("/api/cloud/providers"), 200)["providers"]
    assert [(p["name"], p["configured"], p["webhooks"]) for p in listed] == [("replicate", True, True)]

    # the same values again: nothing is sent, so verification left off needs no new acknowledgement
    cloud.get_by_role("button", name="Save the settings of replicate").click()
    expect(page.locator("#notice")).to_have_text("Settings of replicate: nothing changed.")
    assert _changes(stack) == 1

    page.locator('section[data-cloud-provider="replicate"]').get_by_role("button", name="Validate").click()
    result = page.locator("#cloud-replicate-validation")
    expect(result).to_have_text("Valid: account standin (the global credential)")
    expect(result).to_have_attribute("data-valid", "yes")
    visit.shot("validated")
    account_calls = [r for r in replicate.requests if r["method"] == "GET" and r["path"] == "/v1/account"]
    assert [r["authorization"] for r in account_calls] == [f"Bearer {replicate.token}"], account_calls
    # the REST route answers through the same check
    assert stack.expect(stack.client.post("/api/cloud/providers/replicate/validate"), 200) == {
        "provider": "replicate", "valid": True, "credential_source": "global", "account": "standin", "error": None}

    visit.goto("/jobs/new", "new-job")
    expect(page.locator("#target-missing-replicate")).to_have_count(0)
    page.get_by_label("Config").select_option("cloud-lora")
    page.get_by_label("Target").select_option("replicate")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(r".*/jobs/[^/]+$"))
    job_id = page.locator("#job").get_attribute("data-job-id")
    assert job_id and stack.job(job_id)["target"] == "replicate"

    training_id = stack.wait_for(lambda: (stack.job(job_id).get("provider_training") or {}).get("training_id"),
                                 30, f"job {job_id} to create its training")
    created = [r for r in replicate.requests if r["method"] == "POST" and r["path"].endswith("/trainings")]
    assert created and created[0]["body"]["destination"] == "acme/lora-out", created
    page.reload()
    block = page.locator("#provider-training")
    expect(block.locator("#provider-training-id")).to_have_text(training_id)
    expect(block.locator("#provider-credential")).to_have_text("the global one")

    replicate.advance(training_id, "processing", logs="step 1/2 loss=0.5\n")
    expect(page.locator("#logs")).to_contain_text("step 1/2 loss=0.5", timeout=WAIT_MS)
    weights = f"{replicate.url}/delivery/{training_id}/trained_model.tar"
    replicate.advance(training_id, "succeeded", logs="step 2/2 loss=0.1\n", predict_time=1800.0, output={
        "version": f"acme/lora-out:{'b' * 64}", "weights": weights, "note": MARKUP, "link": "javascript:alert(1)"})
    # the page reloads itself when the job's log ends: the finished job as the server renders it
    expect(page.locator("#provider-status")).to_have_text("succeeded", timeout=WAIT_MS)
    expect(page.locator("#job-status")).to_have_text("completed")
    output = page.locator("#provider-output")
    expect(output.get_by_role("link")).to_have_count(1)  # only the http(s) URL is a link
    expect(output.get_by_role("link")).to_have_attribute("href", weights)
    expect(output).to_contain_text(MARKUP)  # shown as text, never as markup
    expect(output).to_contain_text("javascript:alert(1)")
    expect(page.locator("#provider-compute")).to_have_text("1800 s")
    expect(page.locator("#provider-cost")).to_have_text("$3.6000 (0.5 GPU-hours)")
    expect(page.locator("#logs")).to_contain_text("step 2/2 loss=0.1")
    visit.shot("job-finished")
    assert not visit.dialogs, visit.dialogs
    done = stack.job(job_id)
    assert done["status"] == "completed" and done["cost_usd"] == pytest.approx(3.6), done
    assert done["provider_training"]["output"]["weights"] == weights

    researcher = tab(width=390, height=844)
    sign_in_with_password(researcher, "ravi")
    assert researcher.goto("/admin/providers", "providers-forbidden").status == 403
    expect(researcher.page.locator("h1")).to_have_text("403 · Not allowed")
    csrf = researcher.page.locator('input[name="csrf"]').first.get_attribute("value")  # the sign-out form's
    for path, form in (("/admin/providers/replicate/settings", {"version": "x/y:z"}),
                       ("/admin/providers/replicate/validate", {})):
        answer = researcher.page.request.post(path, form={"csrf": csrf, **form})
        assert answer.status == 403 and "missing permission &#39;admin.config&#39;" in answer.text(), path
    assert _config(stack)["version"] == VERSION and _changes(stack) == 1
    researcher.goto("/jobs/new", "researcher-new-job")
    expect(researcher.page.locator('#target option[value="replicate"]')).to_have_text("replicate")
