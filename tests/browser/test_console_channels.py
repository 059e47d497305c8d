"""The console's notification channels page in a real Chromium against a real stack and a real SMTP
server: an admin creates an e-mail channel, sends a test message through it, changes it (passwords
stay write-only), disables and deletes it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user
from tests.servers.mail_server import SmtpSink

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(shared_stack):  # the browser fixtures' stack is the module's shared one
    return shared_stack
CHANNELS = "/api/cloud/notifications/channels"
SECRET = "smtp-Secret-4711"


@pytest.fixture(scope="module")
def sink():
    server = SmtpSink().start()
    try:
        yield server
    finally:
        server.stop()


def test_admin_sets_up_tests_changes_and_deletes_an_email_channel(stack, tab, sink):
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/admin", "admin-index")
    visit.page.locator("#admin-sections a", has_text="Notification channels").click()
    visit.page.wait_for_url("**/admin/notifications")
    expect(visit.page.locator("#channels-table")).to_contain_text("No channels")
    visit.page.get_by_role("link", name="New e-mail channel").click()

    form = visit.page.locator("#channel-form")
    form.get_by_label("Channel name").fill("ops mail")
    form.get_by_label("SMTP host").fill("127.0.0.1")
    form.get_by_label("SMTP port").fill("70000")  # out of range: refused and named, the rest kept
    form.get_by_label("SMTP password").fill(SECRET)
    form.get_by_role("button", name="Create channel").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("SMTP port")
    expect(visit.page.locator("#channel-form").get_by_label("Channel name")).to_have_value("ops mail")
    assert SECRET not in visit.page.content()  # a password is never sent back
    visit.shot("channel-refused")

    form = visit.page.locator("#channel-form")
    form.get_by_label("SMTP port").fill(str(sink.port))
    form.get_by_label("STARTTLS").uncheck()
    form.get_by_label("Sender address").fill("alerts@corp.test")
    form.get_by_role("button", name="Create channel").click()
    expect(visit.page.locator("#notice")).to_have_text("Channel created.")
    channel_id = visit.page.locator("#channel").get_attribute("data-channel-id")
    made = stack.expect(stack.client.get(f"{CHANNELS}/{channel_id}"), 200)
    assert (made["smtp_port"], made["from_address"], made["smtp_use_tls"]) == (sink.port, "alerts@corp.test", False)
    visit.shot("channel-created")

    visit.page.get_by_label("Send to").fill("ops@corp.test")
    visit.page.get_by_role("button", name="Send test message").click()
    expect(visit.page.locator("#notice")).to_have_text("Test message sent to ops@corp.test.")
    sender, rcpts, message = sink.wait_for(lambda r: "ops@corp.test" in r[1], timeout=10)
    assert sender == "alerts@corp.test" and "ops mail" in message["Subject"]

    form = visit.page.locator("#channel-form")
    form.get_by_label("SMTP username").fill("mailer")
    form.get_by_label("SMTP password").fill(SECRET)
    form.get_by_role("button", name="Save channel").click()
    expect(visit.page.locator("#notice")).to_have_text("Channel saved.")
    assert SECRET not in visit.page.content()
    expect(visit.page.locator("#smtp-password-help")).to_contain_text("A password is set")
    visit.page.locator("#channel-form").get_by_label("Enabled").uncheck()  # saved without a password: kept
    visit.page.locator("#channel-form").get_by_role("button", name="Save channel").click()
    expect(visit.page.locator("#channel-state")).to_have_text("disabled")
    saved = stack.expect(stack.client.get(f"{CHANNELS}/{channel_id}"), 200)
    assert saved["smtp_password_set"] is True and saved["enabled"] is False and saved["smtp_username"] == "mailer"
    audits = stack.sql("SELECT details FROM auditentry WHERE action = 'notification_channel.updated' "
                       "AND target_id = :id", id=channel_id)
    assert audits and all(SECRET not in str(a["details"]) for a in audits)

    form = visit.page.locator("#channel-form")
    form.get_by_label("STARTTLS").check()
    form.get_by_label("Implicit TLS").check()  # both: refused with the reason
    form.get_by_role("button", name="Save channel").click()
    expect(visit.page.locator("#form-errors")).to_contain_text("exclude each other")

    visit.goto(f"/admin/notifications/{channel_id}", "channel")
    visit.page.get_by_label("Yes, delete ops mail").check()
    visit.page.get_by_role("button", name="Delete channel").click()
    expect(visit.page.locator("#notice")).to_have_text("Channel deleted.")
    stack.expect(stack.client.get(f"{CHANNELS}/{channel_id}"), 404)
    assert visit.dialogs == []


def test_a_researcher_gets_the_403_page(stack, tab):
    make_user(stack, "remy", "researcher")
    visit = tab()
    sign_in_with_password(visit, "remy")
    response = visit.goto("/admin/notifications", "channels-forbidden")
    assert response.status == 403
    expect(visit.page.locator(".message")).to_contain_text("admin.config")
