"""Fixtures of the end-to-end suite.

- ``temporal`` (session): one Temporal dev server for the whole e2e session.
- ``stack_factory`` (function): builds ``Stack``s (each with its own data dir, API port and
  Temporal namespace), starts API + worker host unless ``start=False``, and stops everything at
  teardown, printing the process logs when the test failed.
- ``stack`` (function): ``stack_factory()`` with the defaults (heartbeat timeout 4 s, placement
  recheck 1 s), already started.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.stack import Stack, StackError  # noqa: E402
from tests.e2e.temporal_server import TemporalDevServer  # noqa: E402


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Remember each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"_e2e_report_{report.when}", report)
    if call.excinfo is not None and call.excinfo.errisinstance(StackError):
        item._e2e_logs_shown = True  # the StackError message already carries the log tails
    return report


def _failed(node: pytest.Item) -> bool:
    return any(getattr(getattr(node, f"_e2e_report_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.fixture(scope="session")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(tmp_path_factory.mktemp("temporal"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stack_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``make(start=True, temporal_server=None, **Stack kwargs) -> Stack``."""
    stacks: list[Stack] = []

    def make(start: bool = True, temporal_server: TemporalDevServer | None = None, **kwargs) -> Stack:
        server = temporal_server or request.getfixturevalue("temporal")
        stack = Stack(server, tmp_path / f"stack-{len(stacks)}", **kwargs)
        stacks.append(stack)
        if start:
            stack.start()
        return stack

    yield make
    failed = _failed(request.node)
    shown = getattr(request.node, "_e2e_logs_shown", False)
    for stack in stacks:
        if failed:
            print(f"\n===== e2e stack {stack.root} (namespace {stack.namespace}, API {stack.api_url}); "
                  f"full logs in {stack.logs_dir}")
            if not shown:
                print(stack.logs_tail(lines=120))
        stack.stop_all()


@pytest.fixture
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory()


@pytest.fixture
def own_temporal(tmp_path: Path) -> Iterator[TemporalDevServer]:
    """A dev server of the test's own, for tests that stop or restart Temporal."""
    server = TemporalDevServer(tmp_path / "own-temporal")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _module_stack(temporal: TemporalDevServer, tmp_path_factory: pytest.TempPathFactory,
                  api_only: bool) -> Iterator[Stack]:
    stack = Stack(temporal, tmp_path_factory.mktemp("shared-api" if api_only else "shared-stack"))
    try:
        stack.start_api() if api_only else stack.start()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def shared_stack(temporal: TemporalDevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One started stack for a whole module: for many small requests that each change nothing
    (bad-input tables), so they do not each pay for starting the API and the worker host."""
    yield from _module_stack(temporal, tmp_path_factory, api_only=False)


@pytest.fixture(scope="module")
def shared_api(temporal: TemporalDevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Like ``shared_stack``, with only the API process (for what needs neither workflows nor agents)."""
    yield from _module_stack(temporal, tmp_path_factory, api_only=True)
