"""Fixtures of the browser tests: the e2e stack fixtures, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import pytest_runtest_makereport, stack, stack_factory, temporal  # noqa: F401

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Module-scoped, not session-scoped: while Playwright's sync API runs, its event loop counts as
    running in this thread, and every asyncio test after it in the same process would fail. Pytest
    closes it before a test of another module runs."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: run tests/servers/install.sh")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()
