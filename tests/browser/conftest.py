"""Fixtures of the browser tests: the e2e stack fixtures, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.visit import Visit
from tests.e2e.conftest import pytest_runtest_makereport, shared_stack, stack, stack_factory, temporal  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SIMPLETUNER_TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")


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
def tab(browser, stack, request):
    """New tabs for the test; every page they visit is screenshotted into
    ``test-artifacts/screenshots/<module>/<test>/`` (``SIMPLETUNER_TEST_ARTIFACTS`` moves the root)."""
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shots = ARTIFACTS / "screenshots" / request.node.module.__name__.rsplit(".", 1)[-1] / test
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    tabs: list[Visit] = []
    counter = itertools.count(1)

    def make(**kwargs) -> Visit:
        visit = Visit(browser, stack, shots, counter, **kwargs)
        tabs.append(visit)
        return visit
    yield make
    for visit in tabs:
        visit.close()
