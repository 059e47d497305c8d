"""Bodies as the guides send them: ``curl -d '{…}'`` without a Content-Type is read as JSON for token
callers (not for browser sessions), and authentication is judged before the body."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.e2e.stack import Stack, detail_text
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def api(shared_api):
    return shared_api


def curl(url: str, *args: str) -> tuple[int, str]:
    out = subprocess.run(["curl", "-sS", *args, url, "-w", "\n%{http_code}"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    body, _, code = out.rpartition("\n")
    return int(code), body


def test_curl_without_a_content_type_is_read_as_json(api: Stack):
    code, body = curl(f"{api.api_url}/api/orgs", "-X", "POST", "-H", f"Authorization: Bearer {api.admin_token}",
                      "-d", '{"name": "ML Research", "slug": "ml-research"}')
    assert code == 201, body
    assert [o["slug"] for o in api.expect(api.client.get("/api/orgs"), 200)["orgs"]] == ["ml-research"]
    no_type = httpx.post(f"{api.api_url}/api/orgs", content=b'{"name": "Vision", "slug": "vision"}',
                         headers={"Authorization": f"Bearer {api.admin_token}"})
    assert no_type.status_code == 201, no_type.text


def test_a_form_body_stays_a_form(api: Stack):
    response = api.client.post("/api/orgs", content=b"name=x&slug=y", headers=FORM)
    assert response.status_code == 422, response.text


def test_browser_sessions_still_need_json(api: Stack):
    make_user(api, "sam", "admin")
    with httpx.Client(base_url=api.api_url, trust_env=False, timeout=15) as browser:
        login = api.expect(browser.post("/api/auth/login", json={"username": "sam", "password": "Sturdy-Passw0rd-9"}),
                           200)
        csrf = {"X-CSRF-Token": login["csrf_token"]}
        as_form = browser.post("/api/orgs", content=b'{"name": "Form", "slug": "form"}', headers={**FORM, **csrf})
        assert as_form.status_code == 422, as_form.text
        assert browser.post("/api/orgs", json={"name": "Json", "slug": "json"}, headers=csrf).status_code == 201


@pytest.mark.parametrize("headers", [{}, FORM, {"Content-Type": "application/json"}])
def test_authentication_comes_before_the_body(api: Stack, headers):
    broken = b'{"name": "x", '
    anonymous = httpx.post(f"{api.api_url}/api/orgs", content=broken, headers=headers)
    assert anonymous.status_code == 401, anonymous.text
    wrong = httpx.post(f"{api.api_url}/api/orgs", content=broken, headers={**headers, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401, wrong.text
    admin = api.client.post("/api/orgs", content=broken, headers=headers)
    assert admin.status_code in (400, 422) and "json" in detail_text(admin).lower(), admin.text
    if headers:  # a JSON body (declared or by curl's default type) that does not parse: 400 naming it
        assert admin.status_code == 400 and detail_text(admin).startswith("malformed json body"), admin.text


def test_scripts_without_a_key_are_read_as_json_but_browsers_are_not(api: Stack):
    make_user(api, "kim", "researcher")
    body = '{"username": "kim", "password": "Sturdy-Passw0rd-9"}'
    code, text = curl(f"{api.api_url}/api/auth/login", "-X", "POST", "-d", body)  # single-user scripts send no key
    assert code == 200, text
    cross_site = httpx.post(f"{api.api_url}/api/auth/login", content=body.encode(),
                            headers={**FORM, "Origin": "https://evil.example"})
    assert cross_site.status_code == 422, cross_site.text
    fetched = httpx.post(f"{api.api_url}/api/auth/login", content=body.encode(),
                         headers={**FORM, "Sec-Fetch-Site": "cross-site"})
    assert fetched.status_code == 422, fetched.text
