"""The browser tests' tab (screenshots, CSP and dialog checks) and sign-in steps."""

from __future__ import annotations

import itertools
from pathlib import Path

from playwright.sync_api import Page, Response

PASSWORD = "Sturdy-Passw0rd-9"
MARKUP = "<img src=x onerror=alert(1)>"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class Visit:
    """One browser tab: every page visited gets a screenshot in the test's tmp dir, every console
    answer is checked for the CSP, and any JavaScript dialog is recorded (and dismissed)."""

    def __init__(self, browser, stack, shots: Path, counter: itertools.count, width: int = 1280,
                 height: int = 800) -> None:
        self.origin = stack.api_url.rstrip("/")
        self.context = browser.new_context(base_url=stack.api_url, viewport={"width": width, "height": height})
        self.page: Page = self.context.new_page()
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.shots, self.counter = shots, counter
        self.page.on("response", self._check_headers)
        self.missing_csp: list[str] = []

    def _check_headers(self, response: Response) -> None:
        """Console pages only: pages of this stack outside ``/api`` (an identity provider's own
        login pages are not the console's)."""
        if response.request.resource_type != "document" or not response.url.startswith(self.origin + "/"):
            return
        if not response.url.startswith(self.origin + "/api/") \
                and response.headers.get("content-security-policy") != CSP:
            self.missing_csp.append(response.url)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{next(self.counter):02d}-{name}.png"), full_page=True)

    def goto(self, path: str, name: str) -> Response:
        response = self.page.goto(path)
        assert response is not None
        self.shot(name)
        return response

    def close(self) -> None:
        self.context.close()
        assert not self.missing_csp, f"console pages without the CSP header: {self.missing_csp}"
        csp_violations = [e for e in self.errors if "Content Security Policy" in e]
        assert not csp_violations, csp_violations


def sign_in_with_password(visit: Visit, username: str, password: str = PASSWORD) -> None:
    visit.goto("/sign-in", "sign-in")
    visit.page.locator("#username").fill(username)
    visit.page.locator("#password").fill(password)
    visit.page.locator("#password-form button[type=submit]").click()
    visit.page.wait_for_url("**/jobs")


def sign_in_with_key(visit: Visit, key: str) -> None:
    visit.goto("/sign-in", "sign-in")
    visit.page.locator("#api_key").fill(key)
    visit.page.get_by_role("button", name="Sign in with the key").click()
    visit.page.wait_for_url("**/jobs")
