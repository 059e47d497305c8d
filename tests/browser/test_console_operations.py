"""The console's Operations page in a real Chromium against a stack with rate limits on: an admin sees
the rules in effect (a rule from the config file among the guide's), how many addresses are counted,
and a refusal the API just gave, with its address, request and User-Agent (markup shown as text); the
outbound HTTP, secrets and logging settings of the process. A researcher gets the 403 page."""

from __future__ import annotations

import pytest
import yaml
from playwright.sync_api import expect

from api.console.operations_pages import masked_url
from tests.browser.visit import sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e

PROBE_AGENT = "<b>probe-bot</b>/1.0"


@pytest.fixture
def stack(stack_factory):
    made = stack_factory(start=False, extra_env={"SIMPLETUNER_RATE_LIMIT_ENABLED": "true",
                                                 "SIMPLETUNER_LOG_FORMAT": "json"})
    made.enterprise_config.write_text(yaml.safe_dump({"rate_limit": {
        "default_calls": 10000, "rules": [{"name": "probe", "pattern": "^/api/cloud/jobs/probe-", "calls": 1,
                                           "period": 600}]}}))
    return made.start()


def test_admin_sees_rules_a_refusal_and_the_process_settings(stack, tab):
    probe = "/api/cloud/jobs/probe-1"
    first = stack.client.get(probe, headers={"User-Agent": PROBE_AGENT})
    refused = stack.client.get(probe, headers={"User-Agent": PROBE_AGENT})
    assert first.status_code == 404 and refused.status_code == 429, (first.text, refused.text)
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/admin", "administration")
    visit.page.get_by_role("link", name="Operations").click()
    page = visit.page
    expect(page.locator("#limits-state")).to_have_text("enabled")
    expect(page.locator("#limits-backend")).to_contain_text("database")
    assert int(page.locator("#limits-counted").inner_text()) >= 1
    rules = page.locator("#limit-rules")
    expect(rules.locator("tr", has_text="probe")).to_contain_text("^/api/cloud/jobs/probe-")
    expect(rules.locator("tr", has_text="login")).to_contain_text("POST")  # the guide's rules stay
    expect(rules.locator("tr", has_text="default")).to_contain_text("10000")
    row = page.locator("#limit-refusals tr", has_text="probe-1")
    expect(row).to_contain_text("127.0.0.1")
    expect(row).to_contain_text(f"GET {probe}")
    expect(row).to_contain_text(PROBE_AGENT)  # the markup is text, not elements
    assert page.locator("#limit-refusals b").count() == 0
    expect(page.locator("#ssl-verify")).to_have_text("on")
    expect(page.locator("#secrets")).to_contain_text("env")
    expect(page.locator("#logging")).to_contain_text("json")
    visit.shot("operations")


def test_a_researcher_gets_the_403_page(stack, tab):
    make_user(stack, "ria", "researcher")
    visit = tab(width=390, height=844)
    sign_in_with_password(visit, "ria")
    assert visit.goto("/admin/operations", "operations-forbidden").status == 403


@pytest.mark.parametrize("given, shown", [
    ("http://proxy.corp.test:3128", "http://proxy.corp.test:3128"),
    ("http://svc:s3cret@proxy.corp.test:3128", "http://svc:***@proxy.corp.test:3128"),
    ("http://svc:s3cret@[::1]:8080/", "http://svc:***@[::1]:8080/"),
])
def test_a_proxy_password_is_never_shown(given, shown):
    assert masked_url(given) == shown and "s3cret" not in masked_url(given)
