"""Fixtures of the browser tests: the e2e stack fixtures, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator

import pytest

from tests.browser.visit import Visit
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


@pytest.fixture
def tab(browser, stack, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    tabs: list[Visit] = []
    counter = itertools.count(1)

    def make(**kwargs) -> Visit:
        visit = Visit(browser, stack, shots, counter, **kwargs)
        tabs.append(visit)
        return visit
    yield make
    for visit in tabs:
        visit.close()
